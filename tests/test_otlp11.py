"""Session 11: the OTLP exporters against the OTLP specification's failure rules and size limits."""

from __future__ import annotations

import gzip
import http.server
import threading
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from support.export_checks import export_counters, wrap_resilient
from support.grpc_collector import Collector
from support.otlp_receiver import Fault, OTLPReceiver
from support.spans import make_span, make_spans

from nexs_serverless import stats
from nexs_serverless.config import from_env
from nexs_serverless.exporters import _otlp_split, create, otlp_encode
from nexs_serverless.exporters.base import ExportResult, outcome
from nexs_serverless.exporters.errors import DROPPED, ErrorClass, ExportError, classify_status
from nexs_serverless.exporters.otlp_grpc import OTLPGrpcExporter
from nexs_serverless.exporters.otlp_http import OTLPHttpExporter
from nexs_serverless.model import InstrumentationScope, Resource

MIB = 1024 * 1024


def _names(requests: list[trace_service_pb2.ExportTraceServiceRequest]) -> list[list[str]]:
    """The span names of each request, decoded by opentelemetry-proto."""
    return [[s.name for rs in r.resource_spans for ss in rs.scope_spans for s in ss.spans] for r in requests]


# -- OTLP/HTTP: only 429, 502, 503 and 504 are retried ----------------------------------------


@pytest.mark.parametrize("status", [500, 501, 505, 408])
def test_http_status_the_spec_says_not_to_retry_is_sent_once_and_dropped(
    receiver: OTLPReceiver, otlp_http: OTLPHttpExporter, status: int
) -> None:
    """500, 501, 505 and 408 are not retried nor carried over: one request, the spans counted as dropped."""
    wrapped = wrap_resilient(otlp_http)
    receiver.misbehave(Fault.status_code(status))
    assert wrapped.export(make_spans(3, "first")) is ExportResult.FAILURE
    assert wrapped.export(make_spans(1, "second")) is ExportResult.SUCCESS
    assert len(receiver.requests) == 2  # no retry, and the next flush carries nothing over
    assert receiver.span_names() == ["second-0"]
    assert export_counters() == {
        "export_errors_refused": 1,
        "spans_dropped_refused": 3,
        "export_spans_sent": 1,
    }


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_http_status_the_spec_says_to_retry_is_retried(
    receiver: OTLPReceiver, otlp_http: OTLPHttpExporter, status: int
) -> None:
    """429, 502, 503 and 504 are retried within the flush, and the spans arrive once."""
    receiver.misbehave(Fault.status_code(status))
    assert wrap_resilient(otlp_http).export(make_spans(2)) is ExportResult.SUCCESS
    assert len(receiver.requests) == 2
    assert receiver.span_names() == ["span-0", "span-1"]
    assert export_counters()["export_retries"] == 1


def test_the_cloud_apis_keep_their_own_retry_rules() -> None:
    """classify_status (X-Ray API, Cloud Trace, Azure) still retries 500 and 408, as those APIs advise."""
    assert classify_status(500) == ErrorClass.SERVER
    assert classify_status(501) == ErrorClass.SERVER
    assert classify_status(408) == ErrorClass.TIMEOUT


# -- OTLP/gRPC: the specification's table ------------------------------------------------------


# OTLP specification, "OTLP/gRPC Response", "Failures": the table. Not retryable means dropped,
# except the two auth codes, which every exporter here keeps for a later flush.
SPEC_TABLE = [
    ("CANCELLED", True),
    ("UNKNOWN", False),
    ("INVALID_ARGUMENT", False),
    ("DEADLINE_EXCEEDED", True),
    ("NOT_FOUND", False),
    ("ALREADY_EXISTS", False),
    ("PERMISSION_DENIED", False),
    ("UNAUTHENTICATED", False),
    ("RESOURCE_EXHAUSTED", False),
    ("FAILED_PRECONDITION", False),
    ("ABORTED", True),
    ("OUT_OF_RANGE", True),
    ("UNIMPLEMENTED", False),
    ("INTERNAL", False),
    ("UNAVAILABLE", True),
    ("DATA_LOSS", True),
]


