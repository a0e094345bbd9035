"""One current context for both APIs: OpenTelemetry's and ours stay in step.

OpenTelemetry keeps its current span, baggage and instrumentation suppression
in its own runtime context; we keep ours in `nexs_serverless.context` and
`nexs_serverless.baggage`. The bridge wraps OpenTelemetry's runtime context
object (``opentelemetry.context._RUNTIME_CONTEXT``, the one place every
``attach``/``get_current`` goes through) so that:

- ``attach`` (``trace.use_span``, ``start_as_current_span``, any
  instrumentation) also makes the attached span our current span: spans we
  start inside are its children. A span from another SDK becomes a parent
  context (its ids), so our spans still join its trace. The attached
  baggage becomes ours (`_baggage`), and OpenTelemetry's suppression
  (``suppress_instrumentation``, set by the SDK's span processors around
  their exporters) suppresses ours too: our HTTP instrumentation traced the
  SDK exporter's own request into our trace before. ``detach`` undoes all three.
- ``get_current`` reports our current span when it is newer than the one
  attached (code inside ``with tracer.span(...)``): OpenTelemetry spans
  started there are its children. Likewise our baggage, when we have any
  and it says something else (an invocation's incoming baggage,
  `nexs_serverless.baggage.set`), and our suppression while we export, so
  OpenTelemetry instrumentations leave our exporters' calls alone.

Ours never undoes OpenTelemetry's: no current span or no baggage of ours
leaves OpenTelemetry's context as it is (baggage attached before the bridge
was installed stays), and only OpenTelemetry's "suppressed" is mirrored, not
its absence (our own export stays suppressed inside an OpenTelemetry block).

OpenTelemetry's storage is untouched; `uninstall` puts the original object
back. The attribute is private API, stable since OpenTelemetry 1.0; if it is
missing, the bridge is not installed and `install` returns False.
"""

from __future__ import annotations

from .. import _guard as guard
from ..baggage import _entries
from ..context import _current, _suppressed
from ..model import SpanContext
from . import _baggage

TYPE_CHECKING = False
if TYPE_CHECKING:
    from contextvars import ContextVar
    from typing import Any

    from ..span import Span

__all__ = ["install", "installed", "to_otel", "to_ours", "uninstall"]


class _Token:
    """OpenTelemetry's token, with ours for each variable the attach changed (None: unchanged)."""

    __slots__ = ("baggage", "inner", "ours", "quiet")

    def __init__(self, inner: object, ours: object, quiet: object, baggage: object) -> None:
        self.inner = inner
        self.ours = ours
        self.quiet = quiet
        self.baggage = baggage


def to_ours(span: Any) -> Span | SpanContext | None:
    """Our span (for our adapters) or a parent context for an OpenTelemetry span; None if invalid."""
    from .provider import SpanAdapter

    if isinstance(span, SpanAdapter):
        return span.span
    if span is None:
        return None
    context = span.get_span_context()
    if not context.is_valid:
        return None
    return to_our_context(context)


def to_our_context(context: Any) -> SpanContext:
    """Our `SpanContext` for an OpenTelemetry one."""
    return SpanContext(
        context.trace_id,
        context.span_id,
        int(context.trace_flags),
        tuple(context.trace_state.items()),
        bool(context.is_remote),
    )


def to_otel(current: Span | SpanContext) -> Any:
    """An OpenTelemetry span standing for our current span or remote context."""
    from opentelemetry import trace

    from .provider import SpanAdapter, otel_context

    if type(current) is SpanContext:
        return trace.NonRecordingSpan(otel_context(current, remote=current.is_remote))
    return SpanAdapter(current)  # type: ignore[arg-type]


def _same(otel_span: Any, ours: Span | SpanContext) -> bool:
    from .provider import SpanAdapter

    if isinstance(otel_span, SpanAdapter):
        return otel_span.span is ours
    context = otel_span.get_span_context()
    return bool(context.trace_id == ours.trace_id and context.span_id == ours.span_id)


