"""An OpenTelemetry API ``TracerProvider`` whose spans are ours.

Spans started through it (by any OpenTelemetry instrumentation library) are
`nexs_serverless` spans: same buffer, pool, limits, sampler, exporters and
flush at the end of the invocation. Each gets ``otel.scope.name`` /
``otel.scope.version`` attributes naming the library that made it (our
records have one scope, this package). Parents come from the OpenTelemetry
context passed in, else the current span, which the bridge keeps identical
for both APIs.
"""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.util._decorator import _agnosticcontextmanager

from ..context import export_deadline
from ..model import Event, Link
from ..tracing import Tracer, tracer
from .bridge import to_our_context, to_ours

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence
    from types import TracebackType

    from opentelemetry.context import Context
    from opentelemetry.util import types

    from ..model import SpanContext
    from ..span import Span

__all__ = ["NexsTracer", "NexsTracerProvider", "SpanAdapter"]


def _keeps_link(context: trace.SpanContext, attributes: types.Attributes) -> bool:
    """Whether OpenTelemetry records this link: a valid context, or an invalid one that still says something.

    The spec says a link with an invalid context but with attributes or a trace state SHOULD be
    recorded (it can carry why there is no parent, e.g. a message without trace headers); the SDK
    keeps exactly these.
    """
    return bool(context.is_valid or attributes or context.trace_state)


def otel_context(span: Span | SpanContext, *, remote: bool = False) -> trace.SpanContext:
    """OpenTelemetry's `SpanContext` for one of our spans or contexts."""
    return trace.SpanContext(
        trace_id=span.trace_id,
        span_id=span.span_id,
        is_remote=remote,
        trace_flags=trace.TraceFlags(span.trace_flags & 0xFF),
        trace_state=trace.TraceState(list(span.trace_state)),
    )


