"""Session 12 review of the OTLP exporters and the resilience layer: each test pins a defect it found.

Real parts throughout: the OTLP/HTTP receiver of `support.otlp_receiver`, a grpcio collector on
127.0.0.1 built from opentelemetry-proto's service definition, the real exporters behind the real
`ResilientExporter`. Only the wrapper's clock is fake, and its `sleep` overruns what it is asked
for (as a real one may on a busy machine), so the deadline logic is exercised without timing.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from support.grpc_collector import Collector, Partial
from support.otlp_receiver import Fault, OTLPReceiver
from support.spans import make_spans

from nexs_serverless import stats
from nexs_serverless.config import from_env
from nexs_serverless.context import exporting
from nexs_serverless.exporters import create
from nexs_serverless.exporters.base import ExportResult
from nexs_serverless.exporters.breaker import CLOSED, OPEN
from nexs_serverless.exporters.errors import ErrorClass, ExportError
from nexs_serverless.exporters.otlp_grpc import OTLPGrpcExporter
from nexs_serverless.exporters.otlp_http import OTLPHttpExporter
from nexs_serverless.exporters.resilient import Options, ResilientExporter


class OverrunningClock:
    """Monotonic time that moves only when slept on; each sleep lasts `overrun_s` longer than asked."""

    def __init__(self, overrun_s: float = 0.05) -> None:
        self.now = 1000.0
        self.overrun_s = overrun_s
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds + self.overrun_s


def resilient(receiver: OTLPReceiver, clock: OverrunningClock, **options: Any) -> ResilientExporter:
    """The real OTLP/HTTP exporter to `receiver` behind the wrapper, on `clock`, jitter at its cap."""
    return ResilientExporter(
        OTLPHttpExporter(endpoint=receiver.url, timeout_s=5.0),
        options=Options(**options),
        clock=clock,
        sleep=clock.sleep,
        random=lambda: 0.99,
    )


def flush(wrapped: ResilientExporter, clock: OverrunningClock, spans: Any, budget_s: float) -> ExportResult:
    with exporting(clock.now + budget_s):
        return wrapped.export(spans)


# -- Retry-After ------------------------------------------------------------------------------


def test_a_retry_after_that_is_not_a_number_keeps_a_503s_spans(receiver: OTLPReceiver) -> None:
    """A 503 whose Retry-After is Latin-1 "²" stays a retryable SERVER failure: its spans are kept.

    `str.isdigit` calls "²" a digit and `float` refuses it: the ValueError escaped the
    exporter, was classified SERIALIZATION, and the batch was dropped as unencodable.
    """
    receiver.misbehave(Fault.status_code(503, retry_after="\u00b2"))
    wrapped = ResilientExporter(OTLPHttpExporter(endpoint=receiver.url), options=Options(max_retries=0))
    try:
        assert wrapped.export(make_spans(2)) is ExportResult.FAILURE
    finally:
        wrapped.shutdown()  # counts the two kept spans as dropped at shutdown: read before
    counters = stats()
    assert counters.get("spans_dropped_serialization", 0) == 0
    assert counters["export_errors_server"] == 1
    assert counters["spans_dropped_shutdown"] == 2  # they were in the carry-over


def test_a_non_numeric_retry_after_is_read_as_none(receiver: OTLPReceiver) -> None:
    """The exporter's error for that 503 is SERVER with no pause, rather than a ValueError."""
    receiver.misbehave(Fault.status_code(503, retry_after="\u00b3"))
    exporter = OTLPHttpExporter(endpoint=receiver.url)
    try:
        with pytest.raises(ExportError) as caught:
            exporter.send(make_spans(1), 5.0)
    finally:
        exporter.shutdown()
    assert (caught.value.error_class, caught.value.retry_after_s, caught.value.status) == (
        ErrorClass.SERVER,
        None,
        503,
    )


# -- a retry's wait that overruns the flush deadline ------------------------------------------


def test_a_failure_whose_retry_wait_overran_the_deadline_charges_the_breaker(receiver: OTLPReceiver) -> None:
    """A 503, a backoff that fits the budget, a sleep that overruns it: the breaker counts the failure.

    It was returned as "deadline reached before an attempt", which charges nobody: a back end
    failing every flush this way never opened the breaker.
    """
    clock = OverrunningClock()
    receiver.misbehave(Fault.status_code(503))
    # Budget 1 s; the backoff (0.99 * 1 s) fits it, the sleep (+0.05 s) does not.
    wrapped = resilient(receiver, clock, max_retries=1, backoff_s=1.0, max_backoff_s=1.0, failure_threshold=1)
    assert flush(wrapped, clock, make_spans(2), budget_s=1.0) is ExportResult.FAILURE
    assert clock.sleeps == [0.99]
    assert len(receiver.requests) == 1  # no time was left for the retry
    assert wrapped.breaker.state == OPEN
    assert len(wrapped.carryover) == 2
    assert stats()["export_deadline_reached"] == 1