def _bridged_class() -> type:
    from opentelemetry import trace
    from opentelemetry.baggage import _BAGGAGE_KEY
    from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY
    from opentelemetry.context.context import Context, _RuntimeContext

    def with_value(context: Any, key: str, value: object) -> Any:
        values = context.copy()
        values[key] = value
        return Context(values)

    class BridgedRuntimeContext(_RuntimeContext):
        """OpenTelemetry's runtime context, with our current span, baggage and suppression kept in step."""

        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def attach(self, context: Any) -> Any:
            inner = self.inner.attach(context)
            if not isinstance(context, Context):  # OpenTelemetry's own problem, not ours
                return inner
            ours = _current.set(to_ours(trace.get_current_span(context)))
            quiet = None
            if context.get(_SUPPRESS_INSTRUMENTATION_KEY) and not _suppressed.get():
                quiet = _suppressed.set(True)
            carried = None
            try:
                wanted = _baggage.adopted(context.get(_BAGGAGE_KEY), _entries.get())
                if wanted is not None:
                    carried = _entries.set(wanted)
            except Exception as exc:  # a baggage value that cannot be read: the caller's attach goes on
                guard.report("otel_bridge_baggage", exc)
            return _Token(inner, ours, quiet, carried)

        def get_current(self) -> Any:
            context = self.inner.get_current()
            ours = _current.get()
            if ours is not None and not _same(trace.get_current_span(context), ours):
                context = trace.set_span_in_context(to_otel(ours), context)
            entries = _entries.get()
            if entries:
                try:
                    if _baggage.differs(entries, context.get(_BAGGAGE_KEY)):
                        context = with_value(context, _BAGGAGE_KEY, _baggage.texts(entries))
                except Exception as exc:  # as in `attach`
                    guard.report("otel_bridge_baggage", exc)
            if _suppressed.get() and not context.get(_SUPPRESS_INSTRUMENTATION_KEY):
                context = with_value(context, _SUPPRESS_INSTRUMENTATION_KEY, True)
            return context

        def detach(self, token: Any) -> None:
            if isinstance(token, _Token):
                changed: tuple[tuple[ContextVar[Any], Any], ...] = (
                    (_entries, token.baggage),
                    (_suppressed, token.quiet),
                    (_current, token.ours),
                )
                for variable, ours in changed:
                    if ours is None:
                        continue
                    try:
                        variable.reset(ours)
                    except ValueError:
                        # Attached in another context: OpenTelemetry's own variable refuses the token the
                        # same way just below, its current context stays, and its `detach` logs the error.
                        # Ours stays too, so both APIs keep one current context (setting None cleared the
                        # span of whatever ran in this context and left OpenTelemetry's in place).
                        pass
                self.inner.detach(token.inner)
            else:  # attached before the bridge was installed
                self.inner.detach(token)

    return BridgedRuntimeContext


def installed() -> bool:
    """Whether OpenTelemetry's context currently goes through the bridge."""
    import opentelemetry.context as otel_context_module

    runtime = getattr(otel_context_module, "_RUNTIME_CONTEXT", None)
    return type(runtime).__name__ == "BridgedRuntimeContext"


def install() -> bool:
    """Put the bridge in front of OpenTelemetry's runtime context; True when in place."""
    import opentelemetry.context as otel_context_module

    runtime = getattr(otel_context_module, "_RUNTIME_CONTEXT", None)
    if runtime is None:
        return False
    if installed():
        return True
    otel_context_module._RUNTIME_CONTEXT = _bridged_class()(runtime)
    return True


def uninstall() -> None:
    """Restore OpenTelemetry's own runtime context."""
    import opentelemetry.context as otel_context_module

    if installed():
        otel_context_module._RUNTIME_CONTEXT = otel_context_module._RUNTIME_CONTEXT.inner  # type: ignore[attr-defined]
