"""Where span records live: the free `SpanPool` and the `SpanBuffer` of started spans.

A record cycles pool -> buffer -> exporters -> pool: `Tracer.span` pops it from
the pool and appends it to the buffer, a flush takes the ended ones out of the
buffer, and after the export the pool takes back those nobody else holds. Both
halves share this module because each module on the import path costs a cold
start about 0.25 ms (docs/architecture.md).

Pool. Allocating a slotted span with its dict, then letting the garbage
collector reclaim it, costs more than popping a ready record from a list; the
reset happens at release time, after the response, off the hot path.
`scripts/bench_core.py` measures pool on versus off. A record goes back only
when nothing outside the flush holds it (CPython reference count), so a span
kept by user code, a thread still running, or an exporter's carry-over buffer
is never recycled under it.

Buffer. Starting a span appends it; ending it only stamps its end time. A
flush takes the ended spans out and leaves running ones (threads the handler
left behind) for the next flush. It is bounded: past `max_spans` new spans are
not recorded (`Tracer.span` checks) and the loss is counted.
"""

from __future__ import annotations

import sys

from . import _stats as stats
from .span import Span

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Container, Iterable

__all__ = ["SpanBuffer", "SpanPool"]

_getrefcount = getattr(sys, "getrefcount", None)


def _calibrate() -> int:
    """References a record held only by one list has, seen from inside `release`'s loop."""
    if _getrefcount is None:  # pragma: no cover - not CPython
        return -1
    probe = [Span()]
    for span in probe:
        return int(_getrefcount(span))
    return -1  # pragma: no cover


class SpanPool:
    """Free span records; `acquire` never blocks and grows the pool on a miss.

    Args:
        size: records allocated now (``NEXS_SPAN_POOL_SIZE``; 0 turns the pool off).
        max_size: most records kept after release, so a burst cannot pin memory
            (default four times `size`, and at least 1024).

    Pre-warming is kept small (32 by default): each record costs about 3 k
    instructions at import, and a cold start's first invocation rarely starts
    more spans than that. After the first flush, records come back from the
    buffer, so warm invocations find the pool as full as they left it.
    """

    __slots__ = ("_baseline", "max_size", "misses", "records", "recycled", "size")

    def __init__(self, size: int, max_size: int | None = None) -> None:
        self.size = size
        self.max_size = max_size if max_size is not None else (4 * max(size, 256) if size else 0)
        self.records: list[Span] = [Span() for _ in range(size)]
        self.misses = 0
        self.recycled = 0
        self._baseline = _calibrate()

    def acquire(self) -> Span:
        """A clean record: from the pool when one is free, new otherwise.

        `Tracer.span` inlines these lines (a method call costs a tenth of a span).
        """
        records = self.records
        if records:
            return records.pop()
        self.misses += 1
        return Span()

    def release(self, spans: Iterable[Span]) -> None:
        """Reset and keep the records nobody else references (up to `max_size`)."""
        if not self.max_size or self._baseline < 0 or _getrefcount is None:
            return
        free = self.records
        baseline = self._baseline
        limit = self.max_size
        for span in spans:
            if len(free) >= limit:
                return
            if type(span) is not Span or span.force_ended or _getrefcount(span) > baseline:
                continue
            span.reset()
            free.append(span)
            self.recycled += 1

    @property
    def hits(self) -> int:
        """Records handed out from the pool: derived, so the hot path counts nothing.

        `records` only shrinks by a hit and only grows by pre-warming or a recycle.
        """
        return self.size + self.recycled - len(self.records)

    @property
    def free(self) -> int:
        """Records ready to hand out."""
        return len(self.records)


class SpanBuffer:
    """Spans started and not yet exported.

    Appends come from any thread without a lock (a list append is atomic in
    CPython); `take_ended` is called under the flush lock and removes exactly
    the prefix it looked at, so an append racing with it is never lost.
    """

    __slots__ = ("max_spans", "spans")

    def __init__(self, max_spans: int) -> None:
        self.spans: list[Span] = []
        self.max_spans = max_spans

    def take_ended(self, live_traces: Container[int] = ()) -> list[Span]:
        """Remove and return the ended spans; running ones stay buffered.

        Running spans may hold at most half the buffer. Past that, the oldest
        that no running invocation owns (their trace is not in `live_traces`)
        are ended now, marked ``nexs.force_ended`` (as the timeout guard marks
        what it ends) and returned with the rest: a span the handler never
        ended (an exception skipped its `end`) would otherwise stay for the
        life of the process, and enough of them would leave no room for the
        spans of later invocations. Spans of requests still running (many at
        once on Cloud Run or Azure) are never ended here.
        """
        spans = self.spans
        count = len(spans)
        if not count:
            return []
        batch = spans[:count]
        del spans[:count]
        ended = [span for span in batch if span.end_ns]
        if len(ended) != count:
            # Partitioned again in one pass: a span that another thread ends between two scans
            # ("ended?" no, "running?" no) was in neither list, lost without a count.
            ended = []
            running: list[Span] = []
            for span in batch:
                (ended if span.end_ns else running).append(span)
            excess = len(running) - self.max_spans // 2
            if excess > 0:
                from time import time_ns

                now = time_ns()
                abandoned: list[Span] = []
                for span in running:
                    if len(abandoned) >= excess:
                        break
                    if span.trace_id not in live_traces:
                        span.set_attribute("nexs.force_ended", True)
                        span.force_ended = True
                        span.end(now)
                        abandoned.append(span)
                if abandoned:
                    ended.extend(abandoned)
                    stats.incr("spans_force_ended_abandoned", len(abandoned))
                    taken = {id(span) for span in abandoned}
                    still: list[Span] = []
                    for span in running:
                        if not span.end_ns:
                            still.append(span)
                        elif id(span) not in taken:  # ended by its own thread meanwhile
                            ended.append(span)
                    running = still
            spans.extend(running)
        return ended

    def running(self) -> list[Span]:
        """Spans started and not yet ended (the timeout guard ends them)."""
        return [span for span in self.spans if not span.end_ns]

    def drop_all(self) -> int:
        """Forget everything (tests, `configure`); returns how many were dropped."""
        count = len(self.spans)
        del self.spans[:count]
        if count:
            stats.incr("spans_dropped_reconfigure", count)
        return count
