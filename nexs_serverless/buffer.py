"""The in-memory buffer of spans started in this process and not yet flushed.

Starting a span appends it here; ending it only stamps its end time. A flush
takes the ended spans out and leaves running ones (threads the handler left
behind) for the next flush. The buffer is bounded: past `max_spans` new spans
are not recorded and the loss is counted.
"""

from __future__ import annotations

from . import _stats as stats

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .span import Span

__all__ = ["SpanBuffer"]


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

    def take_ended(self) -> list[Span]:
        """Remove and return the ended spans; running ones stay buffered."""
        spans = self.spans
        count = len(spans)
        if not count:
            return []
        batch = spans[:count]
        del spans[:count]
        ended = [span for span in batch if span.end_ns]
        if len(ended) != count:
            spans.extend(span for span in batch if not span.end_ns)
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
