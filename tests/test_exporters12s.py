"""Cloud Trace and Azure Monitor mapping against their vendors' exporters and limits (review 12, letter s).

Real parts only: the local gRPC TraceService, a local Application Insights
ingestion endpoint (one that can word an item error as ingestion sampling
does), the resilience wrapper with no backoff.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from google.auth.credentials import AnonymousCredentials
from support.azure_ingestion import IKEY, Answer, FakeIngestion
from support.canned_http import Reply, Request
from support.cloud_trace_server import FakeCloudTrace, attributes_of
from support.exporter_spans import SPAN_ID, exception_event, make_span
from support.made_exporters import made_exporters

from nexs_serverless import _stats
from nexs_serverless.config import ConfigError, from_env
from nexs_serverless.exporters import AzureMonitorExporter, CloudTraceExporter, ExportResult, create
from nexs_serverless.exporters.errors import ErrorClass, ExportError
from nexs_serverless.exporters.resilient import Options, ResilientExporter
from nexs_serverless.model import SpanKind

MakeAzure = Callable[..., AzureMonitorExporter]


# -- Azure Monitor ------------------------------------------------------------------------------------


@pytest.fixture
def make_azure(ingestion: FakeIngestion) -> Iterator[MakeAzure]:
    """AzureMonitorExporters whose connection string points at the local endpoint."""
    build = functools.partial(AzureMonitorExporter, connection_string=ingestion.connection_string)
    with made_exporters(build) as make:
        yield make


def _ids(envelopes: list[dict[str, object]]) -> list[tuple[str, str]]:
    """(baseType, the span id the item belongs to) of each envelope."""
    out = []
    for envelope in envelopes:
        data = envelope["data"]
        assert isinstance(data, dict)
        tags = envelope["tags"]
        assert isinstance(tags, dict)
        own = data["baseData"].get("id")
        out.append((data["baseType"], own or tags["ai.operation.parentId"]))
    return out


@pytest.mark.parametrize(
    ("suffix", "reason"),
    [
        (";", "an empty part"),
        (";;LiveEndpoint=https://live.example", "an empty part"),
        (";Authorization=aad", "Authorization must be ikey"),
        (";ApplicationId", "part 3 is not one key=value"),
    ],
)
def test_azure_a_connection_string_the_sdk_refuses_fails_at_configuration(
    suffix: str, reason: str, ingestion: FakeIngestion
) -> None:
    """What the SDK's parser refuses at the first export is a ConfigError at construction, saying why."""
    with pytest.raises(ConfigError, match=reason) as caught:
        AzureMonitorExporter(connection_string=ingestion.connection_string + suffix)
    assert IKEY not in str(caught.value)


@pytest.mark.parametrize("key", ["not-a-uuid", IKEY.replace("0000-0000-0000", "ABCD-0000-0000"), f"{IKEY}0"])
def test_azure_an_instrumentation_key_the_sdk_refuses_fails_at_configuration(key: str) -> None:
    """The SDK wants a lowercase UUID: anything else is refused at once, not at every flush."""
    with pytest.raises(ConfigError, match="not a lowercase UUID"):
        AzureMonitorExporter(
            connection_string=f"InstrumentationKey={key};IngestionEndpoint=http://127.0.0.1:1/"
        )


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "missing"),
        ("IngestionEndpoint=http://127.0.0.1:1/", "no InstrumentationKey"),
        (f"InstrumentationKey={IKEY};", "an empty part"),
    ],
)
def test_azure_a_bad_connection_string_variable_is_named(
    value: str | None, reason: str, quiet_azure_sdk: None
) -> None:
    """From the environment, the error names APPLICATIONINSIGHTS_CONNECTION_STRING and the fault."""
    environ = {} if value is None else {"APPLICATIONINSIGHTS_CONNECTION_STRING": value}
    with pytest.raises(ConfigError) as caught:
        create("azure_monitor", from_env(environ))
    message = str(caught.value)
    assert message.startswith("APPLICATIONINSIGHTS_CONNECTION_STRING: ")
    assert reason in message
    assert IKEY not in message


def test_azure_a_well_formed_connection_string_still_builds_and_sends(
    ingestion: FakeIngestion, make_azure: MakeAzure
) -> None:
    """Keys in any case and extra known parts pass the check; the span arrives."""
    text = ingestion.connection_string.replace("InstrumentationKey", "INSTRUMENTATIONKEY")
    exporter = make_azure(connection_string=f"{text};LiveEndpoint=https://live.example;Authorization=ikey")
    assert exporter.export([make_span()]) is ExportResult.SUCCESS
    assert len(ingestion.envelopes) == 1


class _SamplingIngestion(FakeIngestion):
    """Ingestion whose 206 item errors read "Telemetry sampled out." (the resource's ingestion sampling)."""

    def answer(self, request: Request) -> Reply:
        reply = super().answer(request)
        if reply.status != 206:
            return reply
        body = json.loads(reply.body)
        for error in body["errors"]:
            error["message"] = "Telemetry sampled out."
        return Reply(206, json.dumps(body).encode(), reply.headers)


