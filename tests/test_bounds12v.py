"""Review 12 of the bounds: logged-once memory, counter names, re-entered flushes, unwrappable exporters."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from nexs_serverless import _guard as guard
from nexs_serverless import _stats, configure, flush, stats, traced_handler, tracer
from nexs_serverless._watchdog import Watchdog
from nexs_serverless.context import _invocation_deadline, export_deadline
from nexs_serverless.exporters import InMemoryExporter
from nexs_serverless.exporters.base import ExportResult
from nexs_serverless.flushing import shutdown_flush
from nexs_serverless.testing import LambdaContext

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence


def _warnings(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and text in r.getMessage()]


# -- logged once -----------------------------------------------------------------------------------


def test_a_new_failure_is_still_logged_after_many_other_keys(caplog: pytest.LogCaptureFixture) -> None:
    """Keys carrying outside text (a back end's partial-success messages) filled the dedup set, and no
    later failure of any kind was ever logged again; the set stays bounded all the same."""
    for i in range(3 * guard._MAX_KEYS):
        guard.warn_once(f"otlp_partial_success:span {i} rejected", "rejected: %s", i)
    caplog.clear()
    guard.report("flush", RuntimeError("exporter list broken"))
    assert len(_warnings(caplog, "internal error in flush")) == 1
    assert len(guard._seen) <= guard._MAX_KEYS


def test_a_recurring_failure_is_logged_once_among_one_off_keys(caplog: pytest.LogCaptureFixture) -> None:
    """A failure that keeps coming back is remembered as recent: one-off keys passing by never make it
    log again (forgetting the oldest key first would log it once per `_MAX_KEYS` of them)."""
    for i in range(4 * guard._MAX_KEYS):
        guard.report("export:OTLPHttpExporter", ConnectionError("refused"))
        guard.warn_once(f"config:NEXS_X={i}", "bad value %s", i)
    assert len(_warnings(caplog, "internal error in export:OTLPHttpExporter")) == 1
    assert stats()["internal_errors"] == 4 * guard._MAX_KEYS


# -- counter names ---------------------------------------------------------------------------------


def test_counter_names_from_flush_reasons_are_bounded(exporter: InMemoryExporter) -> None:
    """``flush(reason=...)`` is the caller's text: one name per request id grew the counters (and every
    stats log line) for the life of the process; past the bound they are counted, not kept."""
    flushes = _stats._MAX_NAMES + 100
    for i in range(flushes):
        tracer.span("work").end()
        assert flush(reason=f"request-{i}") == 1
    assert len(_stats._counters) <= _stats._MAX_NAMES + 1  # and the overflow counter
    counters = stats()
    assert counters["spans_flushed"] == flushes  # the package's own counters still count
    assert counters["stats_names_dropped"] >= 100
    assert len(exporter.spans) == flushes


def test_a_gauges_maximum_is_kept_when_two_threads_observe_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two flushes ending together read the old maximum, and the smaller value could be written last."""
    first_inside = threading.Event()
    second_started = threading.Event()
    second_done = threading.Event()
    first: list[threading.Thread] = []

    class _PausingGauges(dict):  # type: ignore[type-arg]
        """Holds the first thread between reading the maximum and writing it, so the second can run."""

        def get(self, key: object, default: object = None) -> object:
            value = super().get(key, default)
            if key == "flush_ms_max" and threading.current_thread() in first:
                first_inside.set()
                second_started.wait(10.0)
                second_done.wait(0.2)  # the second needs microseconds; with the lock it waits for us
            return value

    monkeypatch.setattr(_stats, "_gauges", _PausingGauges())
    slow = threading.Thread(target=_stats.observe, args=("flush_ms", 10.0))
    first.append(slow)
    slow.start()
    assert first_inside.wait(10.0)
    fast = threading.Thread(
        target=lambda: (second_started.set(), _stats.observe("flush_ms", 20.0), second_done.set())
    )
    fast.start()
    slow.join()
    fast.join()
    assert _stats.snapshot()["flush_ms_max"] == 20.0


# -- the flush lock --------------------------------------------------------------------------------


class _Flushing:
    """An exporter that flushes (itself, or through a library it calls) from inside its export."""

    def __init__(self, call: Callable[[], object]) -> None:
        self.call = call
        self.names: list[str] = []

    def export(self, spans: Sequence[object]) -> ExportResult:
        self.call()
        self.names.extend(span.name for span in spans)  # type: ignore[attr-defined]
        return ExportResult.SUCCESS


@pytest.mark.parametrize(
    "call",
    [flush, lambda: shutdown_flush(1000, reason="sigterm")],
    ids=["flush", "shutdown_flush"],
)
def test_a_flush_from_inside_a_flush_returns_at_once(call: Callable[[], object]) -> None:
    """The inner flush waited for the lock its own thread held, for its whole budget (past the
    invocation's remaining time), then gave up: it now returns at once, counted."""
    inner = _Flushing(call)
    configure(exporters=[inner], flush_timeout_ms=5000)

    @traced_handler
    def handler(event: object, context: object) -> str:
        return "ok"

    assert handler({}, LambdaContext(timeout_ms=10_000)) == "ok"
    assert inner.names == ["test-function"]
    counters = stats()
    assert counters["flush_reentered"] == 1
    assert "flush_lock_timeouts" not in counters


