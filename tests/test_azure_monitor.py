"""AzureMonitorExporter against a local ingestion endpoint that decodes the Application Insights envelopes."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support.azure_ingestion import IKEY, Answer, FakeIngestion
from support.canned_http import SilentServer, closed_port
from support.exporter_spans import SPAN_ID, TRACE_ID, exception_event, make_span
from support.made_exporters import made_exporters

from nexs_serverless import _stats
from nexs_serverless.config import ConfigError, from_env
from nexs_serverless.exporters import AzureMonitorExporter, ExportResult, create
from nexs_serverless.exporters.errors import ErrorClass, ExportError
from nexs_serverless.model import SpanKind, StatusCode

Make = Callable[..., AzureMonitorExporter]


pytestmark = pytest.mark.usefixtures("quiet_azure_sdk")


@pytest.fixture
def make_exporter(ingestion: FakeIngestion) -> Iterator[Make]:
    """Exporters whose connection string points at the local endpoint; shut down after the test."""
    build = functools.partial(AzureMonitorExporter, connection_string=ingestion.connection_string)
    with made_exporters(build) as make:
        yield make


def test_spans_arrive_as_application_insights_envelopes(
    ingestion: FakeIngestion, make_exporter: Make
) -> None:
    """Server spans become requests, client spans dependencies, exception events exceptions; ids line up."""
    server = make_span(
        kind=SpanKind.SERVER,
        attributes={"http.request.method": "GET", "http.response.status_code": 200, "order.id": "42"},
    )
    client = make_span(
        span_id=0x2,
        parent_span_id=SPAN_ID,
        kind=SpanKind.CLIENT,
        name="GET payments",
        attributes={"http.request.method": "GET", "url.full": "https://payments.example.com/pay"},
        events=(exception_event(ValueError("declined")),),
        status_code=StatusCode.ERROR,
    )
    assert make_exporter().export([server, client]) is ExportResult.SUCCESS
    assert [path for path, _ in ingestion.calls] == ["/v2.1/track"]
    [request] = ingestion.by_type("RequestData")
    [dependency] = ingestion.by_type("RemoteDependencyData")
    [exception] = ingestion.by_type("ExceptionData")
    assert {e["iKey"] for e in ingestion.envelopes} == {IKEY}
    request_data = request["data"]["baseData"]  # type: ignore[index]
    assert (request_data["id"], request_data["name"], request_data["responseCode"]) == (
        f"{SPAN_ID:016x}",
        "GET /orders",
        "200",
    )
    assert request_data["properties"]["order.id"] == "42"
    assert request["tags"]["ai.operation.id"] == f"{TRACE_ID:032x}"  # type: ignore[index]
    assert request["tags"]["ai.cloud.role"] == "orders"  # type: ignore[index]
    assert dependency["data"]["baseData"]["id"] == f"{0x2:016x}"  # type: ignore[index]
    assert dependency["data"]["baseData"]["success"] is False  # type: ignore[index]
    assert dependency["tags"]["ai.operation.parentId"] == f"{SPAN_ID:016x}"  # type: ignore[index]
    details = exception["data"]["baseData"]["exceptions"][0]  # type: ignore[index]
    assert (details["typeName"], details["message"]) == ("ValueError", "declined")


@pytest.mark.parametrize(
    ("answer", "error_class", "retry_after"),
    [
        (Answer(401), ErrorClass.AUTH, None),
        (Answer(403), ErrorClass.AUTH, None),
        (Answer(429, {"Retry-After": "7"}), ErrorClass.THROTTLED, 7.0),
        (Answer(402), ErrorClass.THROTTLED, None),
        (Answer(400), ErrorClass.BAD_REQUEST, None),
        (Answer(500), ErrorClass.SERVER, None),
        (Answer(503), ErrorClass.SERVER, None),
        (Answer(308, {"Location": "http://127.0.0.1:1/"}), ErrorClass.BAD_REQUEST, None),
    ],
)
def test_ingestion_failures_are_classified(
    answer: Answer, error_class: str, retry_after: float | None, ingestion: FakeIngestion, make_exporter: Make
) -> None:
    """Each status maps to its class (Retry-After kept); the SDK's pipeline does not retry on its own."""
    ingestion.answers.extend([answer, answer])
    exporter = make_exporter()
    with pytest.raises(ExportError) as caught:
        exporter.send([make_span()], 2.0)
    assert (caught.value.error_class, caught.value.retry_after_s) == (error_class, retry_after)
    assert exporter.export([make_span()]) is ExportResult.FAILURE
    assert len(ingestion.calls) == 2
    assert _stats.snapshot()["export_errors_" + error_class] == 1


def test_an_unreachable_endpoint_is_a_network_failure(make_exporter: Make) -> None:
    """Nothing listening: NETWORK."""
    exporter = make_exporter(
        connection_string=f"InstrumentationKey={IKEY};IngestionEndpoint=http://127.0.0.1:{closed_port()}/"
    )
    with pytest.raises(ExportError) as caught:
        exporter.send([make_span()], 1.0)
    assert caught.value.error_class == ErrorClass.NETWORK


