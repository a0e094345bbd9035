"""Review 10 of the OTLP exporters: gRPC against real grpcio servers, wire fidelity, carry-over under load."""

from __future__ import annotations

import math
import random
import socket
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan
from opentelemetry.proto.trace.v1.trace_pb2 import Status as PbStatus
from support.otlp_receiver import free_port
from support.otlp_values import attrs
from support.spans import make_span, make_spans

from nexs_serverless import configure, stats
from nexs_serverless.config import from_env
from nexs_serverless.context import exporting
from nexs_serverless.exporters import create
from nexs_serverless.exporters.base import ExportResult
from nexs_serverless.exporters.errors import ErrorClass, ExportError
from nexs_serverless.exporters.otlp_grpc import OTLPGrpcExporter
from nexs_serverless.exporters.resilient import Options, ResilientExporter
from nexs_serverless.model import Event, InstrumentationScope, Link, Resource, SpanContext, SpanKind
from nexs_serverless.runtime import runtime


class Collector(trace_service_pb2_grpc.TraceServiceServicer):
    """Records the requests it accepts; `script` makes the next calls fail or hold."""

    def __init__(self) -> None:
        self.requests: list[trace_service_pb2.ExportTraceServiceRequest] = []
        self.script: list[Any] = []
        self.fail_rate = 0.0
        self.entered = threading.Event()
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.random = random.Random(7)

    def Export(self, request: Any, context: grpc.ServicerContext) -> Any:
        with self.lock:
            action = self.script.pop(0) if self.script else None
            flap = self.random.random() < self.fail_rate
        if action == "hold":  # answer UNAVAILABLE once the test says so
            self.entered.set()
            self.release.wait(10)
            context.abort(grpc.StatusCode.UNAVAILABLE, "held, then down")
        if isinstance(action, status_pb2.Status):
            context.abort_with_status(rpc_status.to_status(action))
        if isinstance(action, grpc.StatusCode):
            context.abort(action, "failed on purpose")
        if flap:
            context.abort(grpc.StatusCode.UNAVAILABLE, "flapping")
        with self.lock:
            self.requests.append(request)
        return trace_service_pb2.ExportTraceServiceResponse()

    def spans(self) -> list[Any]:
        with self.lock:
            return [
                s for r in self.requests for rs in r.resource_spans for ss in rs.scope_spans for s in ss.spans
            ]


def _serve(servicer: Collector, port: int = 0) -> tuple[grpc.Server, int]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(servicer, server)
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    return server, bound


@pytest.fixture
def collector() -> Iterator[tuple[Collector, str]]:
    servicer = Collector()
    server, port = _serve(servicer)
    yield servicer, f"http://127.0.0.1:{port}"
    servicer.release.set()
    server.stop(None)


def _retry_info(seconds: int, nanos: int = 0) -> any_pb2.Any:
    detail = any_pb2.Any()
    detail.Pack(error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=seconds, nanos=nanos)))
    return detail


# -- gRPC: status codes, hung and closing servers ------------------------------------------


@pytest.mark.parametrize(
    ("status", "error_class", "retry_after_s"),
    [
        (status_pb2.Status(code=14, message="busy", details=[_retry_info(3)]), ErrorClass.SERVER, 3.0),
        (status_pb2.Status(code=14, message="busy"), ErrorClass.SERVER, None),
        (status_pb2.Status(code=8, message="full", details=[_retry_info(0, 250_000_000)]), "throttled", 0.25),
        (status_pb2.Status(code=8, message="full"), ErrorClass.BAD_REQUEST, None),
        (status_pb2.Status(code=13, message="bug"), ErrorClass.REFUSED, None),
        (status_pb2.Status(code=2, message="?"), ErrorClass.REFUSED, None),
        (status_pb2.Status(code=3, message="bad"), ErrorClass.BAD_REQUEST, None),
        (status_pb2.Status(code=16, message="who"), ErrorClass.AUTH, None),
    ],
)
def test_grpc_status_codes_and_retry_info(
    collector: tuple[Collector, str], status: status_pb2.Status, error_class: str, retry_after_s: float | None
) -> None:
    """Each status a collector can answer is classified per the OTLP spec, RetryInfo's delay kept."""
    servicer, endpoint = collector
    servicer.script.append(status)
    otlp = OTLPGrpcExporter(endpoint=endpoint)
    try:
        with pytest.raises(ExportError) as caught:
            otlp.send(make_spans(1), 5.0)
    finally:
        otlp.shutdown()
    assert caught.value.error_class == error_class
    assert caught.value.retry_after_s == retry_after_s


