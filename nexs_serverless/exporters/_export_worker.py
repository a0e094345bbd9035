"""`ExportWorker`: an exporter with no timeout of its own, waited for only until the flush deadline.

An exporter that has only OpenTelemetry's ``export(spans)`` cannot be told how
long it may take: one that blocks (a slow HTTP call, a hung lock) held the
handler past the flush budget and the invocation's remaining time. Each of
its exports runs in a short-lived thread that the flush waits for until its
deadline, and no longer. An export still running then finishes in the
background (counted ``export_overran``); until it has, no other export starts
on that exporter (counted ``export_skipped_busy``), so a hung exporter holds
one thread, not one per flush, and is never called from two threads at once.

The overrun batch is reported failed, so the caller keeps it for a later
flush. Dropping it instead would be wrong either way: if the late export
fails, its spans are lost; if it succeeds, they were counted lost but were
not. Its late result decides when they come back: delivered, they are left
out (counted ``export_spans_delivered_late``); failed, they are sent again
(counted ``export_spans_failed_late``). A span is delivered once, unless the
process ends before the late result is known; `wait` (at exit) gives it the
time left.

The thread runs in a copy of the flush's context, so instrumentation stays
suppressed and the deadline is published there too. The spans it is given
must outlive the flush (pooled records are recycled after it): `export` hands
it `FinishedSpan` copies. Loaded only for such an exporter (`adapt` decides):
our exporters take a timeout and pay no thread.
"""

from __future__ import annotations

import threading
from _contextvars import copy_context

from .. import _guard as guard
from .. import _stats as stats
from ..finished import freeze
from .base import ExportResult, succeeded

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import TypeVar

    from ..typing import ReadableSpan

    S = TypeVar("S", bound=ReadableSpan)

__all__ = ["ExportWorker", "Job"]


class Job:
    """One export, as the flush that started it and its thread both see it.

    ``ok`` is None while the export runs. One still running at the deadline
    gets ``ids`` (trace and span id of each of its spans), read when its
    spans come back (see `ExportWorker.pending`).
    """

    __slots__ = ("count", "error", "ids", "ok", "result", "thread")

    def __init__(self, count: int) -> None:
        self.count = count
        self.ok: bool | None = None
        self.result: object = None  # what the export returned
        self.error: BaseException | None = None  # or what it raised (re-raised by the flush, in time)
        self.ids: frozenset[tuple[int, int]] | None = None
        self.thread: threading.Thread | None = None  # for `wait`


