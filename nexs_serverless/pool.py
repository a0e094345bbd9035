"""A pool of span records, pre-allocated at import and refilled after each export.

Why: allocating a slotted span with its dict and lists, then letting the
garbage collector reclaim it, costs more than popping a ready record from a
list; a reset happens at release time, after the response, off the hot path.
`scripts/bench_core.py` measures pool on versus off.

Safety: a record goes back to the pool only when nothing outside the flush
holds it (CPython reference count), so a span kept by user code, a thread
still running, or an exporter's carry-over buffer is never recycled under it.
"""

from __future__ import annotations

import sys

from .span import Span

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["SpanPool"]

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
            (default four times `size`).
    """

    __slots__ = ("_baseline", "max_size", "misses", "records", "recycled", "size")

    def __init__(self, size: int, max_size: int | None = None) -> None:
        self.size = size
        self.max_size = max_size if max_size is not None else 4 * size
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