@pytest.fixture
def sampling_ingestion(quiet_azure_sdk: None) -> Iterator[_SamplingIngestion]:
    """A local ingestion endpoint that words its item errors as ingestion sampling does."""
    with _SamplingIngestion() as server:
        yield server


def test_azure_items_sampled_out_by_ingestion_are_not_rejected(
    sampling_ingestion: _SamplingIngestion,
) -> None:
    """A 206 item "Telemetry sampled out." (status 206) was accepted and sampled: not a rejected span."""
    sampling_ingestion.answers.append(Answer(206, item_errors=[(1, 206)]))
    exporter = AzureMonitorExporter(connection_string=sampling_ingestion.connection_string)
    try:
        assert exporter.send([make_span(span_id=1), make_span(span_id=2)], 2.0) == 0
    finally:
        exporter.shutdown()
    counters = _stats.snapshot()
    assert counters.get("export_spans_rejected", 0) == 0
    assert counters.get("export_response_undecodable", 0) == 0
    assert len(sampling_ingestion.calls) == 1


def _resilient(exporter: AzureMonitorExporter) -> ResilientExporter:
    return ResilientExporter(exporter, options=Options(max_retries=1, backoff_s=0.0), sleep=lambda _: None)


def test_azure_an_item_refused_with_503_in_a_206_is_retried_alone(
    ingestion: FakeIngestion, make_azure: MakeAzure
) -> None:
    """Only the refused item goes again (nothing accepted twice), the span counted sent, not rejected."""
    first = make_span(span_id=1, kind=SpanKind.SERVER, events=(exception_event(ValueError("x")),))
    second = make_span(span_id=2, parent_span_id=1, kind=SpanKind.CLIENT)
    ingestion.answers.append(
        Answer(206, item_errors=[(2, 503)])
    )  # items: request 1, exception 1, dependency 2
    assert _resilient(make_azure()).export([first, second]) is ExportResult.SUCCESS
    assert len(ingestion.calls) == 2
    assert _ids(ingestion.envelopes) == [
        ("RequestData", f"{1:016x}"),
        ("ExceptionData", f"{1:016x}"),
        ("RemoteDependencyData", f"{2:016x}"),
    ]
    counters = _stats.snapshot()
    assert counters["export_spans_sent"] == 2
    assert counters.get("export_spans_rejected", 0) == 0
    assert counters["export_retries"] == 1


def test_azure_a_refused_event_item_is_retried_without_its_accepted_span_item(
    ingestion: FakeIngestion, make_azure: MakeAzure
) -> None:
    """A span whose exception item got a 500 sends that item again, not its request item."""
    span = make_span(kind=SpanKind.SERVER, events=(exception_event(ValueError("x")),))
    ingestion.answers.append(Answer(206, item_errors=[(1, 500)]))
    assert _resilient(make_azure()).export([span]) is ExportResult.SUCCESS
    assert _ids(ingestion.envelopes) == [
        ("RequestData", f"{SPAN_ID:016x}"),
        ("ExceptionData", f"{SPAN_ID:016x}"),
    ]


def test_azure_a_206_with_429_items_is_throttled_and_names_what_is_left(
    ingestion: FakeIngestion, make_azure: MakeAzure
) -> None:
    """429 items: THROTTLED with Retry-After; a 400 item's span is rejected, the 429 item's undelivered."""
    spans = [make_span(span_id=i) for i in (1, 2, 3)]
    ingestion.answers.append(Answer(206, {"Retry-After": "4"}, item_errors=[(0, 400), (2, 429)]))
    with pytest.raises(ExportError) as caught:
        make_azure().send(spans, 2.0)
    error = caught.value
    assert (error.error_class, error.retry_after_s, error.status) == (ErrorClass.THROTTLED, 4.0, 429)
    assert error.undelivered == [spans[2]]
    assert (error.rejected, error.dropped) == (1, 0)
    assert _ids(ingestion.envelopes) == [("RemoteDependencyData", f"{2:016x}")]


def test_azure_a_partial_success_kept_for_later_arrives_once(
    ingestion: FakeIngestion, make_azure: MakeAzure
) -> None:
    """No retry left in the flush: the refused span is carried over and sent with the next flush."""
    ingestion.answers.append(Answer(206, item_errors=[(0, 503)]))
    resilient = ResilientExporter(make_azure(), options=Options(max_retries=0))
    assert resilient.export([make_span(span_id=1), make_span(span_id=2)]) is ExportResult.FAILURE
    assert resilient.export([make_span(span_id=3)]) is ExportResult.SUCCESS
    assert [span_id for _, span_id in _ids(ingestion.envelopes)] == [f"{i:016x}" for i in (2, 1, 3)]
    assert _stats.snapshot()["export_spans_sent"] == 3