def test_a_half_open_probe_whose_retry_wait_overran_reopens_the_breaker(receiver: OTLPReceiver) -> None:
    """The failed probe reopens the breaker for a cool-down: the next flush is skipped, not a second probe.

    Before, the failed probe was given back as one that never reached the back end, so
    every later flush probed the failing back end again at once.
    """
    clock = OverrunningClock()
    wrapped = resilient(
        receiver, clock, max_retries=1, backoff_s=1.0, max_backoff_s=1.0, failure_threshold=1, cooldown_s=10.0
    )
    wrapped.breaker.trip()  # down since an earlier flush
    clock.now += 10.0  # the cool-down is over: the next flush is the probe
    receiver.misbehave(Fault.status_code(503))
    assert flush(wrapped, clock, make_spans(1, "probe"), budget_s=1.0) is ExportResult.FAILURE
    assert flush(wrapped, clock, make_spans(1, "next"), budget_s=1.0) is ExportResult.FAILURE
    assert len(receiver.requests) == 1  # only the probe reached the back end
    assert stats()["export_skipped_breaker_open"] == 1
    assert stats()["breaker_reopened"] == 1
    assert len(wrapped.carryover) == 2


def test_a_retry_after_waited_out_before_the_deadline_passed_is_not_asked_for_again(
    receiver: OTLPReceiver,
) -> None:
    """The 503's 1 s pause was slept (past the deadline): one failure counted, no second pause imposed."""
    clock = OverrunningClock()
    receiver.misbehave(Fault.status_code(503, retry_after="1"))
    wrapped = resilient(receiver, clock, max_retries=1, failure_threshold=3)
    assert flush(wrapped, clock, make_spans(1, "a"), budget_s=1.02) is ExportResult.FAILURE
    assert clock.sleeps == [1.0]
    assert wrapped.breaker.failures == 1
    assert stats().get("export_deferred_retry_after", 0) == 0
    assert flush(wrapped, clock, make_spans(1, "b"), budget_s=1.0) is ExportResult.SUCCESS
    assert receiver.span_names() == ["a-0", "b-0"]  # the kept span first, each once
    assert wrapped.breaker.state == CLOSED


# -- which protocol an exporter speaks ----------------------------------------------------------


def test_otlp_proto_http_posts_to_v1_traces_when_the_protocol_says_grpc(receiver: OTLPReceiver) -> None:
    """``OTEL_TRACES_EXPORTER=otlp_proto_http`` speaks HTTP: the base endpoint gets ``/v1/traces``.

    With ``OTEL_EXPORTER_OTLP_PROTOCOL=grpc`` set for every signal, the HTTP exporter took the
    gRPC endpoint rules and posted to the base endpoint's ``/`` (or to localhost:4317 by default).
    """
    settings = from_env(
        {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint}
    )
    exporter = create("otlp_proto_http", settings)
    assert isinstance(exporter, OTLPHttpExporter)
    try:
        assert exporter.send(make_spans(1), 5.0) == 0
    finally:
        exporter.shutdown()
    assert [request.path for request in receiver.requests] == ["/v1/traces"]


def test_otlp_follows_the_protocol_setting() -> None:
    """``OTEL_TRACES_EXPORTER=otlp`` is the one the protocol setting chooses for (and the HTTP default)."""
    grpc_settings = from_env({"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc"})
    exporter = create("otlp", grpc_settings)
    assert isinstance(exporter, OTLPGrpcExporter)
    assert exporter.endpoint == "http://localhost:4317"
    http_exporter = create("otlp", from_env({}))
    assert isinstance(http_exporter, OTLPHttpExporter)
    assert http_exporter.endpoint == "http://localhost:4318/v1/traces"


# -- OTLP/gRPC ----------------------------------------------------------------------------------


def test_a_grpc_call_is_not_made_with_no_time_left(collector: tuple[Collector, str]) -> None:
    """With the budget spent, send fails as TIMEOUT without a call, and the channel is kept.

    It made the call with a 1 ms deadline: the collector could take it while the exporter
    reported a failure (the retry sending the spans twice), and the DEADLINE_EXCEEDED dropped
    the healthy channel, so the next export connected again.
    """
    servicer, endpoint = collector
    exporter = OTLPGrpcExporter(endpoint=endpoint)
    try:
        exporter.prepare()
        channel = exporter._channel
        with pytest.raises(ExportError) as caught:
            exporter.send(make_spans(1, "late"), 0.0)
        assert caught.value.error_class == ErrorClass.TIMEOUT
        assert exporter._channel is channel
        assert exporter.send(make_spans(1, "next"), 5.0) == 0
        assert exporter._channel is channel
    finally:
        exporter.shutdown()
    names = [
        span.name for request in servicer.requests for span in request.resource_spans[0].scope_spans[0].spans
    ]
    assert names == ["next-0"]


def test_grpc_partial_success_is_logged_like_http(
    collector: tuple[Collector, str], caplog: pytest.LogCaptureFixture
) -> None:
    """Spans a gRPC collector rejects are logged with its message, as over HTTP (not only counted)."""
    servicer, endpoint = collector
    servicer.script.append(Partial(2, "spans too old"))
    exporter = OTLPGrpcExporter(endpoint=endpoint)
    try:
        with caplog.at_level(logging.WARNING, logger="nexs_serverless"):
            assert exporter.send(make_spans(3), 5.0) == 2
    finally:
        exporter.shutdown()
    assert "rejected 2 span(s): spans too old" in caplog.text
