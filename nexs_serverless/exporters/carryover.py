"""`CarryOver`: spans that could not be sent yet, for a later flush, bounded.

A Lambda environment lives for minutes to hours; if its back end is down for
some of that time, the spans of those invocations wait here and go out with
the first flush that reaches the back end again. The buffer holds
`FinishedSpan` copies (pooled records are recycled after export) and never
more than `max_spans` of them: when full, the oldest are dropped and counted
as ``spans_dropped_carryover_full``.
"""

from __future__ import annotations

import threading

from .. import _stats as stats
from ..finished import FinishedSpan, freeze

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..typing import ReadableSpan

__all__ = ["CarryOver"]


class CarryOver:
    """A bounded FIFO of frozen spans; thread-safe.

    Args:
        max_spans: the most spans kept (0 keeps none: every unsent span is dropped).
    """

    __slots__ = ("_lock", "_spans", "max_spans")

    def __init__(self, max_spans: int) -> None:
        if type(max_spans) is not int or max_spans < 0:
            raise ValueError(f"max_spans must be an int >= 0, got {max_spans!r}")
        self.max_spans = max_spans
        self._spans: list[FinishedSpan] = []
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._spans)

    def take(self) -> list[FinishedSpan]:
        """Remove and return everything held, oldest first."""
        with self._lock:
            spans = self._spans
            self._spans = []
        self._publish()
        return spans

    def keep(self, spans: Sequence[ReadableSpan]) -> int:
        """Store copies of `spans` after what is held; returns how many were dropped to make room.

        Spans already frozen (taken from here earlier) are kept as they are,
        so a span is copied once however many flushes it waits.
        """
        if not spans:
            return 0
        frozen = [freeze(span) for span in spans]  # type: ignore[arg-type]
        with self._lock:
            held = self._spans
            held.extend(frozen)
            overflow = len(held) - self.max_spans
            if overflow > 0:
                del held[:overflow]
        self._publish()
        if overflow > 0:
            stats.incr("spans_dropped_carryover_full", overflow)
            return overflow
        return 0

    def clear(self) -> int:
        """Forget everything; returns how many spans were held."""
        with self._lock:
            count = len(self._spans)
            self._spans = []
        self._publish()
        return count

    def _publish(self) -> None:
        stats.observe("export_carryover_spans", float(len(self._spans)))
