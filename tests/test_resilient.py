"""ResilientExporter: retries, breaker, carry-over and counters, with a fake sender and a fake clock."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from support.spans import make_spans

from nexs_serverless import configure, stats
from nexs_serverless.config import from_env
from nexs_serverless.context import exporting
from nexs_serverless.exporters import InMemoryExporter
from nexs_serverless.exporters.adapt import adapt
from nexs_serverless.exporters.base import ExportResult
from nexs_serverless.exporters.breaker import CLOSED, OPEN
from nexs_serverless.exporters.errors import ErrorClass, ExportError
from nexs_serverless.exporters.otel_sdk import OTelSDKExporter
from nexs_serverless.exporters.resilient import Options, ResilientExporter
from nexs_serverless.finished import FinishedSpan


class FakeClock:
    """Monotonic time that moves only when told (or when `sleep` is called)."""

    def __init__(self) -> None:
        self.now = 5000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class FakeSender:
    """An exporter with the `send` seam that plays a script of outcomes (None: accept)."""

    def __init__(self, clock: FakeClock, *script: ExportError | int | None, cost_s: float = 0.0) -> None:
        self.clock = clock
        self.script = list(script)
        self.cost_s = cost_s
        self.batches: list[list[str]] = []
        self.timeouts: list[float] = []
        self.delivered: list[str] = []
        self.shut = False

    def send(self, spans: Sequence[Any], timeout_s: float) -> int:
        self.batches.append([span.name for span in spans])
        self.timeouts.append(timeout_s)
        self.clock.now += self.cost_s
        outcome = self.script.pop(0) if self.script else None
        if isinstance(outcome, ExportError):
            raise outcome
        self.delivered.extend(span.name for span in spans)
        return outcome or 0

    def export(self, spans: Sequence[Any]) -> ExportResult:
        raise AssertionError("the wrapper must use send()")

    def shutdown(self) -> None:
        self.shut = True


def err(error_class: str, retry_after_s: float | None = None) -> ExportError:
    return ExportError(error_class, error_class, retry_after_s=retry_after_s)


def wrap(sender: object, clock: FakeClock, **options: Any) -> ResilientExporter:
    values: dict[str, Any] = {"max_retries": 2, "backoff_s": 0.01, "failure_threshold": 3, "cooldown_s": 10.0}
    values.update(options)
    return ResilientExporter(
        sender, options=Options(**values), clock=clock, sleep=clock.sleep, random=lambda: 0.5
    )


def export(wrapped: ResilientExporter, clock: FakeClock, spans: Sequence[Any], budget_s: float = 1.0) -> Any:
    with exporting(clock.now + budget_s):
        return wrapped.export(spans)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def test_success_passes_spans_through(clock: FakeClock) -> None:
    """A healthy back end gets the batch once; SUCCESS; counted as sent."""
    sender = FakeSender(clock)
    wrapped = wrap(sender, clock)
    assert export(wrapped, clock, make_spans(3)) is ExportResult.SUCCESS
    assert sender.batches == [["span-0", "span-1", "span-2"]]
    assert stats()["export_spans_sent"] == 3
    assert len(wrapped.carryover) == 0


def test_retryable_failures_are_retried_with_backoff(clock: FakeClock) -> None:
    """503 then timeout then success: two retries, jittered exponential delays."""
    sender = FakeSender(clock, err(ErrorClass.SERVER), err(ErrorClass.TIMEOUT))
    wrapped = wrap(sender, clock)
    assert export(wrapped, clock, make_spans(1)) is ExportResult.SUCCESS
    assert len(sender.batches) == 3
    assert clock.sleeps == [0.005, 0.01]  # 0.5 * 0.01 * 2**n
    assert stats()["export_retries"] == 2
    assert stats()["export_errors_server"] == 1
    assert stats()["export_errors_timeout"] == 1


def test_auth_failure_is_not_retried_and_is_carried(clock: FakeClock) -> None:
    """401: one attempt, the spans wait in the carry-over, the breaker counts a failure."""
    sender = FakeSender(clock, err(ErrorClass.AUTH))
    wrapped = wrap(sender, clock)
    assert export(wrapped, clock, make_spans(2)) is ExportResult.FAILURE
    assert len(sender.batches) == 1
    assert len(wrapped.carryover) == 2
    assert wrapped.breaker.failures == 1
    assert stats()["export_spans_carried_over"] == 2


def test_bad_request_is_dropped_and_does_not_charge_the_breaker(clock: FakeClock) -> None:
    """400: resending cannot help; the batch is dropped and counted; the back end is up."""
    sender = FakeSender(clock, err(ErrorClass.BAD_REQUEST))
    wrapped = wrap(sender, clock)
    assert export(wrapped, clock, make_spans(2)) is ExportResult.FAILURE
    assert len(wrapped.carryover) == 0
    assert stats()["spans_dropped_bad_request"] == 2
    assert wrapped.breaker.failures == 0


def test_retries_never_pass_the_flush_deadline(clock: FakeClock) -> None:
    """Each attempt gets only the time left; no retry starts past the deadline."""
    sender = FakeSender(clock, *[err(ErrorClass.SERVER)] * 10, cost_s=0.4)
    wrapped = wrap(sender, clock, max_retries=10, backoff_s=0.0)
    start = clock.now
    assert export(wrapped, clock, make_spans(1), budget_s=1.0) is ExportResult.FAILURE
    assert clock.now - start <= 1.0 + 0.4  # the last attempt was given only what was left
    assert sender.timeouts[0] == pytest.approx(1.0)
    assert all(timeout <= 1.0 for timeout in sender.timeouts)
    assert sender.timeouts[-1] == pytest.approx(1.0 - 0.4 * (len(sender.timeouts) - 1))
    assert len(wrapped.carryover) == 1


def test_retry_after_beyond_the_budget_pauses_the_exporter(clock: FakeClock) -> None:
    """429 with Retry-After 30 s: no retry now, and no attempt for the next 30 s."""
    sender = FakeSender(clock, err(ErrorClass.THROTTLED, retry_after_s=30.0))
    wrapped = wrap(sender, clock)
    assert export(wrapped, clock, make_spans(1, "a")) is ExportResult.FAILURE
    assert clock.sleeps == []
    clock.now += 29
    export(wrapped, clock, make_spans(1, "b"))
    assert len(sender.batches) == 1
    assert stats()["export_skipped_breaker_open"] == 1
    clock.now += 1
    assert export(wrapped, clock, make_spans(1, "c")) is ExportResult.SUCCESS
    assert sender.delivered == ["a-0", "b-0", "c-0"]


def test_retry_after_within_the_budget_is_waited(clock: FakeClock) -> None:
    """429 with a short Retry-After: the wrapper waits exactly that long, then retries."""
    sender = FakeSender(clock, err(ErrorClass.THROTTLED, retry_after_s=0.2))
    wrapped = wrap(sender, clock)
    assert export(wrapped, clock, make_spans(1)) is ExportResult.SUCCESS
    assert clock.sleeps == [0.2]


def test_carry_over_goes_out_first_and_exactly_once(clock: FakeClock) -> None:
    """Spans of a failed flush are sent, oldest first, with the next successful flush, once."""
    sender = FakeSender(clock, err(ErrorClass.AUTH))
    wrapped = wrap(sender, clock)
    export(wrapped, clock, make_spans(2, "old"))
    export(wrapped, clock, make_spans(1, "new"))
    export(wrapped, clock, make_spans(1, "later"))
    assert sender.delivered == ["old-0", "old-1", "new-0", "later-0"]
    assert sender.batches[1] == ["old-0", "old-1", "new-0"]
    assert stats()["export_spans_resent"] == 2
    assert len(wrapped.carryover) == 0


def test_carry_over_is_bounded_and_drops_the_oldest(clock: FakeClock) -> None:
    """When the carry-over is full the oldest spans go, counted."""
    sender = FakeSender(clock, *[err(ErrorClass.AUTH)] * 3)
    wrapped = wrap(sender, clock, carryover_spans=3, failure_threshold=100)
    export(wrapped, clock, make_spans(2, "a"))
    export(wrapped, clock, make_spans(2, "b"))
    assert [span.name for span in wrapped.carryover.take()] == ["a-1", "b-0", "b-1"]
    assert stats()["spans_dropped_carryover_full"] == 1


def test_carried_spans_are_frozen_copies(clock: FakeClock) -> None:
    """The carry-over holds FinishedSpan copies, never the pooled records."""
    from nexs_serverless import tracer
    from nexs_serverless.runtime import runtime

    with tracer.span("live"):
        pass
    live = runtime.buffer.take_ended()
    wrapped = wrap(FakeSender(clock, err(ErrorClass.AUTH)), clock)
    export(wrapped, clock, live)
    (held,) = wrapped.carryover.take()
    assert type(held) is FinishedSpan
    assert held is not live[0]
    assert held.span_id == live[0].span_id


def test_open_breaker_skips_the_export(clock: FakeClock) -> None:
    """After `threshold` failed flushes nothing is attempted until the cool-down ends."""
    sender = FakeSender(clock, *[err(ErrorClass.NETWORK)] * 9)
    wrapped = wrap(sender, clock, max_retries=0)
    for _ in range(3):
        export(wrapped, clock, make_spans(1))
    assert wrapped.breaker.state == OPEN
    calls = len(sender.batches)
    for _ in range(5):
        assert export(wrapped, clock, make_spans(1)) is ExportResult.FAILURE
    assert len(sender.batches) == calls
    assert stats()["export_skipped_breaker_open"] == 5
    assert len(wrapped.carryover) == 8


def test_recovery_delivers_everything_once_and_counters_add_up(clock: FakeClock) -> None:
    """Back end down, breaker opens, comes back: every span arrives once; the books balance."""
    sender = FakeSender(clock, *[err(ErrorClass.SERVER)] * 3)
    wrapped = wrap(sender, clock, max_retries=0)
    names: list[str] = []
    for invocation in range(6):
        spans = make_spans(2, f"inv{invocation}")
        names.extend(span.name for span in spans)
        export(wrapped, clock, spans)
    assert wrapped.breaker.state == OPEN
    assert sender.delivered == []
    clock.now += 10
    spans = make_spans(2, "inv6")
    names.extend(span.name for span in spans)
    assert export(wrapped, clock, spans) is ExportResult.SUCCESS
    assert wrapped.breaker.state == CLOSED
    assert sender.delivered == names
    counters = stats()
    assert counters["export_spans_sent"] == len(names)
    assert counters["export_spans_carried_over"] == 12
    assert counters["export_spans_resent"] == 12
    assert counters["breaker_opened"] == 1
    assert counters["breaker_closed"] == 1


def test_failed_probe_keeps_the_spans(clock: FakeClock) -> None:
    """A probe that fails reopens the breaker and keeps everything for later."""
    sender = FakeSender(clock, err(ErrorClass.NETWORK), err(ErrorClass.NETWORK))
    wrapped = wrap(sender, clock, max_retries=0, failure_threshold=1)
    export(wrapped, clock, make_spans(1, "a"))
    clock.now += 10
    export(wrapped, clock, make_spans(1, "b"))
    assert wrapped.breaker.state == OPEN
    assert [span.name for span in wrapped.carryover.take()] == ["a-0", "b-0"]


def test_batches_are_bounded_and_a_failure_keeps_only_the_rest(clock: FakeClock) -> None:
    """Sends at most max_batch_spans per request; after a failure only unsent spans are kept."""
    sender = FakeSender(clock, None, err(ErrorClass.AUTH))
    wrapped = wrap(sender, clock, max_batch_spans=2)
    export(wrapped, clock, make_spans(5))
    assert sender.batches == [["span-0", "span-1"], ["span-2", "span-3"]]
    assert [span.name for span in wrapped.carryover.take()] == ["span-2", "span-3", "span-4"]


def test_rejected_spans_are_counted_not_resent(clock: FakeClock) -> None:
    """A partial success counts rejected spans; they are not retried."""
    sender = FakeSender(clock, 2)
    wrapped = wrap(sender, clock)
    assert export(wrapped, clock, make_spans(5)) is ExportResult.SUCCESS
    assert stats()["export_spans_rejected"] == 2
    assert stats()["export_spans_sent"] == 3
    assert len(wrapped.carryover) == 0


def test_force_flush_sends_the_carry_over_even_when_open(clock: FakeClock) -> None:
    """At exit the carry-over goes out within the budget, whatever the breaker says."""
    sender = FakeSender(clock, err(ErrorClass.NETWORK))
    wrapped = wrap(sender, clock, max_retries=0, failure_threshold=1)
    export(wrapped, clock, make_spans(2))
    assert wrapped.breaker.state == OPEN
    assert wrapped.force_flush(500) is True
    assert sender.delivered == ["span-0", "span-1"]
    assert len(wrapped.carryover) == 0


def test_force_flush_respects_its_budget(clock: FakeClock) -> None:
    """A back end still down at exit: force_flush returns False within its budget."""
    sender = FakeSender(clock, *[err(ErrorClass.SERVER)] * 10, cost_s=0.2)
    wrapped = wrap(sender, clock, max_retries=5, backoff_s=0.0)
    wrapped.carryover.keep(make_spans(1))
    start = clock.now
    assert wrapped.force_flush(500) is False
    assert clock.now - start <= 0.5 + 0.2
    assert len(wrapped.carryover) == 1


def test_shutdown_counts_what_is_left(clock: FakeClock) -> None:
    """Spans still held at shutdown are counted as dropped; the inner exporter is shut down."""
    sender = FakeSender(clock, err(ErrorClass.AUTH))
    wrapped = wrap(sender, clock)
    export(wrapped, clock, make_spans(3))
    wrapped.shutdown()
    assert stats()["spans_dropped_shutdown"] == 3
    assert sender.shut


def test_export_only_exporter_is_driven_through_export(clock: FakeClock) -> None:
    """Without send(), export() is used; a FAILURE result is an UNKNOWN failure, carried."""
    memory = InMemoryExporter()
    wrapped = wrap(memory, clock)
    assert export(wrapped, clock, make_spans(1, "a")) is ExportResult.SUCCESS
    memory.shutdown()  # later exports fail
    assert export(wrapped, clock, make_spans(1, "b")) is ExportResult.FAILURE
    assert stats()["export_errors_unknown"] == 1
    assert len(wrapped.carryover) == 1


def test_a_raising_sender_never_reaches_the_caller(clock: FakeClock) -> None:
    """Any exception from the inner exporter is classified; export still returns a result."""

    class Broken:
        def send(self, spans: Sequence[Any], timeout_s: float) -> int:
            raise ZeroDivisionError("bug")

    wrapped = wrap(Broken(), clock)
    assert export(wrapped, clock, make_spans(1)) is ExportResult.FAILURE
    assert stats()["export_errors_unknown"] == 1


def test_adapt_wraps_ours_and_sdk_exporters_once() -> None:
    """adapt() puts every exporter behind its own wrapper; SDK ones after the SDK adapter."""
    settings = from_env({})
    ours = adapt(InMemoryExporter(), settings)
    assert isinstance(ours, ResilientExporter)
    assert adapt(ours, settings) is ours
    sdk = adapt(InMemorySpanExporter(), settings)
    assert isinstance(sdk, ResilientExporter)
    assert isinstance(sdk.inner, OTelSDKExporter)
    assert sdk.breaker is not ours.breaker


def test_settings_come_from_the_environment(caplog: pytest.LogCaptureFixture) -> None:
    """NEXS_EXPORT_* configure the wrapper; a bad value logs one line and falls back."""
    env = {
        "NEXS_EXPORT_BREAKER_FAILURES": "5",
        "NEXS_EXPORT_BREAKER_COOLDOWN_MS": "2500",
        "NEXS_EXPORT_MAX_RETRIES": "0",
        "NEXS_EXPORT_CARRYOVER_SPANS": "10",
        "NEXS_EXPORT_MAX_BATCH_SPANS": "many",
    }
    with caplog.at_level(logging.WARNING, logger="nexs_serverless"):
        wrapped = adapt(InMemoryExporter(), from_env(env))
    assert isinstance(wrapped, ResilientExporter)
    assert wrapped.breaker.failure_threshold == 5
    assert wrapped.breaker.cooldown_s == 2.5
    assert wrapped.retry.max_retries == 0
    assert wrapped.carryover.max_spans == 10
    assert wrapped.options.max_batch_spans == 512
    assert "NEXS_EXPORT_MAX_BATCH_SPANS" in caplog.text


def test_configured_exporters_are_wrapped_by_the_runtime() -> None:
    """configure(exporters=[...]) puts each one behind its own breaker."""
    from nexs_serverless.runtime import runtime

    first, second = InMemoryExporter(), InMemoryExporter()
    configure(exporters=[first, second])
    built = runtime.exporters()
    assert [type(item) for item in built] == [ResilientExporter, ResilientExporter]
    assert [item.inner for item in built] == [first, second]  # type: ignore[attr-defined]


def test_reconfiguring_counts_the_carry_over_it_discards() -> None:
    """configure() rebuilds exporters; spans waiting in a carry-over are counted as dropped."""
    from nexs_serverless import configure, flush, stats, tracer
    from nexs_serverless.exporters import ExportResult

    class Down:
        def export(self, spans: object) -> ExportResult:
            return ExportResult.FAILURE

        def force_flush(self, timeout_millis: int = 0) -> bool:
            return True

        def shutdown(self) -> None:
            return None

    configure(exporters=[Down()])
    with tracer.span("waiting"):
        pass
    flush()
    assert stats()["export_spans_carried_over"] == 1
    configure(exporters=[Down()])
    assert stats()["spans_dropped_reconfigure"] == 1


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"failure_threshold": 0}, "failure_threshold must be an int >= 1, got 0"),
        ({"cooldown_s": 0.0}, "cooldown_s must be positive, got 0.0"),
        ({"max_retries": -1}, "max_retries must be an int >= 0, got -1"),
        ({"backoff_s": -0.1}, "backoff delays must not be negative"),
        ({"carryover_spans": -1}, "carryover_spans must be an int >= 0, got -1"),
        ({"max_batch_spans": 0}, "max_batch_spans must be an int >= 1, got 0"),
    ],
)
def test_bad_options_raise_before_any_failure(bad: dict[str, Any], message: str) -> None:
    """Options the breaker, retry or carry-over would refuse raise at once, not at the first failure."""
    with pytest.raises(ValueError, match=re.escape(message)):
        Options(**bad)


# Runs in a fresh interpreter (argv[1]: the tests folder, for `support`): a cold start through
# `@traced_handler` with the OTLP/HTTP exporter built by the background prepare thread, one
# invocation the receiver accepts, one it answers 503, one after it recovered.
_COLD_START_SCRIPT = """
import json, sys, threading
sys.path.insert(0, sys.argv[1])
from support.otlp_receiver import Fault, OTLPReceiver
from nexs_serverless import configure, stats, traced_handler