class ExportWorker:
    """Runs one exporter's exports in threads, waited for until the deadline; thread-safe.

    Args:
        name: the exporter's class name, for logs.
        thread_name: the name of each export's thread.
    """

    __slots__ = ("_delivered_late", "_lock", "_overran", "_running", "name", "thread_name")

    def __init__(self, name: str, *, thread_name: str = "nexs-export") -> None:
        self.name = name
        self.thread_name = thread_name
        self._running: Job | None = None  # the last export started
        self._overran: Job | None = None  # the last one that overran, until its result is read
        self._delivered_late: frozenset[tuple[int, int]] = frozenset()  # (trace id, span id) to leave out
        self._lock = threading.Lock()  # flushes run on several threads (main, extension, timeout guard)

    def export(self, exporter: object, spans: Sequence[ReadableSpan], timeout_s: float) -> object:
        """What ``exporter.export(spans)`` returned, waiting at most `timeout_s`; raises what it raised.

        For `ResilientExporter`, which reads the answer as it reads an
        exporter's own. A None result is SUCCESS (see `base.succeeded`).

        Raises:
            ExportError: TIMEOUT, when the export is still running at the
                deadline, or an earlier one still is (nothing started).
        """
        kept = self.pending(spans)
        if kept is None:
            raise _timeout(f"{self.name}.export from an earlier flush is still running")
        if not kept:  # all delivered late: nothing left to send
            return ExportResult.SUCCESS
        frozen = [freeze(span) for span in kept]  # type: ignore[arg-type]
        name = self.name

        def call() -> object:
            return exporter.export(frozen)  # type: ignore[attr-defined]

        job = self.run(frozen, call, lambda result: succeeded(result, name), timeout_s)
        if job is None:
            raise _timeout(f"{name}.export from an earlier flush is still running")
        if job.ok is None:
            raise _timeout(
                f"{name}.export still running at the flush deadline (its spans wait for its result)"
            )
        if job.error is not None:
            raise job.error
        return ExportResult.SUCCESS if job.ok else job.result

    def pending(self, spans: Sequence[S]) -> Sequence[S] | None:
        """`spans` without those an overrun export delivered late; None while an export still runs.

        The caller kept each overrun batch for a later flush (it could not know
        better); sending it again would deliver it twice. The ids are kept
        until an export holds none of them: the caller's carry-over returns
        them first, and may return them more than once (this export can fail
        or overrun in turn, and the caller keeps its whole batch again).
        """
        with self._lock:
            if self._busy():
                stats.incr("export_skipped_busy")
                return None
            overran = self._overran
            if overran is not None:  # its late result is in: failed, its spans go again as they come
                self._overran = None
                if overran.ok and overran.ids:
                    self._delivered_late |= overran.ids
            delivered = self._delivered_late
            if not delivered:
                return spans
            kept = [span for span in spans if (span.trace_id, span.span_id) not in delivered]
            if len(kept) == len(spans):  # none came back: they are sent or gone from the carry-over
                self._delivered_late = frozenset()
                return spans
            return kept

    def run(
        self,
        spans: Sequence[ReadableSpan],
        call: Callable[[], object],
        judge: Callable[[object], bool],
        timeout_s: float,
    ) -> Job | None:
        """Run `call` (the export of `spans`) in a thread; wait at most `timeout_s` for it.

        `judge` says whether what `call` returned is a success. Returns the
        job (``ok`` None: still running, counted ``export_overran``), or None
        when another export still runs (nothing started, counted
        ``export_skipped_busy``).

        Raises:
            RuntimeError: no thread could be started (resource limits).
        """
        job = Job(len(spans))
        lock = self._lock
        name = self.name

        def work() -> None:
            ok = False
            try:
                job.result = call()
                ok = judge(job.result)
            except BaseException as exc:  # KeyboardInterrupt too: inline, it ended the flush
                job.error = exc
            finally:  # always: an export never marked done would block every later one
                with lock:  # the lock the flush decides "overran" under: exactly one side sees the other
                    job.ok = ok
                    late = job.ids is not None
                if late:
                    if job.error is not None:  # nobody is left to raise it to
                        guard.report("export:" + name, job.error)
                    stats.incr("export_spans_delivered_late" if ok else "export_spans_failed_late", job.count)

        # In a copy of this context: the flush's suppression and deadline go along.
        thread = threading.Thread(target=copy_context().run, args=(work,), name=self.thread_name, daemon=True)
        with lock:
            if self._busy():  # another flush's export started meanwhile
                stats.incr("export_skipped_busy")
                return None
            thread.start()
            self._running = job
            job.thread = thread
        thread.join(max(0.0, timeout_s))
        with lock:
            if job.ok is None:  # still running: its own result decides whether these spans go again
                job.ids = frozenset((span.trace_id, span.span_id) for span in spans)
                self._overran = job
        if job.ids is not None:
            stats.incr("export_overran")
        return job

    def wait(self, timeout_s: float) -> bool:
        """Wait at most `timeout_s` for an export still running (one that overran); True when none is."""
        running = self._running
        if running is None or running.ok is not None:
            return True
        if running.thread is not None:
            running.thread.join(max(0.0, timeout_s))
        return running.ok is not None

    def _busy(self) -> bool:
        running = self._running
        return running is not None and running.ok is None


def _timeout(message: str) -> Exception:
    from .errors import ErrorClass, ExportError

    return ExportError(ErrorClass.TIMEOUT, message)
