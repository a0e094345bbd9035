"""Plug an OpenTelemetry SDK `SpanExporter` in unchanged.

Our spans are converted to SDK `ReadableSpan`s (ids, parent, kind, status,
events, links, resource, scope and dropped counts), and the SDK exporter runs
in a short-lived thread that `export` waits for only until the flush
deadline: SDK exporters carry their own long timeouts (10 s for OTLP) that a
Lambda invocation cannot afford. An export still running past the deadline
finishes in the background and is counted as ``export_overran``.
"""

from __future__ import annotations

import threading

from .. import _guard as guard
from .. import _stats as stats
from ..context import remaining_export_s
from .base import ExportResult

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

    from ..finished import FinishedSpan
    from ..span import Span

__all__ = ["OTelSDKExporter", "to_readable_span"]


class OTelSDKExporter:
    """Adapter: our exporter contract outside, an SDK `SpanExporter` inside.

    Args:
        exporter: any `opentelemetry.sdk.trace.export.SpanExporter`.
        timeout_ms: the most one export may take when no flush deadline applies.
    """

    def __init__(self, exporter: object, *, timeout_ms: int = 10_000) -> None:
        self.exporter = exporter
        self.timeout_ms = timeout_ms

    def export(self, spans: Sequence[Span | FinishedSpan]) -> ExportResult:
        """Convert, export in a worker thread, wait at most until the deadline.

        A span the conversion fails on (e.g. a kind outside OpenTelemetry's
        range) is left out and counted (``spans_dropped_serialization``): it
        would fail every retry, and must not cost the rest of the batch.
        Never raises.
        """
        converted = [readable for readable in (_convert(span) for span in spans) if readable is not None]
        if not converted:
            return ExportResult.SUCCESS  # nothing left to send; any drops are counted
        outcome: list[bool] = []

        def run() -> None:
            try:
                result = self.exporter.export(converted)  # type: ignore[attr-defined]
                outcome.append(getattr(result, "name", "") == "SUCCESS")
            except Exception as exc:
                guard.report("otel_sdk_exporter", exc)
                outcome.append(False)

        worker = threading.Thread(target=run, name="nexs-otel-export", daemon=True)
        try:
            worker.start()
        except RuntimeError as exc:  # no thread to be had (resource limits): a failed export, not a crash
            guard.report("otel_sdk_exporter", exc)
            return ExportResult.FAILURE
        worker.join(remaining_export_s(self.timeout_ms / 1000))
        if worker.is_alive():
            stats.incr("export_overran")
            return ExportResult.FAILURE
        return ExportResult.SUCCESS if outcome and outcome[0] else ExportResult.FAILURE

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Delegates to the SDK exporter."""
        return bool(self.exporter.force_flush(timeout_millis))  # type: ignore[attr-defined]

    def shutdown(self) -> None:
        """Delegates to the SDK exporter."""
        self.exporter.shutdown()  # type: ignore[attr-defined]


def _convert(span: Span | FinishedSpan) -> object | None:
    """`to_readable_span`, with a span it fails on counted as a serialization drop."""
    try:
        return to_readable_span(span)
    except Exception as exc:  # one odd span must not cost the batch
        guard.report("otel_sdk_convert", exc)
        stats.incr("spans_dropped_serialization")
        return None


def to_readable_span(span: Span | FinishedSpan) -> object:
    """An `opentelemetry.sdk.trace.ReadableSpan` with the same content as `span`."""
    from opentelemetry.attributes import BoundedAttributes
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import Event, ReadableSpan
    from opentelemetry.sdk.util import BoundedList
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope
    from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

    def context(
        trace_id: int, span_id: int, flags: int, state: tuple[tuple[str, str], ...], remote: bool
    ) -> SpanContext:
        return SpanContext(trace_id, span_id, remote, TraceFlags(flags), TraceState(list(state)))

    def attrs(values: object) -> dict[str, Any]:
        out: dict[str, Any] = dict(values)  # type: ignore[call-overload]
        return out

    parent = (
        context(span.trace_id, span.parent_span_id, span.trace_flags, (), span.parent_is_remote)
        if span.parent_span_id
        else None
    )
    readable = ReadableSpan(
        name=span.name,
        context=context(span.trace_id, span.span_id, span.trace_flags, span.trace_state, False),
        parent=parent,
        resource=Resource(attrs(span.resource.attributes)),
        attributes=attrs(span.attributes),
        events=[Event(e.name, attrs(e.attributes), e.timestamp_ns) for e in span.events],
        links=[
            Link(
                context(
                    link.context.trace_id,
                    link.context.span_id,
                    link.context.trace_flags,
                    link.context.trace_state,
                    True,
                ),
                attrs(link.attributes),
            )
            for link in span.links
        ],
        kind=SpanKind(int(span.kind)),
        status=Status(StatusCode(int(span.status_code)), span.status_description),
        start_time=span.start_ns,
        end_time=span.end_ns,
        instrumentation_scope=InstrumentationScope(
            span.instrumentation_scope.name, span.instrumentation_scope.version
        ),
    )
    # ReadableSpan derives dropped counts from its containers' types; give it bounded ones.
    bounded = BoundedAttributes(attributes=readable._attributes, immutable=True)
    bounded.dropped = span.dropped_attributes
    readable._attributes = bounded
    for slot, source, dropped in (
        ("_events", readable._events, span.dropped_events),
        ("_links", readable._links, span.dropped_links),
    ):
        items: BoundedList[Any] = BoundedList(None)
        items.extend(source)
        items.dropped = dropped
        setattr(readable, slot, items)
    return readable