def test_a_silent_endpoint_is_a_timeout_within_the_budget(make_exporter: Make) -> None:
    """The flush budget is the call's read timeout: a server that never answers is a TIMEOUT."""
    with SilentServer() as silent:
        exporter = make_exporter(
            connection_string=f"InstrumentationKey={IKEY};IngestionEndpoint={silent.url}/"
        )
        with pytest.raises(ExportError) as caught:
            exporter.send([make_span()], 0.2)
    assert caught.value.error_class == ErrorClass.TIMEOUT


def test_items_refused_in_a_partial_success_are_counted(
    ingestion: FakeIngestion, make_exporter: Make
) -> None:
    """A 206 that refuses one span's envelope counts one rejected span; the rest arrive."""
    ingestion.answers.append(Answer(206, item_errors=[(1, 400)]))
    exporter = make_exporter()
    assert exporter.export([make_span(span_id=1), make_span(span_id=2)]) is ExportResult.SUCCESS
    assert _stats.snapshot()["export_spans_rejected"] == 1
    assert [e["data"]["baseData"]["id"] for e in ingestion.envelopes] == [f"{1:016x}"]  # type: ignore[index]


@pytest.mark.parametrize(
    ("item_errors", "rejected", "arrived"),
    [
        ([(5, 400)], 0, [1, 2]),
        ([(-1, 400)], 0, [1, 2]),
        ([(0, 400), (7, 503)], 1, [2]),  # a refused 503 item is retried: test_exporters12s
    ],
)
def test_item_errors_naming_no_sent_envelope_are_ignored_and_counted(
    ingestion: FakeIngestion,
    make_exporter: Make,
    item_errors: list[tuple[int, int]],
    rejected: int,
    arrived: list[int],
) -> None:
    """A 206 index naming no envelope maps to no span: the accepted batch succeeds, never resent."""
    ingestion.answers.append(Answer(206, item_errors=item_errors))
    exporter = make_exporter()
    assert exporter.export([make_span(span_id=1), make_span(span_id=2)]) is ExportResult.SUCCESS
    counters = _stats.snapshot()
    assert counters.get("export_spans_rejected", 0) == rejected
    assert counters["export_response_undecodable"] == 1
    assert [e["data"]["baseData"]["id"] for e in ingestion.envelopes] == [f"{i:016x}" for i in arrived]  # type: ignore[index]


def test_every_item_refused_with_a_retryable_status_is_a_failure(
    ingestion: FakeIngestion, make_exporter: Make
) -> None:
    """A 206 refusing every item with 503 is a SERVER failure (so the spans are kept for later)."""
    ingestion.answers.append(Answer(206, item_errors=[(0, 503)]))
    with pytest.raises(ExportError) as caught:
        make_exporter().send([make_span()], 1.0)
    assert caught.value.error_class == ErrorClass.SERVER


def test_offline_storage_is_off_unless_asked(make_exporter: Make) -> None:
    """By default the SDK gets disable_offline_storage: no disk storage at all."""
    exporter = make_exporter()
    assert exporter.prepare().storage is None


def test_with_offline_storage_the_sdk_keeps_and_later_resends(
    ingestion: FakeIngestion, make_exporter: Make, tmp_path: Path
) -> None:
    """NEXS_AZURE_OFFLINE_STORAGE=true: a retryable failure goes to disk, the next success drains it."""
    exporter = create(
        "azure_monitor",
        from_env(
            {
                "APPLICATIONINSIGHTS_CONNECTION_STRING": ingestion.connection_string,
                "NEXS_AZURE_OFFLINE_STORAGE": "true",
                "NEXS_AZURE_STORAGE_DIRECTORY": str(tmp_path),
            }
        ),
    )
    assert isinstance(exporter, AzureMonitorExporter)
    exporter.prepare().storage._lease_period = 0  # the SDK waits 60 s before re-sending; not here
    ingestion.answers.append(Answer(503))
    assert exporter.send([make_span(span_id=1)], 2.0) == 0
    assert _stats.snapshot()["spans_stored_offline"] == 1
    assert ingestion.envelopes == []
    assert exporter.send([make_span(span_id=2)], 2.0) == 0
    exporter.shutdown()
    assert sorted(e["data"]["baseData"]["id"] for e in ingestion.envelopes) == [f"{1:016x}", f"{2:016x}"]  # type: ignore[index]


def test_a_connection_string_is_required() -> None:
    """Without APPLICATIONINSIGHTS_CONNECTION_STRING the exporter refuses to build."""
    with pytest.raises(ConfigError):
        create("azure_monitor", from_env({}))
    with pytest.raises(ConfigError):
        AzureMonitorExporter(connection_string="IngestionEndpoint=http://127.0.0.1:1/")


def test_from_settings_reads_the_connection_string_and_timeout(ingestion: FakeIngestion) -> None:
    """OTEL_TRACES_EXPORTER=azure_monitor reads its connection string from the settings snapshot."""
    exporter = create(
        "azure_monitor",
        from_env(
            {
                "APPLICATIONINSIGHTS_CONNECTION_STRING": ingestion.connection_string,
                "NEXS_AZURE_TIMEOUT_MS": "3000",
            }
        ),
    )
    assert isinstance(exporter, AzureMonitorExporter)
    assert (exporter.offline_storage, exporter.timeout_ms) == (False, 3000)
    assert exporter.export([make_span()]) is ExportResult.SUCCESS
    exporter.shutdown()
    assert len(ingestion.envelopes) == 1
