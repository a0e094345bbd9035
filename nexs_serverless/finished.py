"""`FinishedSpan`: an immutable copy of an ended span, safe to keep.

Span records are recycled by the pool after export, so anything that keeps
spans beyond one `export` call (the in-memory exporter, a carry-over buffer,
the testing kit) keeps these copies instead. They read like `Span`.
"""

from __future__ import annotations

from .model import SpanContext
from .span import state

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

    from .attributes import AttributeValue
    from .model import Event, InstrumentationScope, Link, Resource
    from .span import Span

__all__ = ["FinishedSpan", "freeze"]


class FinishedSpan:
    """A read-only snapshot of a span (same field names as `Span`)."""

    __slots__ = (
        "attributes",
        "dropped_attributes",
        "dropped_events",
        "dropped_links",
        "end_ns",
        "events",
        "force_ended",
        "instrumentation_scope",
        "kind",
        "links",
        "name",
        "parent_is_remote",
        "parent_span_id",
        "resource",
        "span_id",
        "start_ns",
        "status_code",
        "status_description",
        "trace_flags",
        "trace_id",
        "trace_state",
    )

    name: str
    trace_id: int
    span_id: int
    parent_span_id: int
    trace_flags: int
    trace_state: tuple[tuple[str, str], ...]
    parent_is_remote: bool
    kind: int
    start_ns: int
    end_ns: int
    attributes: Mapping[str, AttributeValue]
    events: tuple[Event, ...]
    links: tuple[Link, ...]
    status_code: int
    status_description: str | None
    dropped_attributes: int
    dropped_events: int
    dropped_links: int
    force_ended: bool
    resource: Resource
    instrumentation_scope: InstrumentationScope

    @property
    def context(self) -> SpanContext:
        """This span's `SpanContext`."""
        return SpanContext(self.trace_id, self.span_id, self.trace_flags, self.trace_state)

    @property
    def parent(self) -> SpanContext | None:
        """The parent's context, or None for a root span."""
        if not self.parent_span_id:
            return None
        return SpanContext(self.trace_id, self.parent_span_id, self.trace_flags, (), self.parent_is_remote)

    @property
    def start_time(self) -> int:
        """Start, ns since the epoch."""
        return self.start_ns

    @property
    def end_time(self) -> int:
        """End, ns since the epoch."""
        return self.end_ns

    @property
    def duration_ns(self) -> int:
        """End minus start."""
        return self.end_ns - self.start_ns

    def is_recording(self) -> bool:
        """Always False: it has ended."""
        return False

    def __repr__(self) -> str:
        return f"<FinishedSpan {self.name!r} trace={self.trace_id:032x} span={self.span_id:016x}>"


def freeze(span: Span | FinishedSpan) -> FinishedSpan:
    """Copy `span` into a `FinishedSpan` (a finished span is returned as is)."""
    if type(span) is FinishedSpan:
        return span
    out = FinishedSpan.__new__(FinishedSpan)
    for name in (
        "name",
        "trace_id",
        "span_id",
        "parent_span_id",
        "trace_flags",
        "trace_state",
        "parent_is_remote",
        "kind",
        "start_ns",
        "end_ns",
        "status_code",
        "status_description",
        "dropped_attributes",
        "dropped_events",
        "dropped_links",
        "force_ended",
    ):
        setattr(out, name, getattr(span, name))
    out.attributes = dict(span.attributes)
    out.events = tuple(span.events)
    out.links = tuple(span.links)
    out.resource = span.resource if type(span) is FinishedSpan else state.resource
    out.instrumentation_scope = state.scope
    return out