def test_deadline_exceeded_from_the_server_honours_retry_info(collector: tuple[Collector, str]) -> None:
    """DEADLINE_EXCEEDED is retryable; a RetryInfo the server sends with it is its pause, not ignored."""
    servicer, endpoint = collector
    servicer.script.append(status_pb2.Status(code=4, message="slow", details=[_retry_info(2)]))
    otlp = OTLPGrpcExporter(endpoint=endpoint)
    try:
        with pytest.raises(ExportError) as caught:
            otlp.send(make_spans(1), 5.0)
    finally:
        otlp.shutdown()
    assert caught.value.error_class == ErrorClass.TIMEOUT
    assert caught.value.retry_after_s == 2.0


@pytest.fixture
def silent_listener() -> Iterator[int]:
    """A TCP port that accepts connections and never says a byte (no HTTP/2 settings, no answer)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list[socket.socket] = []

    def accept() -> None:
        try:
            while True:
                accepted.append(listener.accept()[0])
        except OSError:  # the listener was closed: the test is over
            return

    threading.Thread(target=accept, daemon=True).start()
    yield listener.getsockname()[1]
    listener.close()
    for sock in accepted:
        sock.close()


def test_a_grpc_server_that_never_answers_ends_at_the_flush_deadline(silent_listener: int) -> None:
    """The flush's deadline, not the exporter's 10 s timeout, ends a call nobody answers; spans are kept."""
    inner = OTLPGrpcExporter(endpoint=f"http://127.0.0.1:{silent_listener}", timeout_s=10.0)
    resilient = ResilientExporter(inner, options=Options(max_retries=0))
    try:
        with exporting(time.monotonic() + 0.3):
            assert resilient.export(make_spans(4)) is ExportResult.FAILURE
    finally:
        inner.shutdown()
    counters = stats()
    assert counters["export_errors_timeout"] == 1  # ended by the deadline: the server never answers
    assert counters["export_spans_carried_over"] == 4
    assert len(resilient.carryover) == 4


def test_a_server_that_closes_each_connection_is_a_retryable_failure() -> None:
    """A peer that accepts and closes at once fails fast, retryably, and the spans are kept."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)

    def close_each() -> None:
        try:
            while True:
                listener.accept()[0].close()
        except OSError:  # the listener was closed: the test is over
            return

    threading.Thread(target=close_each, daemon=True).start()
    inner = OTLPGrpcExporter(endpoint=f"http://127.0.0.1:{listener.getsockname()[1]}")
    try:
        with pytest.raises(ExportError) as caught:
            inner.send(make_spans(1), 5.0)
        assert caught.value.retryable
    finally:
        inner.shutdown()
        listener.close()


# -- gRPC: the channel after failures -------------------------------------------------------


