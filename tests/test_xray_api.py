"""XRayExporter through PutTraceSegments: moto in server mode, and canned HTTP faults for classification."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import boto3
import pytest
from moto.server import ThreadedMotoServer
from support.canned_http import CannedServer, Reply, SilentServer, closed_port
from support.exporter_spans import TRACE_ID, exception_event, make_span

from nexs_serverless import _stats
from nexs_serverless.exporters import ExportResult, XRayExporter
from nexs_serverless.exporters.errors import ErrorClass, ExportError
from nexs_serverless.exporters.resilient import Options, ResilientExporter
from nexs_serverless.exporters.xray_segments import xray_trace_id
from nexs_serverless.model import SpanKind, StatusCode


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    """moto's server on a random port of 127.0.0.1, shared by the module's tests."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(autouse=True)
def _fake_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    """Test credentials only: no profile files, no instance metadata lookups."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


Canned = Callable[..., tuple[CannedServer, XRayExporter]]


@pytest.fixture(scope="module")
def _canned_server() -> Iterator[CannedServer]:
    with CannedServer() as server:
        yield server


@pytest.fixture(scope="module")
def _canned_exporter(_canned_server: CannedServer) -> Iterator[XRayExporter]:
    # One boto3 client for the canned-reply tests: building one costs about half a second.
    exporter = XRayExporter(transport="api", region="us-east-1", endpoint_url=_canned_server.url)
    yield exporter
    exporter.shutdown()


@pytest.fixture
def canned(_canned_server: CannedServer, _canned_exporter: XRayExporter) -> Canned:
    """The shared canned server, answering this test's replies, and an exporter aimed at it."""

    def answer(*replies: Reply) -> tuple[CannedServer, XRayExporter]:
        _canned_server.replies = list(replies) or [Reply()]
        _canned_server.requests.clear()
        return _canned_server, _canned_exporter

    return answer


@pytest.fixture
def make_exporter() -> Iterator[type[XRayExporter]]:
    """API-transport XRayExporters in us-east-1, shut down after the test."""
    made: list[XRayExporter] = []

    def make(**kwargs: object) -> XRayExporter:
        kwargs.setdefault("transport", "api")
        kwargs.setdefault("region", "us-east-1")
        exporter = XRayExporter(**kwargs)  # type: ignore[arg-type]
        made.append(exporter)
        return exporter

    yield make  # type: ignore[misc]
    for exporter in made:
        exporter.shutdown()


def _error(status: int, code: str, headers: dict[str, str] | None = None) -> Reply:
    body = json.dumps({"__type": code, "message": f"{code} from the test"}).encode()
    return Reply(
        status,
        body,
        {"Content-Type": "application/x-amz-json-1.1", "x-amzn-ErrorType": code, **(headers or {})},
    )


def test_segments_round_trip_through_put_trace_segments(
    moto_url: str, make_exporter: type[XRayExporter]
) -> None:
    """Documents uploaded with PutTraceSegments come back from BatchGetTraces with their fields."""
    spans = [
        make_span(
            span_id=0xA1,
            kind=SpanKind.SERVER,
            attributes={"order.id": "42", "http.response.status_code": 500},
        ),
        make_span(
            span_id=0xA2,
            parent_span_id=0xA1,
            name="charge",
            status_code=StatusCode.ERROR,
            events=(exception_event(RuntimeError("card declined")),),
        ),
    ]
    # moto's first request loads its back ends: allow it time.
    exporter = make_exporter(endpoint_url=moto_url, annotation_keys=("order.id",), timeout_ms=20_000)
    assert exporter.export(spans) is ExportResult.SUCCESS
    client = boto3.client("xray", region_name="us-east-1", endpoint_url=moto_url)
    traces = client.batch_get_traces(TraceIds=[xray_trace_id(TRACE_ID)])["Traces"]
    docs = {json.loads(s["Document"])["id"]: json.loads(s["Document"]) for s in traces[0]["Segments"]}
    root, child = docs[f"{0xA1:016x}"], docs[f"{0xA2:016x}"]
    assert (root["name"], root["fault"], root["annotations"]) == ("orders", True, {"order_id": "42"})
    assert root["http"]["response"]["status"] == 500
    assert (child["type"], child["parent_id"], child["name"]) == ("subsegment", f"{0xA1:016x}", "charge")
    assert child["cause"]["exceptions"][0]["message"] == "card declined"
    client.close()


def test_documents_go_in_calls_of_at_most_fifty(canned: Canned) -> None:
    """120 spans make three PutTraceSegments calls (the daemon's batch size)."""
    server, exporter = canned(Reply(200, b'{"UnprocessedTraceSegments": []}'))
    exporter.export([make_span(span_id=i + 1, parent_span_id=0xFF) for i in range(120)])
    sizes = [len(json.loads(r.body)["TraceSegmentDocuments"]) for r in server.requests]
    assert sizes == [50, 50, 20]
    assert all(r.path == "/TraceSegments" for r in server.requests)


def test_the_api_sends_one_document_per_span_even_for_a_tree(canned: Canned) -> None:
    """Through PutTraceSegments nothing is nested: one refused document is one refused span."""
    server, exporter = canned(Reply(200, b'{"UnprocessedTraceSegments": []}'))
    exporter.export([make_span(span_id=2, parent_span_id=1), make_span(span_id=1)])
    docs = [json.loads(doc) for doc in json.loads(server.requests[0].body)["TraceSegmentDocuments"]]
    assert [(doc["id"], doc.get("parent_id")) for doc in docs] == [
        (f"{2:016x}", f"{1:016x}"),
        (f"{1:016x}", None),
    ]
    assert not any("subsegments" in doc for doc in docs)