class SpanAdapter(trace.Span):
    """One of our spans, seen through OpenTelemetry's ``Span`` interface."""

    def __init__(
        self, span: Span, record_exception: bool = True, set_status_on_exception: bool = True
    ) -> None:
        self.span = span
        self._context: trace.SpanContext | None = None
        self._record_exception = record_exception
        self._set_status_on_exception = set_status_on_exception

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        """End the span; an exception leaving the block is recorded and sets ERROR, as the SDK does.

        (The API's own `Span.__exit__` only ends, so ``with tracer.start_span(...)`` lost them.)
        """
        if exc_val is not None and self.is_recording():
            if self._record_exception:
                self.record_exception(exc_val, escaped=True)
            if self._set_status_on_exception:
                self.set_status(trace.Status(trace.StatusCode.ERROR, f"{type(exc_val).__name__}: {exc_val}"))
        self.end()

    def get_span_context(self) -> trace.SpanContext:
        """The span's ids, flags and trace state."""
        context = self._context
        if context is None:
            context = self._context = otel_context(self.span)
        return context

    def set_attributes(self, attributes: Mapping[str, types.AnyValue]) -> None:
        """Same rules as ours: bad values are converted or dropped, never raised."""
        self.span.set_attributes(attributes)

    def set_attribute(self, key: str, value: types.AnyValue) -> None:
        """Set one attribute."""
        self.span.set_attribute(key, value)

    def add_event(self, name: str, attributes: types.Attributes = None, timestamp: int | None = None) -> None:
        """Add an event."""
        self.span.add_event(name, attributes, timestamp)

    def add_link(self, context: trace.SpanContext, attributes: types.Attributes = None) -> None:
        """Add a link, kept under the rule OpenTelemetry's SDK applies (`_keeps_link`)."""
        if _keeps_link(context, attributes):
            self.span.add_link(to_our_context(context), attributes)

    def update_name(self, name: str) -> None:
        """Rename the span."""
        self.span.update_name(name)

    def is_recording(self) -> bool:
        """Whether the span records (False once ended, or when not sampled)."""
        return self.span.is_recording()

    def set_status(self, status: trace.Status | trace.StatusCode, description: str | None = None) -> None:
        """Set the status; OpenTelemetry's codes have our values.

        UNSET is ignored, as the API says it SHOULD be (the SDK does): instrumentations reset a
        span to UNSET, and that must not wipe an ERROR set before. Our own `Span.set_status`
        accepts UNSET, so the rule is applied here, for OpenTelemetry callers only.
        """
        if isinstance(status, trace.Status):
            code, description = status.status_code, status.description
        else:
            code = status
        if code is not trace.StatusCode.UNSET:
            self.span.set_status(code.value, description)

    def record_exception(
        self,
        exception: BaseException,
        attributes: types.Attributes = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        """Add an ``exception`` event, with ``exception.escaped`` and at `timestamp` as the SDK records it.

        ``exception.escaped`` is the SDK's text ``"True"``/``"False"``, so spans read the same
        whichever provider made them; the caller's `attributes` still override it.
        """
        attrs: dict[str, object] = {"exception.escaped": str(escaped)}
        if attributes:
            attrs.update(attributes)
        span = self.span
        if not timestamp:  # now, as our add_event reads 0 too
            span.record_exception(exception, attrs)
            return
        # Our record_exception stamps "now"; re-stamp the event it appended (none when the span has
        # ended or is at its event limit). Rare enough (an explicit timestamp) to cost nothing else.
        before = len(span.events)
        span.record_exception(exception, attrs)
        events = span.events
        if len(events) > before and isinstance(events, list):
            last = events[-1]
            events[-1] = Event(last.name, timestamp, last.attributes, last.dropped_attributes)

    def end(self, end_time: int | None = None) -> None:
        """End the span (ns since the epoch, default now)."""
        self.span.end(end_time)

    def __repr__(self) -> str:
        return f"SpanAdapter({self.span!r})"


class NexsTracer(trace.Tracer):
    """An OpenTelemetry ``Tracer`` that starts our spans, tagged with the library's scope."""

    def __init__(self, name: str, version: str | None) -> None:
        self._scope: dict[str, object] = {"otel.scope.name": name}
        if version:
            self._scope["otel.scope.version"] = version

    def start_span(
        self,
        name: str,
        context: Context | None = None,
        kind: trace.SpanKind = trace.SpanKind.INTERNAL,
        attributes: types.Attributes = None,
        links: Sequence[trace.Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> trace.Span:
        """Start one of our spans; the parent is the span in `context`, else the current one.

        A non-recording span while the tracer exports (`export_deadline`): an instrumentation that does
        not check OpenTelemetry's own suppression key would otherwise trace the export's
        calls into the next flush, one more span every flush. Not for OpenTelemetry's own
        ``suppress_instrumentation()``, which the bridge mirrors as ours (`context.suppressed`):
        that is for instrumentations, and the SDK's tracer still records the spans started there.
        """
        if export_deadline():
            return trace.INVALID_SPAN
        parent: object = None
        if context is not None:
            parent = to_ours(trace.get_current_span(context)) or Tracer.ROOT
        attrs: dict[str, object] = dict(attributes) if attributes else {}
        attrs.update(self._scope)
        our_links = [
            Link(to_our_context(link.context), dict(link.attributes or {}))  # type: ignore[arg-type]
            for link in links or ()
            if _keeps_link(link.context, link.attributes)
        ]
        span = tracer.span(
            name,
            kind=int(kind.value),
            attributes=attrs,
            links=our_links,
            start_ns=start_time,
            parent=parent,
        )
        return SpanAdapter(span, record_exception, set_status_on_exception)

    @_agnosticcontextmanager
    def start_as_current_span(
        self,
        name: str,
        context: Context | None = None,
        kind: trace.SpanKind = trace.SpanKind.INTERNAL,
        attributes: types.Attributes = None,
        links: Sequence[trace.Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
        end_on_exit: bool = True,
    ) -> Iterator[trace.Span]:
        """Start a span and make it current (for both APIs) for the block.

        `record_exception` and `set_status_on_exception` go to `start_span` too, as the SDK passes
        them: the span they make also honours them as a context manager of its own.
        """
        span = self.start_span(
            name, context, kind, attributes, links, start_time, record_exception, set_status_on_exception
        )
        with trace.use_span(
            span,
            end_on_exit=end_on_exit,
            record_exception=record_exception,
            set_status_on_exception=set_status_on_exception,
        ) as current:
            yield current


class NexsTracerProvider(trace.TracerProvider):
    """Hands out `NexsTracer`s; made global by `nexs_serverless.otel.install`."""

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: types.Attributes = None,
    ) -> trace.Tracer:
        """A tracer for one instrumentation library."""
        return NexsTracer(instrumenting_module_name, instrumenting_library_version)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Export what has ended, within `timeout_millis`, as the SDK's provider does.

        OpenTelemetry's Lambda instrumentation calls it before its handler returns; without
        it the spans waited in the buffer while Lambda froze the process.
        """
        from ..flushing import flush

        flush(float(timeout_millis), reason="otel_force_flush")
        return True

    def shutdown(self) -> None:
        """Export what has ended (the process is about to go)."""
        self.force_flush()
