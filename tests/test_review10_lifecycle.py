"""Review 10 of the invocation lifecycle: odd deadlines, the guard timer, nesting, pool and config bounds."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import pytest

from nexs_serverless import configure, stats, traced_handler, tracer
from nexs_serverless._watchdog import Watchdog, watchdog
from nexs_serverless.config import ConfigError, load
from nexs_serverless.context import remaining_export_s
from nexs_serverless.exporters import InMemoryExporter
from nexs_serverless.testing import LambdaContext


class _OddContext(LambdaContext):
    """A Lambda context stand-in whose remaining time is whatever the test says."""

    def __init__(self, remaining: object) -> None:
        super().__init__()
        self.remaining = remaining

    def get_remaining_time_in_millis(self) -> Any:
        return self.remaining


def _watchdog_idle() -> None:
    """Wait until every guard callback due by now has run (the timer runs them in due order)."""
    done = threading.Event()
    watchdog.arm(time.monotonic(), done.set)
    assert done.wait(5.0)


def test_a_nan_remaining_time_arms_no_guard(exporter: InMemoryExporter) -> None:
    """A context reporting NaN ms left has no readable deadline: the guard must not fire at once
    and mark a successful invocation as timed out (NaN compared false and made it due now)."""
    configure(exporters=[exporter], timeout_guard_ms=250)

    @traced_handler
    def handler(event: object, context: object) -> str:
        _watchdog_idle()
        return "ok"

    assert handler({}, _OddContext(float("nan"))) == "ok"
    _watchdog_idle()
    assert "timeout_guard_fired" not in stats()
    (root,) = exporter.get_finished_spans()
    assert "nexs.timed_out" not in root.attributes
    assert root.status_code == 0


@pytest.mark.parametrize("remaining", [float("inf"), 1e20])
def test_a_huge_remaining_time_still_flushes_with_the_flush_timeout(
    exporter: InMemoryExporter, remaining: float
) -> None:
    """An endless or absurd deadline leaves the invocation traced and flushed as usual."""

    @traced_handler
    def handler(event: object, context: object) -> str:
        return "ok"

    assert handler({}, _OddContext(remaining)) == "ok"
    assert len(exporter.get_finished_spans()) == 1
    assert watchdog.pending() == 0


def test_the_guard_timer_survives_a_due_time_decades_away() -> None:
    """`Lock.acquire` overflows past `threading.TIMEOUT_MAX`: the timer thread died of it, and every
    guard armed meanwhile waited on a dead thread (a context reporting 1e20 ms left did it)."""
    timer = Watchdog()
    fired = threading.Event()
    timer.arm(time.monotonic(), fired.set)
    assert fired.wait(5.0)
    ticket = timer.arm(time.monotonic() + 1e17, lambda: None)
    thread = timer._thread
    assert thread is not None
    thread.join(0.5)  # long enough for the overflow, were the wait not capped
    assert thread.is_alive()
    timer.disarm(ticket)
    again = threading.Event()
    timer.arm(time.monotonic(), again.set)
    assert again.wait(5.0)
    assert timer._thread is thread


def test_a_huge_pool_size_is_named_and_falls_back() -> None:
    """``NEXS_SPAN_POOL_SIZE`` is allocated at import: a typo of a million records cost seconds and
    hundreds of MB of the cold start; past the maximum it is reported and the default used."""
    settings, problems = load({"NEXS_SPAN_POOL_SIZE": "1000000"})
    assert settings.pool_size == 32
    (problem,) = problems
    assert problem.variable == "NEXS_SPAN_POOL_SIZE"
    assert "an integer from 0 to 65536" in str(problem)
    assert load({"NEXS_SPAN_POOL_SIZE": "65536"})[0].pool_size == 65536


def test_configure_rejects_a_pool_size_past_the_maximum() -> None:
    """In code the same bound raises at once, before anything is allocated."""
    with pytest.raises(ConfigError, match="pool_size"):
        configure(pool_size=65_537)


def test_a_request_under_its_own_middleware_span_flushes_while_another_request_runs(
    exporter: InMemoryExporter,
) -> None:
    """Concurrent requests (Cloud Run, Azure): a handler called under a framework's or the user's own
    span is not nested in the other thread's invocation; it flushed nothing when it returned."""
    release = threading.Event()
    started = threading.Event()

    @traced_handler(name="slow")
    def slow(event: object, context: object) -> None:
        started.set()
        release.wait(5.0)

    @traced_handler(name="fast")
    def fast(event: object, context: object) -> str:
        with tracer.span("work"):
            return "ok"

    other = threading.Thread(target=slow, args=({}, None))
    other.start()
    try:
        assert started.wait(5.0)
        with tracer.span("middleware", parent=tracer.ROOT):
            assert fast({}, None) == "ok"
            assert sorted(span.name for span in exporter.get_finished_spans()) == ["fast", "work"]
    finally:
        release.set()
        other.join(5.0)


def test_a_traced_call_inside_a_handler_is_still_nested(exporter: InMemoryExporter) -> None:
    """A router calling decorated handlers: the inner call leaves the flush to the outer one."""

    @traced_handler(name="inner")
    def inner(event: object, context: object) -> int:
        return 1

    @traced_handler(name="outer")
    def outer(event: object, context: object) -> list[str]:
        inner(event, context)
        return [span.name for span in exporter.get_finished_spans()]

    assert outer({}, None) == []
    assert sorted(span.name for span in exporter.get_finished_spans()) == ["inner", "outer"]


