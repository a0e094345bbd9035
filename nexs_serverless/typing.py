"""Extension points as `Protocol`s: what an exporter, a sampler and a readable span look like.

This module imports `typing` (8 ms on a small Lambda), so nothing on the cold
path imports it at run time; the package refers to it under
``if TYPE_CHECKING``. Import it yourself to annotate your own exporter:

    from nexs_serverless.typing import ReadableSpan, SpanExporter
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from .exporters.base import ExportResult
from .model import Event, InstrumentationScope, Link, Resource, SpanContext

if TYPE_CHECKING:  # `attributes` defines the alias for type checkers only (it costs `typing` at run time)
    from .attributes import AttributeValue

__all__ = ["ReadableSpan", "Sampler", "SpanExporter", "SpanSink"]


class ReadableSpan(Protocol):
    """What exporters read: a live `Span` during `export`, or a `FinishedSpan` copy."""

    @property
    def name(self) -> str: ...
    @property
    def trace_id(self) -> int: ...
    @property
    def span_id(self) -> int: ...
    @property
    def parent_span_id(self) -> int: ...
    @property
    def trace_flags(self) -> int: ...
    @property
    def trace_state(self) -> tuple[tuple[str, str], ...]: ...
    @property
    def parent_is_remote(self) -> bool: ...
    @property
    def kind(self) -> int: ...
    @property
    def start_ns(self) -> int: ...
    @property
    def end_ns(self) -> int: ...
    @property
    def attributes(self) -> Mapping[str, AttributeValue]: ...
    @property
    def events(self) -> Sequence[Event]: ...
    @property
    def links(self) -> Sequence[Link]: ...
    @property
    def status_code(self) -> int: ...
    @property
    def status_description(self) -> str | None: ...
    @property
    def dropped_attributes(self) -> int: ...
    @property
    def dropped_events(self) -> int: ...
    @property
    def dropped_links(self) -> int: ...
    @property
    def force_ended(self) -> bool: ...
    @property
    def resource(self) -> Resource: ...
    @property
    def instrumentation_scope(self) -> InstrumentationScope: ...
    @property
    def context(self) -> SpanContext: ...
    @property
    def parent(self) -> SpanContext | None: ...


@runtime_checkable
class SpanExporter(Protocol):
    """OpenTelemetry's exporter contract; the spans are valid only during `export`."""

    def export(self, spans: Sequence[ReadableSpan]) -> ExportResult: ...
    def force_flush(self, timeout_millis: int = 30_000) -> bool: ...
    def shutdown(self) -> None: ...


class Sampler(Protocol):
    """A head sampler: decides for a new trace or a remote parent."""

    description: str

    def should_sample(self, trace_id: int, parent: SpanContext | None) -> bool: ...


class SpanSink(Protocol):
    """Anything `flush` hands spans to (an exporter, or a wrapper around one)."""

    def export(self, spans: Sequence[ReadableSpan]) -> ExportResult: ...