class _Deadlines:
    """Records the flush deadline each export is given (what its socket timeouts are capped by)."""

    def __init__(self) -> None:
        self.deadlines: list[float] = []

    def export(self, spans: Sequence[object]) -> ExportResult:
        self.deadlines.append(export_deadline())
        return ExportResult.SUCCESS


def test_a_flush_inside_an_invocation_ends_before_its_deadline() -> None:
    """`flush()` in a handler, or the OpenTelemetry bridge's ``force_flush(30000)``, took its whole budget
    past the invocation's deadline (the platform then ended it as timed out, its result lost)."""
    recorder = _Deadlines()
    configure(exporters=[recorder], environ={"NEXS_FLUSH_SAFETY_MARGIN_MS": "50"})
    ends_by = time.monotonic() + 0.3  # what `invocation.begin` publishes from the remaining time
    token = _invocation_deadline.set(ends_by)
    try:
        tracer.span("work").end()
        assert flush(30_000, reason="otel_force_flush") == 1
    finally:
        _invocation_deadline.reset(token)
    tracer.span("after").end()
    assert flush(30_000) == 1  # outside an invocation: the budget asked for
    inside, outside = recorder.deadlines
    assert inside <= ends_by - 0.05
    assert outside > ends_by + 10


# -- exporters that cannot be wrapped --------------------------------------------------------------


class _Proxy:
    """An exporter proxy (an RPC stub) whose unknown attributes raise instead of AttributeError."""

    def export(self, spans: Sequence[object]) -> ExportResult:
        return ExportResult.SUCCESS

    def __getattr__(self, name: str) -> object:
        raise RuntimeError(f"remote object has no {name!r}")


def test_an_exporter_that_cannot_be_wrapped_leaves_the_others_their_spans(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Wrapping `exporters=[...]` failed as a whole: every flush lost every exporter's spans, uncounted.
    Now the odd one is left out, reported once, as an unbuildable environment exporter is."""
    memory = InMemoryExporter()
    configure(exporters=[_Proxy(), memory])

    @traced_handler
    def handler(event: object, context: object) -> str:
        with tracer.span("work"):
            return "ok"

    for _ in range(2):
        assert handler({}, LambdaContext()) == "ok"
    assert sorted(span.name for span in memory.spans) == ["test-function"] * 2 + ["work"] * 2
    assert stats()["internal_errors"] == 1  # built once, then kept
    assert len(_warnings(caplog, "internal error in exporter:_Proxy")) == 1


# -- the guard's timer -----------------------------------------------------------------------------


def test_a_guard_whose_timer_thread_cannot_start_is_not_left_pending(monkeypatch: pytest.MonkeyPatch) -> None:
    """`arm` raised with its callback still pending: one more leaked per invocation while threads ran
    out, each firing (a spurious timeout flush) once a timer thread finally started."""
    timer = Watchdog()
    fired: list[str] = []

    def no_thread(self: threading.Thread) -> None:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", no_thread)  # failure injection: the thread limit
    with pytest.raises(RuntimeError):
        timer.arm(time.monotonic(), lambda: fired.append("leaked"))
    monkeypatch.undo()
    assert timer.pending() == 0
    done = threading.Event()
    timer.arm(time.monotonic(), done.set)
    assert done.wait(10.0)
    assert fired == []


def _watchdog_idle() -> None:
    """Wait until every guard callback due by now has run (the timer runs them in due order)."""
    from nexs_serverless._watchdog import watchdog

    done = threading.Event()
    watchdog.arm(time.monotonic(), done.set)
    assert done.wait(10.0)


def test_a_deadline_nearer_than_the_guard_margin_does_not_fire_the_guard_at_once(
    exporter: InMemoryExporter,
) -> None:
    """2 s left and a 5 s guard margin: the guard was due at once, marked the healthy invocation timed
    out and ended its spans as they began; it now keeps half the time left for its flush."""
    configure(exporters=[exporter], timeout_guard_ms=5000)

    @traced_handler
    def handler(event: object, context: object) -> str:
        _watchdog_idle()  # a guard due now has run by here
        with tracer.span("work"):
            pass
        return "ok"

    assert handler({}, LambdaContext(timeout_ms=2000)) == "ok"
    assert "timeout_guard_fired" not in stats()
    assert all("nexs.force_ended" not in span.attributes for span in exporter.spans)
    (root,) = [span for span in exporter.spans if span.name == "test-function"]
    assert "nexs.timed_out" not in root.attributes
    assert root.status_code == 0


def test_flush_in_a_handler_ends_before_the_invocations_deadline() -> None:
    """`flush(30_000)` inside a handler with 400 ms left was given its 30 s (a black-holed back end
    held the handler past its deadline): now its export deadline is the invocation's minus the margin."""
    recorder = _Deadlines()
    configure(exporters=[recorder])

    @traced_handler
    def handler(event: object, context: object) -> float:
        tracer.span("work").end()
        flush(30_000)
        return time.monotonic() + context.get_remaining_time_in_millis() / 1000.0  # type: ignore[attr-defined]

    ends_by = handler({}, LambdaContext(timeout_ms=400))
    assert recorder.deadlines[0] <= ends_by  # 50 ms margin, less the whole ms the context rounds to