def test_a_traced_call_in_a_wrapped_thread_after_the_handler_returned_flushes_itself(
    exporter: InMemoryExporter,
) -> None:
    """The outer invocation is over: nobody else would flush what the late call recorded."""
    go = threading.Event()

    @traced_handler(name="late")
    def late(event: object, context: object) -> int:
        return 1

    threads: list[threading.Thread] = []

    @traced_handler(name="outer")
    def outer(event: object, context: object) -> None:
        def run() -> None:
            go.wait(5.0)
            late({}, None)

        thread = threading.Thread(target=tracer.wrap(run))
        thread.start()
        threads.append(thread)

    outer({}, None)
    go.set()
    threads[0].join(5.0)
    assert sorted(span.name for span in exporter.get_finished_spans()) == ["late", "outer"]


def test_each_bad_environment_value_is_named_once(caplog: pytest.LogCaptureFixture) -> None:
    """Every `configure()` call re-reads the environment: the same bad value was logged again each time."""
    bad = {"NEXS_FLUSH_TIMEOUT_MS": "soon", "NEXS_SPAN_POOL_SIZE": "-1"}
    with caplog.at_level(logging.WARNING, logger="nexs_serverless"):
        configure(environ=bad)
        configure(environ=bad, service_name="checkout")
        configure(environ={**bad, "NEXS_TIMEOUT_GUARD_MS": "later"})
    lines = [record.getMessage() for record in caplog.records]
    assert len([line for line in lines if "NEXS_FLUSH_TIMEOUT_MS='soon'" in line]) == 1
    assert len([line for line in lines if "NEXS_SPAN_POOL_SIZE='-1'" in line]) == 1
    assert len([line for line in lines if "NEXS_TIMEOUT_GUARD_MS='later'" in line]) == 1


class _BudgetExporter(InMemoryExporter):
    """Records the time each export was allowed (the flush deadline), then signals."""

    def __init__(self) -> None:
        super().__init__()
        self.allowed_s: list[float] = []
        self.received = threading.Event()

    def export(self, spans: Any) -> Any:
        self.allowed_s.append(remaining_export_s(3600.0))
        result = super().export(spans)
        self.received.set()
        return result


# The context's clock stands still, so the guard reads exactly the time the context started with (a
# pause before the guard was armed halved its margin: no budget was left). And budgets of a second:
# the guard's flush must reach the exporter before its deadline on a loaded machine too (with 50 ms,
# under coverage and load, it often did not, and the export was skipped).
@pytest.mark.parametrize(
    ("margin_ms", "settings", "most_s"),
    [
        # 2050 ms left when the guard fires, 1000 kept free: 1050 ms (it had 2040: the time left - 10 ms).
        (1000, {"timeout_guard_ms": 2000, "flush_timeout_ms": 10_000}, 1.05),
        # The flush timeout bounds the guard's flush too: 1000 ms, not the 1800 left past the margin.
        (250, {"timeout_guard_ms": 2000, "flush_timeout_ms": 1000}, 1.0),
    ],
)
def test_the_guard_flush_keeps_the_safety_margin_and_the_flush_timeout(
    margin_ms: int, settings: dict[str, int], most_s: float
) -> None:
    """The guard's flush is bounded like the return's: min(flush timeout, remaining - safety margin)."""
    exporter = _BudgetExporter()
    configure(
        exporters=[exporter],
        environ={"NEXS_FLUSH_SAFETY_MARGIN_MS": str(margin_ms)},
        **settings,  # type: ignore[arg-type]
    )

    @traced_handler
    def handler(event: object, context: object) -> str:
        with tracer.span("slow-query"):
            assert exporter.received.wait(30.0)  # until the guard has flushed
        return "late"

    context = LambdaContext(timeout_ms=settings["timeout_guard_ms"] + 50, clock=lambda: 0.0)
    assert handler({}, context) == "late"
    assert stats()["timeout_guard_fired"] == 1
    assert 0 < exporter.allowed_s[0] <= most_s


def test_a_failed_begin_leaves_no_invocation_marked_in_the_context(
    exporter: InMemoryExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The handler runs untraced when the guard cannot be armed, and later calls are not nested."""
    from nexs_serverless import invocation

    def broken_arm(due: float, callback: object) -> int:
        raise RuntimeError("timer thread could not start")

    @traced_handler
    def handler(event: object, context: object) -> bool:
        return invocation._inside.get()

    handler({}, LambdaContext())  # load the per-invocation machinery
    configure(exporters=[exporter], timeout_guard_ms=250)
    monkeypatch.setattr(watchdog, "arm", broken_arm)  # failure injection: the guard's timer breaks
    assert handler({}, LambdaContext()) is False
    assert invocation._inside.get() is False
    monkeypatch.undo()
    assert handler({}, LambdaContext()) is True
    assert invocation._inside.get() is False


class _EndsWhileTaken:
    """A span that another thread ends while the flush partitions the buffer (after its first read)."""

    trace_id = 1
    force_ended = False

    def __init__(self) -> None:
        self.reads = 0

    @property
    def end_ns(self) -> int:
        self.reads += 1
        return 0 if self.reads == 1 else 1_700_000_000_000_000_000


def test_a_span_ending_while_the_buffer_is_partitioned_is_not_lost() -> None:
    """Two scans ("ended?", then "running?") lost a span that ended between them: in neither list,
    gone from the buffer, counted nowhere. Now it is taken as ended or stays buffered."""
    from nexs_serverless.pool import SpanBuffer

    buffer = SpanBuffer(100)
    span = _EndsWhileTaken()
    buffer.spans.append(span)  # type: ignore[arg-type]
    taken = buffer.take_ended()
    assert [*taken, *buffer.spans] == [span]
