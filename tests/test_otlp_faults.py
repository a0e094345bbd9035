"""A traced handler exporting to a misbehaving OTLP receiver: results unchanged, flush bounded, spans kept."""

from __future__ import annotations

import threading

import pytest
from support.otlp_receiver import Fault, OTLPReceiver, free_port

from nexs_serverless import configure, stats, traced_handler, tracer
from nexs_serverless.exporters.breaker import CLOSED, OPEN, CircuitBreaker
from nexs_serverless.exporters.otlp_http import OTLPHttpExporter
from nexs_serverless.exporters.resilient import Options, ResilientExporter
from nexs_serverless.flushing import shutdown_flush
from nexs_serverless.testing import LambdaContext

# The flush budget: roomy enough for a retry on a loaded machine, far shorter than the slow
# fault's delay and the Retry-After below.
BUDGET_MS = 1000
# The exporter's own timeouts, far longer than the hang guard below: only the flush deadline can
# end a request the receiver does not answer in time. A flush that ignored its deadline would so
# be caught by what it leaves behind, not by a stopwatch: the slow fault's answer would arrive and
# deliver the spans, the 5 s Retry-After would be waited out and retried, and a hung receiver
# would hold the invocation past the hang guard.
EXPORTER_TIMEOUT_S = 120.0
# An invocation still running after this long has hung. Generous on purpose: it catches hangs,
# not slowness (speed is measured by the benchmark scripts, never asserted in tests).
HANG_GUARD_S = 30.0


def setup(endpoint: str, **options: object) -> ResilientExporter:
    """Route flushes to an OTLP/HTTP exporter at `endpoint`, behind a wrapper with `options`."""
    values: dict[str, object] = {"max_retries": 1, "backoff_s": 0.01, "timeout_s": EXPORTER_TIMEOUT_S}
    values.update(options)
    wrapped = ResilientExporter(
        OTLPHttpExporter(endpoint=endpoint, timeout_s=EXPORTER_TIMEOUT_S),
        options=Options(**values),  # type: ignore[arg-type]
    )
    configure(exporters=[wrapped], flush_timeout_ms=BUDGET_MS)
    return wrapped


@traced_handler
def handler(event: dict[str, int], context: object) -> dict[str, int]:
    with tracer.span("inner", attributes={"n": event["n"]}):
        pass
    return {"doubled": event["n"] * 2}


def invoke(n: int) -> dict[str, int]:
    """Call the handler (flush included) on a worker thread; its result, failing on a hang."""
    outcome: list[dict[str, int] | BaseException] = []

    def call() -> None:
        try:
            outcome.append(handler({"n": n}, LambdaContext(timeout_ms=30_000)))
        except BaseException as exc:  # re-raised below, on the test's thread
            outcome.append(exc)

    worker = threading.Thread(target=call, name="invocation", daemon=True)
    worker.start()
    worker.join(HANG_GUARD_S)
    assert not worker.is_alive(), f"the invocation has not returned after {HANG_GUARD_S} s: it hangs"
    (result,) = outcome
    if isinstance(result, BaseException):
        raise result
    return result


FAULTS = {
    "500": Fault.status_code(500),
    "503": Fault.status_code(503),
    "429-retry-after": Fault.status_code(429, retry_after="5"),
    "401": Fault.status_code(401),
    "400": Fault.status_code(400),
    "hang": Fault.hang(),
    "reset-before-status": Fault.reset_before_status(),
    "reset-after-status": Fault.reset_after_status(),
    "garbage": Fault.garbage(),
    "slow": Fault.slow(10.0),
}

# What each fault leaves behind when the flush keeps to its deadline: (requests the receiver saw,
# spans it accepted, the counters below that are not 0). One retry is allowed (max_retries=1).
# "hang" and "slow" use up the deadline in their first request, which then fails as TIMEOUT with
# no time left to retry; a 5 s Retry-After is longer than the flush, so it is deferred (breaker
# tripped), not waited out and retried. A 200 whose body is cut short is a delivery (the
# collector took the request): not retried, which would send the spans twice.
COUNTERS = (
    "export_retries",
    "export_errors_server",
    "export_errors_throttled",
    "export_errors_auth",
    "export_errors_bad_request",
    "export_errors_timeout",
    "export_errors_network",
    "export_deferred_retry_after",
    "spans_dropped_bad_request",
    "export_errors_refused",
    "spans_dropped_refused",
    "export_response_truncated",
    "export_spans_sent",
    "internal_errors",
)
OUTCOMES: dict[str, tuple[int, int, dict[str, int]]] = {
    "500": (1, 0, {"export_errors_refused": 1, "spans_dropped_refused": 2}),
    "503": (2, 0, {"export_errors_server": 2, "export_retries": 1}),
    "429-retry-after": (1, 0, {"export_errors_throttled": 1, "export_deferred_retry_after": 1}),
    "401": (1, 0, {"export_errors_auth": 1}),
    "400": (1, 0, {"export_errors_bad_request": 1, "spans_dropped_bad_request": 2}),
    "hang": (1, 0, {"export_errors_timeout": 1}),
    "reset-before-status": (2, 0, {"export_errors_network": 2, "export_retries": 1}),
    "reset-after-status": (1, 2, {"export_response_truncated": 1, "export_spans_sent": 2}),
    "garbage": (2, 0, {"export_errors_network": 2, "export_retries": 1}),
    "slow": (1, 0, {"export_errors_timeout": 1}),
}