def test_grpc_channel_reconnects_at_once_when_the_collector_comes_back() -> None:
    """After an outage the next send reaches the collector; before, the failed channel sat out gRPC's
    reconnect backoff (1 s growing to 120 s), failing every export long after the collector was back."""
    port = free_port()
    otlp = OTLPGrpcExporter(endpoint=f"http://127.0.0.1:{port}")
    servicer = Collector()
    server: grpc.Server | None = None
    try:
        for _ in range(2):
            with pytest.raises(ExportError) as caught:
                otlp.send(make_spans(1), 2.0)
            assert caught.value.retryable
        server, _ = _serve(servicer, port)
        assert otlp.send(make_spans(2), 5.0) == 0
        assert [span.name for span in servicer.spans()] == ["span-0", "span-1"]
        channel = otlp._channel
        assert otlp.send(make_spans(1), 5.0) == 0
        assert otlp._channel is channel  # a working channel is kept
    finally:
        otlp.shutdown()
        if server is not None:
            server.stop(None)


def test_a_channel_closed_under_a_send_is_retryable_and_replaced(collector: tuple[Collector, str]) -> None:
    """A send that finds its channel closed (shut down or renewed by another thread) is a retryable
    network failure and the next send opens a new channel; before, it was UNKNOWN and never retried."""
    servicer, endpoint = collector
    otlp = OTLPGrpcExporter(endpoint=endpoint)
    try:
        otlp.send(make_spans(1), 5.0)
        otlp._channel.close()  # type: ignore[attr-defined]
        with pytest.raises(ExportError) as caught:
            otlp.send(make_spans(1), 5.0)
        assert caught.value.error_class == ErrorClass.NETWORK
        assert otlp.send(make_spans(1), 5.0) == 0
    finally:
        otlp.shutdown()
    assert len(servicer.spans()) == 2


def test_shutdown_closes_the_channel_and_a_later_send_reconnects(collector: tuple[Collector, str]) -> None:
    """shutdown() releases the channel; the exporter still works if a late flush uses it."""
    servicer, endpoint = collector
    otlp = OTLPGrpcExporter(endpoint=endpoint)
    otlp.send(make_spans(1), 5.0)
    otlp.shutdown()
    assert otlp._channel is None
    try:
        assert otlp.send(make_spans(1), 5.0) == 0
    finally:
        otlp.shutdown()
    assert len(servicer.spans()) == 2
    assert otlp.force_flush(0) is True


# -- settings: insecure and the endpoint's scheme ------------------------------------------


@pytest.mark.parametrize(
    ("environ", "target", "secure"),
    [
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "https://c:4317", "OTEL_EXPORTER_OTLP_INSECURE": "true"},
            "c:4317",
            True,
        ),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_INSECURE": "false"},
            "c:4317",
            False,
        ),
        (
            {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "c:4317", "OTEL_EXPORTER_OTLP_TRACES_INSECURE": "true"},
            "c:4317",
            False,
        ),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "c:4317"}, "c:4317", True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://[::1]:4317/"}, "[::1]:4317", False),
        ({}, "localhost:4317", False),
    ],
)
def test_grpc_endpoint_scheme_and_insecure(environ: dict[str, str], target: str, secure: bool) -> None:
    """The scheme decides TLS; ``_INSECURE`` only matters for an endpoint without one (OTLP spec)."""
    otlp = create("otlp_proto_grpc", from_env(environ))
    assert isinstance(otlp, OTLPGrpcExporter)
    assert (otlp.target, otlp.secure) == (target, secure)