@pytest.mark.parametrize(("code", "retryable"), SPEC_TABLE)
def test_grpc_codes_follow_the_spec_table(
    collector: tuple[Collector, str], code: str, retryable: bool
) -> None:
    """Each status code is retryable or not as the table says; a non-retryable one drops the spans."""
    servicer, endpoint = collector
    servicer.script.append(grpc.StatusCode[code])
    otlp = OTLPGrpcExporter(endpoint=endpoint)
    try:
        with pytest.raises(ExportError) as caught:
            otlp.send(make_spans(1), 5.0)
    finally:
        otlp.shutdown()
    assert caught.value.retryable is retryable
    dropped = caught.value.error_class in DROPPED
    assert dropped is (not retryable and code not in ("UNAUTHENTICATED", "PERMISSION_DENIED"))


@pytest.mark.parametrize("code", ["INTERNAL", "UNKNOWN"])
def test_grpc_internal_and_unknown_are_dropped_not_carried(
    collector: tuple[Collector, str], code: str
) -> None:
    """INTERNAL and UNKNOWN: one call, spans counted as dropped; the next flush sends only its own."""
    servicer, endpoint = collector
    servicer.script.append(grpc.StatusCode[code])
    otlp = OTLPGrpcExporter(endpoint=endpoint)
    wrapped = wrap_resilient(otlp)
    try:
        assert wrapped.export(make_spans(2, "first")) is ExportResult.FAILURE
        assert wrapped.export(make_spans(1, "second")) is ExportResult.SUCCESS
    finally:
        otlp.shutdown()
    assert servicer.calls == 2
    assert _names(servicer.requests) == [["second-0"]]
    assert export_counters() == {
        "export_errors_refused": 1,
        "spans_dropped_refused": 2,
        "export_spans_sent": 1,
    }


def test_grpc_resource_exhausted_with_retry_info_waits_the_delay_and_retries(
    collector: tuple[Collector, str],
) -> None:
    """RESOURCE_EXHAUSTED with RetryInfo is retried after exactly its retry_delay."""
    servicer, endpoint = collector
    detail = any_pb2.Any()
    detail.Pack(error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(nanos=20_000_000)))
    servicer.script.append(status_pb2.Status(code=8, message="slow down", details=[detail]))
    otlp = OTLPGrpcExporter(endpoint=endpoint)
    sleeps: list[float] = []
    try:
        assert wrap_resilient(otlp, sleep=sleeps.append).export(make_spans(2)) is ExportResult.SUCCESS
    finally:
        otlp.shutdown()
    assert sleeps == [0.02]
    assert _names(servicer.requests) == [["span-0", "span-1"]]


# -- batches larger than the collector takes --------------------------------------------------


def test_grpc_batch_over_the_default_4_mib_goes_as_several_calls(collector: tuple[Collector, str]) -> None:
    """A 6 MiB batch to a stock gRPC server (4 MiB limit) arrives whole, in order, in calls under 4 MiB."""
    servicer, endpoint = collector
    otlp = OTLPGrpcExporter(endpoint=endpoint)
    spans = make_spans(6, attributes={"blob": "x" * MIB})
    try:
        assert wrap_resilient(otlp).export(spans) is ExportResult.SUCCESS
    finally:
        otlp.shutdown()
    assert _names(servicer.requests) == [["span-0", "span-1", "span-2"], ["span-3", "span-4", "span-5"]]
    assert all(request.ByteSize() <= 4 * MIB for request in servicer.requests)
    assert servicer.calls == 2
    assert export_counters() == {"export_spans_sent": 6}


def test_grpc_span_over_the_limit_on_its_own_is_dropped_and_counted(collector: tuple[Collector, str]) -> None:
    """With a 16 KiB limit, the one 32 KiB span is dropped and counted; the others arrive in order."""
    servicer, endpoint = collector
    otlp = OTLPGrpcExporter(endpoint=endpoint, max_request_bytes=16 * 1024)
    spans = make_spans(4, attributes={"blob": "y" * 5000})
    spans[1] = make_span(name="huge", span_id=99, attributes={"blob": "z" * 32 * 1024})
    try:
        assert outcome(otlp.send(spans, 5.0)) == (0, 1)  # none rejected, one dropped
    finally:
        otlp.shutdown()
    assert [name for names in _names(servicer.requests) for name in names] == ["span-0", "span-2", "span-3"]
    assert all(request.ByteSize() <= 16 * 1024 for request in servicer.requests)
    assert stats()["spans_dropped_oversize"] == 1


