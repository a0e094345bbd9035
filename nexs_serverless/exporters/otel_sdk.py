"""Plug an OpenTelemetry SDK `SpanExporter` in unchanged.

Our spans are converted to SDK `ReadableSpan`s (ids, parent, kind, status,
events, links with their own remote flag, resource, scope and every dropped
count: the span's and each event's and link's), and the SDK exporter runs in
a short-lived thread that `export` waits for only until the flush deadline:
SDK exporters carry their own long timeouts (10 s for OTLP) that a Lambda
invocation cannot afford. An export still running past the deadline finishes
in the background and is counted as ``export_overran``; until it has
finished, later exports are not started (FAILURE, counted
``export_skipped_busy``), so a dead back end holds one thread, not one per
flush, and the SDK exporter is never called from two threads at once. The
overrun batch is reported failed, so the caller keeps it for a later flush,
but its late result decides: delivered after all, it is not sent again when
it comes back (see `_export_worker`). `force_flush` (the exit's last call) waits for
it within its budget, and is False while it still runs.

A span the conversion fails on is left out, and the result (`Dropped`, an
`ExportResult` read by `name` like any other) names it, so that
`ResilientExporter` counts it neither as sent nor, after a failure, keeps it
to be dropped (and counted) again: the adapter has no `send` seam, and
should not get one (one attempt per flush; SDK exporters retry on their own).

The worker runs as the SDK's own span processors run an exporter: with
instrumentation suppressed, ours (`context.suppressed`) and OpenTelemetry's
(``suppress_instrumentation`` in its context), so the exporter's own HTTP
call is never traced into the next flush.
"""

from __future__ import annotations

import time

from .. import _guard as guard
from .. import _stats as stats
from ..context import remaining_export_s
from ._export_worker import ExportWorker
from .base import ExportResult, succeeded

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

    from ..finished import FinishedSpan
    from ..model import Resource as OurResource
    from ..span import Span

__all__ = ["Dropped", "OTelSDKExporter", "to_readable_span"]