def test_the_general_grpc_endpoint_gets_no_signal_path() -> None:
    """With protocol grpc, ``OTEL_EXPORTER_OTLP_ENDPOINT`` is used as is: /v1/traces is for HTTP only."""
    otlp = create(
        "otlp",
        from_env({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317"}),
    )
    assert isinstance(otlp, OTLPGrpcExporter)
    assert otlp.endpoint == "http://c:4317"


# -- encoding fidelity, over the wire -----------------------------------------------------


def test_every_field_survives_a_gzip_grpc_export(collector: tuple[Collector, str]) -> None:
    """A span with every attribute type, events, links, status and dropped counts decodes field for field."""
    servicer, endpoint = collector
    long_text = "é" * 70_000
    attributes = {
        "s": "text",
        "b": True,
        "i": -(2**63),
        "big": 2**64,
        "f": 1.5,
        "nan": math.nan,
        "inf": -math.inf,
        "empty": (),
        "mixed": ("a", 1, 2.5, True),
        "raw": b"\xff\x00",
        "surrogate": "bad\ud800",
        "long": long_text,
        "kv": {"k": 1},
        "ints": (1, -1, 2**40),
    }
    remote = SpanContext(0xABC, 0xDEF, 0, (("v", "1"), ("w", "2")), True)
    resource = Resource({"service.name": "svc", "host.count": 3})
    scope = InstrumentationScope("lib", "9.9")
    span = make_span(
        name="op\udcff",
        trace_id=2**128 - 1,
        span_id=2**64 - 1,
        parent_span_id=0x1234,
        parent_is_remote=True,
        trace_state=(("vendor", "x"),),
        kind=SpanKind.CONSUMER,
        start_ns=1,
        end_ns=2**63,
        attributes=attributes,
        events=(Event("ev", 7, {"e": "1"}, 2),),
        links=(Link(remote, {"l": 2.0}, 3),),
        status_code=2,
        status_description="failed",
        dropped_attributes=4,
        dropped_events=5,
        dropped_links=6,
        resource=resource,
        instrumentation_scope=scope,
    )
    otlp = OTLPGrpcExporter(endpoint=endpoint, compression="gzip")
    try:
        assert otlp.send([span], 5.0) == 0
    finally:
        otlp.shutdown()
    (request,) = servicer.requests
    (resource_spans,) = request.resource_spans
    assert attrs(resource_spans.resource.attributes) == {"service.name": "svc", "host.count": 3}
    (scope_spans,) = resource_spans.scope_spans
    assert (scope_spans.scope.name, scope_spans.scope.version) == ("lib", "9.9")
    (got,) = scope_spans.spans
    assert got.trace_id == b"\xff" * 16
    assert got.span_id == b"\xff" * 8
    assert got.parent_span_id == (0x1234).to_bytes(8, "big")
    assert got.trace_state == "vendor=x"
    assert got.name == "op?"
    assert got.kind == PbSpan.SPAN_KIND_CONSUMER
    assert (got.start_time_unix_nano, got.end_time_unix_nano) == (1, 2**63)
    assert got.flags == 0x301
    values = attrs(got.attributes)
    assert list(values) == list(attributes)
    assert math.isnan(values.pop("nan"))
    assert values == {
        "s": "text",
        "b": True,
        "i": -(2**63),
        "big": str(2**64),
        "f": 1.5,
        "inf": -math.inf,
        "empty": (),
        "mixed": ("a", 1, 2.5, True),
        "raw": b"\xff\x00",
        "surrogate": "bad?",
        "long": long_text,
        "kv": {"k": 1},
        "ints": (1, -1, 2**40),
    }
    (event,) = got.events
    assert (event.name, event.time_unix_nano, attrs(event.attributes), event.dropped_attributes_count) == (
        "ev",
        7,
        {"e": "1"},
        2,
    )
    (link,) = got.links
    assert link.trace_id == (0xABC).to_bytes(16, "big")
    assert link.span_id == (0xDEF).to_bytes(8, "big")
    assert link.trace_state == "v=1,w=2"
    assert attrs(link.attributes) == {"l": 2.0}
    assert link.dropped_attributes_count == 3
    assert link.flags == 0x300  # not sampled, remote
    assert (got.status.code, got.status.message) == (PbStatus.STATUS_CODE_ERROR, "failed")
    assert (got.dropped_attributes_count, got.dropped_events_count, got.dropped_links_count) == (4, 5, 6)


# -- carry-over: reconfiguration and concurrency --------------------------------------------


def test_a_flush_running_while_configure_rebuilds_counts_what_it_took(
    collector: tuple[Collector, str],
) -> None:
    """configure() during a failing flush: the spans that flush took from the carry-over (and its own) are
    counted as dropped; before, they went back into the discarded exporter, lost and never counted."""
    servicer, endpoint = collector
    inner = OTLPGrpcExporter(endpoint=endpoint)
    resilient = ResilientExporter(inner, options=Options(max_retries=0, failure_threshold=100))
    try:
        configure(exporters=[resilient])
        (live,) = runtime.exporters()
        assert live is resilient
        servicer.script.append(grpc.StatusCode.UNAVAILABLE)
        assert resilient.export(make_spans(5, "old")) is ExportResult.FAILURE
        assert len(resilient.carryover) == 5
        servicer.script.append("hold")
        flush = threading.Thread(target=resilient.export, args=(make_spans(3, "new"),))
        flush.start()
        assert servicer.entered.wait(10)
        configure(exporters=[])  # rebuilds the exporters while that flush waits for its answer
        servicer.release.set()
        flush.join(10)
    finally:
        inner.shutdown()
    counters = stats()
    assert counters.get("spans_dropped_reconfigure") == 8
    assert len(resilient.carryover) == 0
    assert servicer.spans() == []


def test_an_exporter_reused_after_configure_keeps_carrying(collector: tuple[Collector, str]) -> None:
    """The same wrapper passed to configure() again still keeps what its later flushes cannot send."""
    servicer, endpoint = collector
    inner = OTLPGrpcExporter(endpoint=endpoint)
    resilient = ResilientExporter(inner, options=Options(max_retries=0, failure_threshold=100))
    try:
        configure(exporters=[resilient])
        runtime.exporters()
        configure(exporters=[resilient])
        servicer.script.append(grpc.StatusCode.UNAVAILABLE)
        assert resilient.export(make_spans(2)) is ExportResult.FAILURE
        assert len(resilient.carryover) == 2
        assert resilient.export(make_spans(1, "next")) is ExportResult.SUCCESS
    finally:
        inner.shutdown()
    assert sorted(span.name for span in servicer.spans()) == ["next-0", "span-0", "span-1"]


def test_concurrent_flushes_against_a_flapping_collector_send_each_span_once(
    collector: tuple[Collector, str],
) -> None:
    """Six threads flush while the collector fails a third of the calls: no span arrives twice, every
    span not delivered is counted as dropped, and the carry-over never holds more than its bound."""
    servicer, endpoint = collector
    servicer.fail_rate = 0.35
    bound = 25
    inner = OTLPGrpcExporter(endpoint=endpoint)
    resilient = ResilientExporter(
        inner,
        options=Options(
            max_retries=1,
            backoff_s=0.0,
            failure_threshold=2,
            cooldown_s=0.001,
            carryover_spans=bound,
            max_batch_spans=7,
        ),
    )
    peaks: list[int] = []
    threads_n, flushes, per_flush = 6, 15, 4

    def flushing(worker: int) -> None:
        for flush in range(flushes):
            spans = [
                make_span(
                    name=f"w{worker}-f{flush}-{index}", span_id=(worker << 32) | (flush << 8) | index + 1
                )
                for index in range(per_flush)
            ]
            resilient.export(spans)
            peaks.append(len(resilient.carryover))

    workers = [threading.Thread(target=flushing, args=(worker,)) for worker in range(threads_n)]
    try:
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(60)
        servicer.fail_rate = 0.0
        time.sleep(0.01)  # let the breaker's 1 ms cool-down pass, whatever state the last flush left
        assert resilient.force_flush(10_000) is True
    finally:
        inner.shutdown()
    names = [span.name for span in servicer.spans()]
    assert len(names) == len(set(names))  # none sent twice
    counters = stats()
    dropped = counters.get("spans_dropped_carryover_full", 0)
    total = threads_n * flushes * per_flush
    assert len(names) + dropped == total  # every span delivered or counted
    assert counters["export_spans_sent"] == len(names)
    assert max(peaks) <= bound