FAILURE_PATH = (
    "nexs_serverless.exporters.breaker",
    "nexs_serverless.exporters.carryover",
    "nexs_serverless.exporters.errors",
    "nexs_serverless.exporters.retry",
    "nexs_serverless.finished",
)

class Context:
    aws_request_id = "request-1"
    def get_remaining_time_in_millis(self):
        return 30_000

def loaded():
    return [name for name in FAILURE_PATH if name in sys.modules]

with OTLPReceiver() as receiver:
    configure(environ={
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": receiver.url,
        "NEXS_EXPORT_BACKOFF_MS": "1",
    })
    before = loaded()

    @traced_handler
    def handler(event, context):
        return "ok"

    for thread in threading.enumerate():
        if thread.name == "nexs-prepare-exporters":
            thread.join()
    handler({}, Context())
    after_success = loaded()
    received_after_success = len(receiver.spans())
    receiver.mode = Fault.status_code(503)
    handler({}, Context())
    after_failure = loaded()
    counters = stats()
    receiver.mode = None
    handler({}, Context())
    print(json.dumps({
        "before": before,
        "after_success": after_success,
        "received_after_success": received_after_success,
        "after_failure": after_failure,
        "retries": counters.get("export_retries", 0),
        "carried_over": counters.get("export_spans_carried_over", 0),
        "received_at_the_end": len(receiver.spans()),
        "resent": stats().get("export_spans_resent", 0),
    }))