def test_azure_tail_sampling_probability_becomes_the_sample_rate(
    ingestion: FakeIngestion, make_azure: MakeAzure
) -> None:
    """A root kept with sampling.probability 0.25: its trace's items carry sampleRate 25; others none."""
    root = make_span(span_id=1, kind=SpanKind.SERVER, attributes={"sampling.probability": 0.25})
    child = make_span(span_id=2, parent_span_id=1, events=(exception_event(ValueError("x")),))
    other = make_span(trace_id=0xABC, span_id=3)
    own = make_span(
        trace_id=0xDEF, span_id=4, attributes={"sampling.probability": 0.5, "_MS.sampleRate": 10.0}
    )
    assert make_azure().export([root, child, other, own]) is ExportResult.SUCCESS
    rates = [
        (span_id, envelope.get("sampleRate"))
        for (_, span_id), envelope in zip(_ids(ingestion.envelopes), ingestion.envelopes, strict=True)
    ]
    assert rates == [
        (f"{1:016x}", 25.0),
        (f"{2:016x}", 25.0),
        (f"{2:016x}", 25.0),
        (f"{3:016x}", None),
        (f"{4:016x}", 10.0),
    ]


# -- Cloud Trace --------------------------------------------------------------------------------------


def test_cloud_trace_the_otel_project_variable_comes_first(trace_api: FakeCloudTrace) -> None:
    """OTEL_EXPORTER_GCP_TRACE_PROJECT_ID (OpenTelemetry's exporter's) beats GOOGLE_CLOUD_PROJECT."""
    exporter = create(
        "gcp_trace",
        from_env(
            {
                "OTEL_EXPORTER_GCP_TRACE_PROJECT_ID": "traces-here",
                "GOOGLE_CLOUD_PROJECT": "runs-here",
                "NEXS_GCP_TRACE_ENDPOINT": trace_api.endpoint,
                "NEXS_GCP_TRACE_INSECURE": "true",
            }
        ),
    )
    assert isinstance(exporter, CloudTraceExporter)
    try:
        assert exporter.export([make_span()]) is ExportResult.SUCCESS
    finally:
        exporter.shutdown()
    assert [request.name for request in trace_api.requests] == ["projects/traces-here"]


def test_cloud_trace_a_project_variable_is_stripped(trace_api: FakeCloudTrace) -> None:
    """GOOGLE_CLOUD_PROJECT with stray blanks names the project, not "projects/ p \\n"."""
    exporter = create(
        "gcp_trace",
        from_env(
            {
                "GOOGLE_CLOUD_PROJECT": " demo-project\n",
                "NEXS_GCP_TRACE_ENDPOINT": trace_api.endpoint,
                "NEXS_GCP_TRACE_INSECURE": "true",
            }
        ),
    )
    assert isinstance(exporter, CloudTraceExporter)
    try:
        exporter.export([make_span()])
    finally:
        exporter.shutdown()
    assert [request.name for request in trace_api.requests] == ["projects/demo-project"]
    assert trace_api.spans()[0].name.startswith("projects/demo-project/traces/")  # type: ignore[attr-defined]


class _ProjectCredentials(AnonymousCredentials):
    """Credentials that know their project, as service account credentials do."""

    project_id = "from-credentials"


@pytest.fixture
def no_default_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """google-auth finds no application default credentials, nor a metadata server, nor a project."""
    for name in ("GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_CLOUD_PROJECT", "GCLOUD_PROJECT", "GCP_PROJECT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path))
    monkeypatch.setenv("NO_GCE_CHECK", "True")
    monkeypatch.setenv("GCE_METADATA_HOST", "127.0.0.1:1")
    monkeypatch.setenv("GCE_METADATA_IP", "127.0.0.1:1")


@pytest.mark.usefixtures("no_default_credentials")
def test_cloud_trace_explicit_credentials_name_the_project(trace_api: FakeCloudTrace) -> None:
    """No project given: the credentials' own project_id, without application default credentials."""
    exporter = CloudTraceExporter(
        endpoint=trace_api.endpoint, insecure=True, credentials=_ProjectCredentials()
    )
    try:
        exporter.send([make_span()], 2.0)
    finally:
        exporter.shutdown()
    assert [request.name for request in trace_api.requests] == ["projects/from-credentials"]


def test_cloud_trace_server_address_is_the_http_host_only_on_http_spans(
    trace_api: FakeCloudTrace, cloud_trace: CloudTraceExporter
) -> None:
    """A database's server.address stays itself, an HTTP span's is /http/host; request.body.size a label."""
    database = make_span(span_id=1, attributes={"db.system": "redis", "server.address": "cache.internal"})
    http = make_span(
        span_id=2,
        attributes={
            "http.request.method": "POST",
            "server.address": "api.example.com",
            "http.request.body.size": 512,
        },
    )
    assert cloud_trace.export([database, http]) is ExportResult.SUCCESS
    got_database, got_http = (attributes_of(span) for span in trace_api.spans())  # type: ignore[arg-type]
    assert got_database["server.address"] == "cache.internal"
    assert "/http/host" not in got_database
    assert (got_http["/http/host"], got_http["/http/request/size"]) == ("api.example.com", 512)
    assert "server.address" not in got_http