@pytest.mark.parametrize("name", list(FAULTS))
def test_fault_leaves_the_result_unchanged_and_the_flush_bounded(receiver: OTLPReceiver, name: str) -> None:
    """Whatever the receiver does, the handler's result is intact and the flush ends by its deadline.

    The deadline shows in the outcome: a timeout, a deferred Retry-After, nothing delivered late.
    """
    setup(receiver.url)
    receiver.mode = FAULTS[name]
    assert invoke(21) == {"doubled": 42}
    requests, accepted, expected = OUTCOMES[name]
    assert len(receiver.spans()) == accepted
    assert len(receiver.requests) == requests
    counters = stats()
    assert {key: counters.get(key, 0) for key in COUNTERS} == {key: expected.get(key, 0) for key in COUNTERS}


def test_connection_refused(receiver: OTLPReceiver) -> None:
    """Nothing listening: result intact, a NETWORK failure retried once, spans kept for later."""
    wrapped = setup(f"http://127.0.0.1:{free_port()}/v1/traces")
    assert invoke(1) == {"doubled": 2}
    counters = stats()
    assert counters["export_errors_network"] == 2
    assert counters["export_retries"] == 1
    assert len(wrapped.carryover) == 2


@pytest.mark.parametrize(
    ("name", "kept", "dropped"),
    [
        ("503", 2, 0),
        ("hang", 2, 0),
        ("reset-before-status", 2, 0),
        ("reset-after-status", 0, 0),
        ("401", 2, 0),
        ("400", 0, 2),
        ("429-retry-after", 2, 0),
    ],
)
def test_unsent_spans_are_kept_unless_resending_cannot_help(
    receiver: OTLPReceiver, name: str, kept: int, dropped: int
) -> None:
    """Transient and auth failures keep the spans; a 400 drops them (counted); a cut 200 delivered them."""
    wrapped = setup(receiver.url)
    receiver.mode = FAULTS[name]
    invoke(1)
    assert len(wrapped.carryover) == kept
    assert stats().get("spans_dropped_bad_request", 0) == dropped


def test_transient_fault_is_retried_within_the_flush(receiver: OTLPReceiver) -> None:
    """One 503 then success: the retry delivers within the same invocation."""
    setup(receiver.url)
    receiver.misbehave(Fault.status_code(503))
    assert invoke(3) == {"doubled": 6}
    assert sorted(receiver.span_names()) == ["inner", "test-function"]
    assert stats()["export_retries"] == 1


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_skips_and_recovery_delivers_once(receiver: OTLPReceiver) -> None:
    """Back end down: the breaker opens after 3 invocations, later ones skip it; recovery delivers once."""
    wrapped = setup(receiver.url, max_retries=0)
    clock = FakeClock()
    wrapped.breaker = CircuitBreaker(failure_threshold=3, cooldown_s=10.0, clock=clock)
    receiver.mode = Fault.status_code(503)
    for n in range(3):
        assert invoke(n) == {"doubled": 2 * n}
    assert wrapped.breaker.state == OPEN
    attempts = len(receiver.requests)
    assert attempts == 3
    for n in range(3, 6):
        assert invoke(n) == {"doubled": 2 * n}
    assert len(receiver.requests) == attempts  # skipped: no request at all while open
    receiver.mode = None
    clock.now += 10.0
    invoke(6)
    assert wrapped.breaker.state == CLOSED
    got = receiver.spans()
    assert sorted(span.attributes[0].value.int_value for span in got if span.name == "inner") == list(
        range(7)
    )
    assert len(got) == len({span.span_id for span in got}) == 14  # exactly once
    counters = stats()
    assert counters["spans_flushed"] == 14
    assert counters["export_spans_sent"] == 14
    assert counters["export_spans_carried_over"] == 12
    assert counters["export_spans_resent"] == 12
    assert counters["export_skipped_breaker_open"] == 3
    assert counters["breaker_opened"] == 1
    assert counters["breaker_closed"] == 1
    assert counters.get("spans_dropped_carryover_full", 0) == 0
    assert len(wrapped.carryover) == 0


def test_shutdown_flush_sends_the_carry_over(receiver: OTLPReceiver) -> None:
    """At exit, spans waiting in the carry-over go out within the shutdown budget."""
    wrapped = setup(receiver.url, max_retries=0)
    receiver.mode = Fault.status_code(503)
    invoke(1)
    assert len(wrapped.carryover) == 2
    receiver.mode = None
    shutdown_flush(500)
    assert sorted(receiver.span_names()) == ["inner", "test-function"]
    assert len(wrapped.carryover) == 0


def test_stats_log_line_every_n_invocations(
    receiver: OTLPReceiver, capsys: pytest.CaptureFixture[str]
) -> None:
    """NEXS_STATS_LOG_EVERY=2 writes one JSON stats line every second invocation."""
    import json

    configure(
        exporters=None,
        flush_timeout_ms=BUDGET_MS,
        environ={
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": receiver.url,
            "NEXS_STATS_LOG_EVERY": "2",
        },
    )
    for n in range(4):
        invoke(n)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith('{"nexs_stats"')]
    assert len(lines) == 2
    last = json.loads(lines[-1])["nexs_stats"]
    assert last["invocations"] == 4
    assert last["export_spans_sent"] == 8