"""


def test_failure_path_modules_load_at_the_first_failed_export_only() -> None:
    """A successful OTLP/HTTP export loads no breaker/retry/carry-over/error module; a 503 does."""
    done = subprocess.run(
        [sys.executable, "-c", _COLD_START_SCRIPT, str(Path(__file__).parent)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    report = json.loads(done.stdout)
    assert report["before"] == []
    assert report["after_success"] == []
    assert report["received_after_success"] == 1
    assert report["after_failure"] == [
        "nexs_serverless.exporters.breaker",
        "nexs_serverless.exporters.carryover",
        "nexs_serverless.exporters.errors",
        "nexs_serverless.exporters.retry",
        "nexs_serverless.finished",
    ]
    assert report["retries"] == 2  # NEXS_EXPORT_MAX_RETRIES' default, then kept
    assert report["carried_over"] == 1
    assert report["received_at_the_end"] == 3  # the kept span went out with the next flush, once
    assert report["resent"] == 1


def test_a_probe_that_never_reached_the_back_end_is_given_back(clock: FakeClock) -> None:
    """A half-open breaker's probe taken by a flush with no time left, or nothing to send, is freed.

    Otherwise the breaker would stay half-open with its probe out, skip every later
    export, and the back end's recovery would never be noticed.
    """
    sender = FakeSender(clock, err(ErrorClass.NETWORK))
    wrapped = wrap(sender, clock, max_retries=0, failure_threshold=1)
    export(wrapped, clock, make_spans(1, "a"))
    assert wrapped.breaker.state == OPEN
    clock.now += 10  # the cool-down is over: the next export probes
    export(wrapped, clock, make_spans(1, "b"), budget_s=0.0)  # past its deadline before an attempt
    export(wrapped, clock, [])  # then nothing to send (tail sampling kept nothing)
    assert export(wrapped, clock, make_spans(1, "c")) is ExportResult.SUCCESS
    assert wrapped.breaker.state == CLOSED
    assert sender.delivered == ["a-0", "b-0", "c-0"]


@pytest.mark.parametrize("error_class", [ErrorClass.THROTTLED, ErrorClass.SERVER])
def test_retry_after_holds_off_later_flushes_when_not_waited_out(clock: FakeClock, error_class: str) -> None:
    """A 429 or a 503 naming a pause: when this flush gives up, the next ones wait for it too.

    Here the pause (2 s) fits the budget but no retry is left; before, only a 429 whose
    pause passed the deadline held later flushes off, so they kept hitting the back end.
    """
    sender = FakeSender(clock, err(error_class, retry_after_s=2.0))
    wrapped = wrap(sender, clock, max_retries=0)
    assert export(wrapped, clock, make_spans(1, "a"), budget_s=5.0) is ExportResult.FAILURE
    clock.now += 1.9
    export(wrapped, clock, make_spans(1, "b"), budget_s=5.0)
    assert len(sender.batches) == 1
    assert stats()["export_deferred_retry_after"] == 1
    clock.now += 0.1
    assert export(wrapped, clock, make_spans(1, "c")) is ExportResult.SUCCESS
    assert sender.delivered == ["a-0", "b-0", "c-0"]


def test_a_rejected_count_past_the_batch_is_capped(clock: FakeClock) -> None:
    """A back end claiming more rejected spans than it was sent cannot make the sent count negative."""
    sender = FakeSender(clock, 10)
    wrapped = wrap(sender, clock)
    export(wrapped, clock, make_spans(2))
    assert stats()["export_spans_rejected"] == 2
    assert stats().get("export_spans_sent", 0) == 0


def test_a_retry_after_pause_is_capped(clock: FakeClock) -> None:
    """A back end asking for an absurd pause (a typo, a bug) stops exports for 15 minutes at most."""
    sender = FakeSender(clock, err(ErrorClass.THROTTLED, retry_after_s=1e20))
    wrapped = wrap(sender, clock, max_retries=0)
    export(wrapped, clock, make_spans(1, "a"))
    clock.now += 899
    export(wrapped, clock, make_spans(1, "b"))
    assert len(sender.batches) == 1
    clock.now += 1
    assert export(wrapped, clock, make_spans(1, "c")) is ExportResult.SUCCESS
    assert sender.delivered == ["a-0", "b-0", "c-0"]


def test_an_exporter_that_cannot_prepare_does_not_keep_the_next_from_it() -> None:
    """The background preparation goes on past an exporter whose `prepare` raises (counted once)."""
    prepared: list[str] = []

    class Preparing(InMemoryExporter):
        def __init__(self, name: str, fails: bool) -> None:
            super().__init__()
            self.name, self.fails = name, fails

        def prepare(self) -> None:
            if self.fails:
                raise RuntimeError("a bug in this exporter's prepare")
            prepared.append(self.name)

    configure(exporters=[Preparing("first", fails=True), Preparing("second", fails=False)])
    from nexs_serverless.runtime import runtime

    runtime._prepare()
    assert prepared == ["second"]
    assert stats()["internal_errors"] == 1


def test_a_back_end_not_reachable_at_prepare_is_counted_not_reported_as_a_bug(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Connection refused while preparing is the first flush's to classify and log: no traceback now."""

    class Refusing(InMemoryExporter):
        def prepare(self) -> None:
            raise ConnectionRefusedError(111, "Connection refused")

    configure(exporters=[Refusing()])
    from nexs_serverless.runtime import runtime

    with caplog.at_level(logging.WARNING, logger="nexs_serverless"):
        runtime._prepare()
    assert stats()["prepare_failed"] == 1
    assert "internal_errors" not in stats()
    assert caplog.records == []