class OTelSDKExporter:
    """Adapter: our exporter contract outside, an SDK `SpanExporter` inside.

    Args:
        exporter: any `opentelemetry.sdk.trace.export.SpanExporter`.
        timeout_ms: the most one export may take when no flush deadline applies.

    Raises:
        ConfigError: for a `timeout_ms` that is not an integer >= 1.
    """

    def __init__(self, exporter: object, *, timeout_ms: int = 10_000) -> None:
        if type(timeout_ms) is not int or timeout_ms < 1:
            from ..config import ConfigError

            raise ConfigError(f"OTelSDKExporter(timeout_ms={timeout_ms!r}): expected an integer >= 1")
        self.exporter = exporter
        self.timeout_ms = timeout_ms
        self._worker = ExportWorker(type(exporter).__name__, thread_name="nexs-otel-export")

    def export(self, spans: Sequence[Span | FinishedSpan]) -> ExportResult:
        """Convert, export in a worker thread, wait at most until the deadline.

        A span the conversion fails on (e.g. a kind outside OpenTelemetry's
        range) is left out and counted (``spans_dropped_serialization``): it
        would fail every retry, and must not cost the rest of the batch. The
        result is then a `Dropped` naming those spans.
        Spans an overrun export delivered late come back from the caller's
        carry-over; they are left out too (see `ExportWorker.pending`). Never raises.
        """
        kept = self._worker.pending(spans)  # None: the last export overran and still runs
        if kept is None:
            return ExportResult.FAILURE
        spans = kept
        exported: list[Span | FinishedSpan] = []
        converted: list[object] = []
        left_out: list[Span | FinishedSpan] = []
        for span in spans:
            readable = _convert(span)
            if readable is not None:
                exported.append(span)
                converted.append(readable)
            else:
                left_out.append(span)
        if not converted:
            return Dropped.of(ExportResult.SUCCESS, left_out)  # nothing left to send; drops counted
        return Dropped.of(self._export(exported, converted), left_out)

    def _export(self, exported: list[Span | FinishedSpan], converted: list[object]) -> ExportResult:
        """Run the SDK exporter on `converted` (`exported`, as SDK spans) in a worker, until the deadline."""
        exporter = self.exporter
        name = self._worker.name

        def call() -> object:
            token = _suppress_otel_instrumentation()
            try:
                return exporter.export(converted)  # type: ignore[attr-defined]
            finally:
                _restore_otel_context(token)

        try:
            job = self._worker.run(
                exported,
                call,
                lambda result: succeeded(result, name),
                remaining_export_s(self.timeout_ms / 1000),
            )
        except RuntimeError as exc:  # no thread to be had (resource limits): a failed export, not a crash
            guard.report("otel_sdk_exporter", exc)
            return ExportResult.FAILURE
        if job is None or job.ok is None:  # another export still runs, or this one overran
            return ExportResult.FAILURE
        if job.error is not None:
            guard.report("otel_sdk_exporter", job.error)
        return ExportResult.SUCCESS if job.ok else ExportResult.FAILURE

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Wait for an export still running (one that overran its flush), then delegate; one budget.

        At exit this is the last call before the interpreter abandons the worker, a daemon
        thread: returning at once let a slow but working export die half sent, and said True
        while its spans were still in flight. False when that export still runs at the end of
        `timeout_millis`, or the SDK exporter says False or raises.
        """
        deadline = time.monotonic() + max(0, timeout_millis) / 1000.0
        self._worker.wait(deadline - time.monotonic())
        try:
            left_ms = max(0, int((deadline - time.monotonic()) * 1000))
            flushed = bool(self.exporter.force_flush(left_ms))  # type: ignore[attr-defined]
        except Exception as exc:
            guard.report("otel_sdk_force_flush", exc)
            return False
        return flushed and self._worker.wait(0.0)

    def shutdown(self) -> None:
        """Delegates to the SDK exporter (an error there is reported, not raised)."""
        try:
            self.exporter.shutdown()  # type: ignore[attr-defined]
        except Exception as exc:
            guard.report("otel_sdk_shutdown", exc)


class Dropped(ExportResult):
    """`SUCCESS` or `FAILURE` of an export that left `dropped` spans out (each counted under its reason).

    Read by `name` like any result; `ResilientExporter` also reads `dropped`,
    so that it counts those spans neither as sent nor keeps them for a retry.
    """

    __slots__ = ("dropped",)

    def __init__(self, result: ExportResult, dropped: Sequence[Span | FinishedSpan]) -> None:
        super().__init__(result.name, result.value)
        self.dropped = dropped

    @staticmethod
    def of(result: ExportResult, dropped: Sequence[Span | FinishedSpan]) -> ExportResult:
        """`result` itself when nothing was dropped (the usual answer), else a `Dropped`."""
        return Dropped(result, dropped) if dropped else result


def _suppress_otel_instrumentation() -> object:
    """Set OpenTelemetry's suppression key in this thread's context, as its span processors do."""
    try:
        from opentelemetry import context as otel_context

        key = otel_context._SUPPRESS_INSTRUMENTATION_KEY
    except (ImportError, AttributeError):  # pragma: no cover - an API without the key
        return None
    return otel_context.attach(otel_context.set_value(key, True))


def _restore_otel_context(token: object) -> None:
    if token is not None:
        from opentelemetry import context as otel_context

        otel_context.detach(token)  # type: ignore[arg-type]


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
    from opentelemetry.sdk.trace import Event, ReadableSpan
    from opentelemetry.sdk.util import BoundedList
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope
    from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

    def context(
        trace_id: int, span_id: int, flags: int, state: tuple[tuple[str, str], ...], remote: bool
    ) -> SpanContext:
        return SpanContext(trace_id, span_id, remote, TraceFlags(flags), TraceState(list(state)))

    def attrs(values: object, dropped: int = 0) -> Any:
        """A plain copy, or a bounded one carrying `dropped` (the SDK reads counts off its type)."""
        if not dropped:
            out: dict[str, Any] = dict(values)  # type: ignore[call-overload]
            return out
        copy = BoundedAttributes(attributes=values, immutable=True)  # type: ignore[call-overload]
        copy.dropped = dropped
        return copy

    parent = (
        context(span.trace_id, span.parent_span_id, span.trace_flags, (), span.parent_is_remote)
        if span.parent_span_id
        else None
    )
    status_code = StatusCode(int(span.status_code))
    readable = ReadableSpan(
        name=span.name,
        context=context(span.trace_id, span.span_id, span.trace_flags, span.trace_state, False),
        parent=parent,
        resource=_resource(span.resource),
        attributes=attrs(span.attributes),
        events=[
            Event(event.name, attrs(event.attributes, event.dropped_attributes), event.timestamp_ns)
            for event in span.events
        ],
        links=[
            Link(
                context(
                    link.context.trace_id,
                    link.context.span_id,
                    link.context.trace_flags,
                    link.context.trace_state,
                    bool(link.context.is_remote),
                ),
                attrs(link.attributes, link.dropped_attributes),
            )
            for link in span.links
        ],
        kind=SpanKind(int(span.kind)),
        # A description goes with ERROR only (the SDK logs a warning for any other and drops it).
        status=Status(status_code, span.status_description if status_code is StatusCode.ERROR else None),
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


_resources: list[tuple[object, Any]] = []


def _resource(resource: OurResource) -> Any:
    """The SDK `Resource` for ours, built once per resource object (every span of a batch shares it)."""
    cached = _resources[0] if _resources else None  # one read: another thread may replace it
    if cached is not None and cached[0] is resource:
        return cached[1]
    from opentelemetry.sdk.resources import Resource

    converted = Resource(dict(resource.attributes))
    _resources[:] = [(resource, converted)]
    return converted
