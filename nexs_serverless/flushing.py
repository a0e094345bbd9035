"""Flush: hand the ended spans to every exporter within a time budget.

Called when the handler returns, by the timeout guard, and at exit. The budget
is turned into a deadline that exporters read (`context.remaining_export_s`),
and an exporter reached after the deadline is skipped and counted, so a flush
never holds the invocation longer than it was given.

The flush lock is what says an exporter is in use: `_retire.retire`, which
shuts down the exporters a reconfiguration replaced, waits for it too, except
when the flush itself reconfigures (an exporter calling `configure`): then the
flush shuts them down as it ends, within its own deadline.
"""

from __future__ import annotations

import threading
import time

from . import _guard as guard
from . import _stats as stats
from .context import _invocation_deadline, export_deadline, exporting
from .handler import process
from .runtime import runtime

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    from .runtime import Stage
    from .span import Span

__all__ = ["flush", "shutdown_flush"]


def flush(budget_ms: float | None = None, *, reason: str = "manual") -> int:
    """Export every ended span now; returns how many spans were handed over.

    Args:
        budget_ms: the most time the flush may take (default ``NEXS_FLUSH_TIMEOUT_MS``); inside
            an invocation whose remaining time is known, never past it minus
            ``NEXS_FLUSH_SAFETY_MARGIN_MS``.
        reason: a fixed label, recorded in the stats (``flushes_<reason>``); not an id
            (the stats keep a bounded number of names).
    """
    rt = runtime
    if _inside_flush():
        return 0
    if budget_ms is None:
        budget_ms = rt.settings.flush_timeout_ms
    started = time.monotonic()
    budget_s = min(max(0.0, budget_ms) / 1000.0, _MAX_WAIT_S)  # `Lock.acquire` overflows past that
    ends_by = _invocation_deadline.get()
    if ends_by:  # inside an invocation: leave it its safety margin, whatever budget was asked for
        budget_s = max(0.0, min(budget_s, ends_by - rt.settings.flush_safety_margin_ms / 1000.0 - started))
    deadline = started + budget_s
    if not rt.flush_lock.acquire(timeout=budget_s):
        stats.incr("flush_lock_timeouts")
        return 0
    try:
        rt.flush_thread = threading.get_ident()
        taken = rt.buffer.take_ended(process.live_traces)
        if not taken:
            return 0
        stats.incr("flushes_" + reason)
        stats.incr("spans_flushed", len(taken))
        _export(rt.exporters(), _run_stages(rt.stages(), taken), deadline)
        rt.pool.release(taken)
        return len(taken)
    except Exception as exc:
        guard.report("flush", exc)
        return 0
    finally:
        _release(deadline)
        stats.observe("flush_ms", (time.monotonic() - started) * 1000.0)
        if reason in _PER_INVOCATION and "NEXS_STATS_LOG_EVERY" in rt.settings.environ:
            _log_stats()


_MAX_WAIT_S = float(threading.TIMEOUT_MAX)


def _inside_flush() -> bool:
    """True, counted, when this thread already holds the flush lock.

    An exporter or stage that flushes, or a signal handler (SIGTERM) that
    interrupts a flush in the main thread, waited for the lock it held itself:
    its whole budget (``NEXS_FLUSH_TIMEOUT_MS`` when none is given), past the
    deadline of the flush it was called from, then gave up anyway.
    """
    if runtime.flush_thread != threading.get_ident() and not export_deadline():
        return False
    stats.incr("flush_reentered")
    return True


# Flush reasons that end one invocation (they drive ``NEXS_STATS_LOG_EVERY``).
_PER_INVOCATION = frozenset({"return", "after_response"})


def _log_stats() -> None:
    try:
        from .exporters.statslog import after_invocation

        after_invocation(runtime.settings)
    except Exception as exc:
        guard.report("stats_log", exc)


def _release(deadline: float) -> None:
    """Release the flush lock, then shut down what the flush's own reconfigurations replaced.

    They are taken before the release: a reconfiguration in the next flush
    (another thread's) leaves its own to that flush.
    """
    rt = runtime
    rt.flush_thread = 0
    retiring = rt.retiring
    if retiring:
        rt.retiring = []
    rt.flush_lock.release()
    if retiring:
        rt.retire_deferred(retiring, deadline)


def _run_stages(stages: list[Stage], spans: list[Span]) -> list[Span]:
    for stage in stages:
        try:
            spans = stage(spans)
        except Exception as exc:  # noqa: PERF203 - a broken stage must not lose the batch
            guard.report("stage:" + getattr(stage, "__name__", type(stage).__name__), exc)
    return spans


def shutdown_flush(budget_ms: float, *, reason: str = "shutdown") -> None:
    """Flush, then let every exporter send what it still holds (carry-over), within one budget."""
    if _inside_flush():
        return
    deadline = time.monotonic() + max(0.0, budget_ms) / 1000.0
    flush(budget_ms, reason=reason)
    lock = runtime.flush_lock
    # Held as `flush` holds it, so that `_retire` cannot shut an exporter down under the force_flush.
    if not lock.acquire(timeout=min(max(0.0, deadline - time.monotonic()), _MAX_WAIT_S)):
        stats.incr("flush_lock_timeouts")
        return
    try:
        runtime.flush_thread = threading.get_ident()
        with exporting(deadline):
            for exporter in runtime.exporters():
                left_ms = int((deadline - time.monotonic()) * 1000)
                if left_ms <= 0:
                    stats.incr("exports_skipped_deadline")
                    return
                try:
                    exporter.force_flush(left_ms)  # type: ignore[attr-defined]
                except Exception as exc:
                    guard.report("force_flush:" + type(exporter).__name__, exc)
    finally:
        _release(deadline)


def _export(exporters: list[object], spans: Sequence[object], deadline: float) -> None:
    # Every exporter is called even past the deadline: each sits behind a
    # `ResilientExporter`, which keeps what it has no time to send in its
    # carry-over for the next flush instead of losing it.
    with exporting(deadline):
        for exporter in exporters:
            if time.monotonic() >= deadline:
                stats.incr("exports_past_deadline")
            try:
                # Delivery is counted by each exporter's ResilientExporter
                # (export_spans_sent, export_spans_carried_over, spans_dropped_*).
                exporter.export(spans)  # type: ignore[attr-defined]
            except Exception as exc:  # one exporter failing must not stop the others
                guard.report("export:" + type(exporter).__name__, exc)