def test_unprocessed_documents_are_counted_as_rejected(canned: Canned) -> None:
    """A partial success counts the documents X-Ray refused; the export still succeeds."""
    body = b'{"UnprocessedTraceSegments": [{"Id": "x", "ErrorCode": "InvalidSegment", "Message": "bad"}]}'
    _, exporter = canned(Reply(200, body))
    assert exporter.send([make_span(span_id=1), make_span(span_id=2)], 1.0) == 1
    assert exporter.export([make_span(span_id=1), make_span(span_id=2)]) is ExportResult.SUCCESS
    assert _stats.snapshot()["export_spans_rejected"] == 1


def test_every_document_refused_is_a_bad_request(canned: Canned) -> None:
    """When X-Ray refuses all documents the export fails as BAD_REQUEST (not retried)."""
    body = b'{"UnprocessedTraceSegments": [{"Id": "x", "ErrorCode": "InvalidSegment"}]}'
    _, exporter = canned(Reply(200, body))
    with pytest.raises(ExportError) as caught:
        exporter.send([make_span()], 1.0)
    assert caught.value.error_class == ErrorClass.BAD_REQUEST


@pytest.mark.parametrize(
    ("reply", "error_class", "retry_after"),
    [
        (_error(403, "AccessDeniedException"), ErrorClass.AUTH, None),
        (_error(400, "UnrecognizedClientException"), ErrorClass.AUTH, None),
        (_error(429, "ThrottledException", {"Retry-After": "3"}), ErrorClass.THROTTLED, 3.0),
        (_error(400, "InvalidRequestException"), ErrorClass.BAD_REQUEST, None),
        (_error(500, "InternalFailure"), ErrorClass.SERVER, None),
        (_error(503, "ServiceUnavailable"), ErrorClass.SERVER, None),
    ],
)
def test_http_failures_are_classified(
    reply: Reply, error_class: str, retry_after: float | None, canned: Canned
) -> None:
    """X-Ray's error codes and statuses map to the taxonomy, with Retry-After kept."""
    server, exporter = canned(reply)
    with pytest.raises(ExportError) as caught:
        exporter.send([make_span()], 1.0)
    assert exporter.export([make_span()]) is ExportResult.FAILURE
    assert len(server.requests) == 2  # botocore's own retries are off
    assert caught.value.error_class == error_class
    assert caught.value.retry_after_s == retry_after
    assert _stats.snapshot()["export_errors_" + error_class] == 1


def test_connection_refused_is_a_network_failure(make_exporter: type[XRayExporter]) -> None:
    """Nothing listening: NETWORK."""
    exporter = make_exporter(endpoint_url=f"http://127.0.0.1:{closed_port()}")
    with pytest.raises(ExportError) as caught:
        exporter.send([make_span()], 1.0)
    assert caught.value.error_class == ErrorClass.NETWORK


def test_a_server_that_never_answers_times_out_within_the_budget(make_exporter: type[XRayExporter]) -> None:
    """The flush budget becomes the call's read timeout: a silent server is a TIMEOUT."""
    with SilentServer() as server:
        exporter = make_exporter(endpoint_url=server.url)
        with pytest.raises(ExportError) as caught:
            exporter.send([make_span()], 0.2)
    assert caught.value.error_class == ErrorClass.TIMEOUT


def test_no_time_left_fails_without_calling(canned: Canned) -> None:
    """With the flush budget spent, nothing is sent and the failure is a TIMEOUT."""
    server, exporter = canned()
    with pytest.raises(ExportError) as caught:
        exporter.send([make_span()], 0.0)
    assert server.requests == []
    assert caught.value.error_class == ErrorClass.TIMEOUT


def test_missing_credentials_are_an_auth_failure(
    make_exporter: type[XRayExporter], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No credentials anywhere: AUTH, not retried."""
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with CannedServer() as server:
        with pytest.raises(ExportError) as caught:
            make_exporter(endpoint_url=server.url).send([make_span()], 1.0)
    assert caught.value.error_class == ErrorClass.AUTH
    assert not caught.value.retryable


def test_behind_the_resilience_wrapper_a_failed_upload_goes_out_once_later(canned: Canned) -> None:
    """The seam: a classified 503 is carried over by ResilientExporter and sent with the next flush."""
    server, exporter = canned(_error(503, "ServiceUnavailable"), Reply(200, b"{}"))
    resilient = ResilientExporter(exporter, options=Options(max_retries=0))
    assert resilient.export([make_span(span_id=1, parent_span_id=0xFF)]) is ExportResult.FAILURE
    assert resilient.export([make_span(span_id=2, parent_span_id=0xFF)]) is ExportResult.SUCCESS
    sent = [json.loads(doc)["id"] for doc in json.loads(server.requests[1].body)["TraceSegmentDocuments"]]
    assert sent == [f"{1:016x}", f"{2:016x}"]
    counters = _stats.snapshot()
    assert (counters["export_errors_server"], counters["export_spans_sent"]) == (1, 2)