class _Limited(http.server.BaseHTTPRequestHandler):
    """An OTLP/HTTP collector with a request body limit: 413 over it, else accepted and decoded."""

    protocol_version = "HTTP/1.1"
    server: _LimitedServer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        status = 413 if len(body) > self.server.limit else 200
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        with self.server.lock:
            self.server.answers.append((status, len(body)))
            if status == 200:
                self.server.requests.append(trace_service_pb2.ExportTraceServiceRequest.FromString(body))
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()


class _LimitedServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, limit: int) -> None:
        super().__init__(("127.0.0.1", 0), _Limited)
        self.limit = limit
        self.lock = threading.Lock()
        self.answers: list[tuple[int, int]] = []
        self.requests: list[trace_service_pb2.ExportTraceServiceRequest] = []


@pytest.fixture
def limited() -> Iterator[tuple[_LimitedServer, str]]:
    server = _LimitedServer(limit=64 * 1024)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield server, f"http://127.0.0.1:{server.server_address[1]}/v1/traces"
    server.shutdown()
    server.server_close()


def test_http_413_sends_the_batch_again_in_halves_and_remembers(limited: tuple[_LimitedServer, str]) -> None:
    """A 413 splits the batch in halves that arrive in order; the next batch is split up front, no 413."""
    server, url = limited
    otlp = OTLPHttpExporter(endpoint=url, timeout_s=5.0)
    try:
        first = make_spans(8, "first", attributes={"blob": "a" * 12_000})
        assert wrap_resilient(otlp).export(first) is ExportResult.SUCCESS
        assert [status for status, _ in server.answers] == [413, 200, 200]
        assert otlp.send(make_spans(8, "second", attributes={"blob": "b" * 12_000}), 5.0) == 0
    finally:
        otlp.shutdown()
    refused = server.answers[0][1]
    assert [status for status, _ in server.answers[3:]] == [200, 200, 200]  # no second 413
    assert all(size <= refused // 2 for _, size in server.answers[3:])
    names = _names(server.requests)
    assert names[:2] == [[f"first-{i}" for i in range(4)], [f"first-{i}" for i in range(4, 8)]]
    assert [name for part in names[2:] for name in part] == [f"second-{i}" for i in range(8)]
    assert export_counters() == {"export_spans_sent": 8}


def test_http_span_refused_alone_is_dropped_and_counted(limited: tuple[_LimitedServer, str]) -> None:
    """The one span the collector refuses even alone is dropped and counted; the others arrive in order."""
    server, url = limited
    otlp = OTLPHttpExporter(endpoint=url, timeout_s=5.0)
    spans = make_spans(4, attributes={"blob": "c" * 1000})
    spans[2] = make_span(name="huge", span_id=99, attributes={"blob": "d" * 100_000})
    try:
        assert outcome(otlp.send(spans, 5.0)) == (0, 1)  # none rejected, one dropped
    finally:
        otlp.shutdown()
    assert [name for part in _names(server.requests) for name in part] == ["span-0", "span-1", "span-3"]
    assert stats()["spans_dropped_oversize"] == 1


def test_http_configured_limit_splits_before_sending(limited: tuple[_LimitedServer, str]) -> None:
    """With max_request_bytes set, a big batch goes as requests under it and never meets a 413."""
    server, url = limited
    otlp = OTLPHttpExporter(endpoint=url, timeout_s=5.0, max_request_bytes=32 * 1024, compression="gzip")
    spans = make_spans(10, attributes={"blob": "e" * 10_000})
    try:
        assert otlp.send(spans, 5.0) == 0
    finally:
        otlp.shutdown()
    assert len(server.answers) == 4  # 3 spans (about 30 KB) per request
    assert {status for status, _ in server.answers} == {200}
    assert all(request.ByteSize() <= 32 * 1024 for request in server.requests)
    assert [name for part in _names(server.requests) for name in part] == [f"span-{i}" for i in range(10)]


def test_a_batch_under_the_limit_is_encoded_once(
    collector: tuple[Collector, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The common path encodes each span once, as before splitting existed."""
    encoded: list[str] = []
    encode_span = otlp_encode._span

    def counting(span: Any) -> bytes:
        encoded.append(span.name)
        return encode_span(span)

    monkeypatch.setattr(otlp_encode, "_span", counting)
    otlp = OTLPGrpcExporter(endpoint=collector[1])
    try:
        otlp.send(make_spans(3), 5.0)
    finally:
        otlp.shutdown()
    assert encoded == ["span-0", "span-1", "span-2"]


def test_split_parts_keep_every_resource_and_scope() -> None:
    """Each part decodes with its own spans' resource and scope, and the parts keep the batch's order."""
    other = Resource({"service.name": "other"})
    scope = InstrumentationScope("lib", "2")
    spans = [
        make_span(
            name=f"s{i}",
            span_id=i + 1,
            attributes={"v": "f" * 3000},
            **({"resource": other} if i % 3 == 0 else {}),
            **({"instrumentation_scope": scope} if i % 2 else {}),
        )
        for i in range(12)
    ]
    parts, too_big = _otlp_split.split_spans(spans, 8000)
    assert too_big == 0
    assert len(parts) > 1
    for members, body in parts:
        assert len(body) <= 8000
        request = trace_service_pb2.ExportTraceServiceRequest.FromString(body)
        decoded = []
        for resource_spans in request.resource_spans:
            service = resource_spans.resource.attributes[0].value.string_value
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    index = int(span.name[1:])
                    assert service == ("other" if index % 3 == 0 else "svc")
                    assert scope_spans.scope.name == ("lib" if index % 2 else "nexs_serverless")
                    decoded.append(span.name)
        assert sorted(decoded) == sorted(member.name for member in members)
    assert [member.name for members, _ in parts for member in members] == [f"s{i}" for i in range(12)]


def test_request_limit_setting() -> None:
    """NEXS_OTLP_MAX_REQUEST_BYTES sets both exporters' limit; unset, gRPC uses 4 MiB and HTTP none."""
    http_default = create("otlp_proto_http", from_env({}))
    grpc_default = create("otlp_proto_grpc", from_env({}))
    assert isinstance(http_default, OTLPHttpExporter)
    assert http_default.max_request_bytes is None
    assert isinstance(grpc_default, OTLPGrpcExporter)
    assert grpc_default.max_request_bytes == 4 * MIB
    settings = from_env({"NEXS_OTLP_MAX_REQUEST_BYTES": "1000000"})
    http_set = create("otlp_proto_http", settings)
    grpc_set = create("otlp_proto_grpc", settings)
    assert isinstance(http_set, OTLPHttpExporter)
    assert http_set.max_request_bytes == 1_000_000
    assert isinstance(grpc_set, OTLPGrpcExporter)
    assert grpc_set.max_request_bytes == 1_000_000
    for exporter in (http_default, grpc_default, http_set, grpc_set):
        exporter.shutdown()


def test_a_bad_request_limit_is_reported_and_falls_back(caplog: pytest.LogCaptureFixture) -> None:
    """A limit that is not an integer >= 1024 logs one line naming it; gRPC keeps its 4 MiB."""
    with caplog.at_level("WARNING", logger="nexs_serverless"):
        otlp = create("otlp_proto_grpc", from_env({"NEXS_OTLP_MAX_REQUEST_BYTES": "10"}))
    assert isinstance(otlp, OTLPGrpcExporter)
    assert otlp.max_request_bytes == 4 * MIB
    assert "NEXS_OTLP_MAX_REQUEST_BYTES" in caplog.text
    otlp.shutdown()


@pytest.mark.parametrize("exporter_class", [OTLPHttpExporter, OTLPGrpcExporter])
@pytest.mark.parametrize("limit", [0, -1, 1.5, "4096"])
def test_a_bad_request_limit_argument_raises(exporter_class: type[object], limit: object) -> None:
    """max_request_bytes must be a positive int: anything else fails at construction."""
    with pytest.raises(ValueError, match="max_request_bytes"):
        exporter_class(endpoint="http://127.0.0.1:4318/v1/traces", max_request_bytes=limit)
