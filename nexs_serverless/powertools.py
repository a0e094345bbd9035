"""A Powertools `Tracer` provider backed by nexs_serverless: keep the decorators, drop the X-Ray SDK.

    from aws_lambda_powertools import Tracer
    from nexs_serverless.powertools import NexsProvider

    tracer = Tracer(service="payment", provider=NexsProvider())

    @tracer.capture_method
    def charge(order): ...

    @tracer.capture_lambda_handler
    def handler(event, context): ...

Powertools' `Tracer` is built on the AWS X-Ray SDK for Python, which reaches
end of support in February 2027. Powertools lets the SDK be swapped for any
`BaseProvider`; this one turns each "subsegment" into one of our spans, so
`capture_lambda_handler`, `capture_method` (functions, ``async def``,
generators, context managers), `put_annotation`, `put_metadata` and the
``tracer.provider.in_subsegment(...)`` escape hatch keep working, and the
spans go through the configured exporters (``OTEL_TRACES_EXPORTER``).

How X-Ray concepts map (docs/migration.md has the full table):

- A subsegment is a span (kind INTERNAL) under the current span.
- The handler: `capture_lambda_handler` starts the invocation exactly as
  ``@traced_handler`` does (root span named after the trigger, FaaS and
  trigger attributes, cold start, context from the event, flush within the
  invocation's deadline). Powertools does not hand the event to a provider,
  so it is read from its decorator's frame; if that ever fails, the handler
  span is a plain root span and is still flushed when it ends. When the
  handler is already traced (``@traced_handler`` above it, or the layer's
  zero-code wrapper), Powertools' ``## handler`` is an ordinary child span.
- An annotation is the attribute ``aws.xray.annotation.<key>`` (value kept
  as str, number or bool).
- Metadata is the attribute ``aws.xray.metadata.<namespace>.<key>``: text
  (and bytes, decoded) as is, numbers and bools as is, anything else as JSON
  (exceptions as ``Type: message``), cut at ``NEXS_CAPTURE_MAX_LENGTH``. Dots
  in the namespace are written ``%2E`` (`add_metadata`); a namespace starting
  ``AWS.`` is dropped, as the X-Ray SDK drops it.
- Exceptions are recorded as an ``exception`` event with status ERROR.
- ``patch``/``patch_all`` (X-Ray SDK monkey-patching of boto3, requests, ...)
  do nothing: outgoing calls are traced by this package's own instrumentation
  or by OpenTelemetry instrumentation libraries.

Off when Powertools' tracing is off: ``Tracer(disabled=True)``, a tracer
that turned itself off (``POWERTOOLS_TRACE_DISABLED``, or outside Lambda,
unless built with ``disabled=False``), or ``POWERTOOLS_TRACE_DISABLED=true``
read by the provider itself. Powertools checks its flag in `put_annotation`
and `put_metadata` only, and on the X-Ray SDK turns the SDK off for the rest;
its decorators still ask the provider for subsegments, so the provider reads
the flag too (`_powertools_off`), or a disabled tracer recorded every span
but its annotations.
"""

from __future__ import annotations

import json
import sys

from aws_lambda_powertools.tracing.base import BaseProvider, BaseSegment

from . import _guard as guard
from . import _stats as stats
from .config import Reader, report
from .context import current_parent, current_span
from .handler import Options, _invocation
from .model import StatusCode
from .runtime import runtime
from .tracing import _DISABLED, tracer

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import FrameType, ModuleType, TracebackType
    from typing import Any

    from .invocation import Invocation
    from .span import Span

__all__ = ["ANNOTATION_PREFIX", "METADATA_PREFIX", "NexsProvider", "NexsSegment"]

ANNOTATION_PREFIX = "aws.xray.annotation."
METADATA_PREFIX = "aws.xray.metadata."

_POWERTOOLS_TRACER = "aws_lambda_powertools.tracing.tracer"
_HANDLER_OPTIONS = Options(None, None, None, None)


def _metadata_value(value: object, max_length: int) -> object:
    """Metadata as an attribute value: primitives as is, the rest as bounded text."""
    if isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, BaseException):
        text = f"{type(value).__name__}: {value}"
    elif isinstance(value, str):
        text = value
    elif isinstance(value, (bytes, bytearray)):
        text = bytes(value).decode("utf-8", "replace")
    else:
        try:
            text = json.dumps(value, default=str, separators=(",", ":"))
        except (TypeError, ValueError):  # circular structures, NaN keys...
            text = repr(value)
    if len(text) > max_length:
        stats.incr("captures_truncated")
        return text[:max_length] + "…[truncated]"
    return text


def annotate(span: Span, key: str, value: object) -> None:
    """Record an X-Ray annotation on `span` (as ``aws.xray.annotation.<key>``)."""
    span.set_attribute(ANNOTATION_PREFIX + str(key), value)


def add_metadata(span: Span, key: str, value: object, namespace: str | None) -> None:
    """Record X-Ray metadata on `span` (as ``aws.xray.metadata.<namespace>.<key>``).

    The X-Ray SDK, under Powertools, files ``put_metadata(key, value, "a.b")``
    under namespace ``a.b``, and the X-Ray exporter reads the namespace up to the
    first dot after the prefix: a namespace's own ``.`` and ``%`` are therefore
    written ``%2E`` and ``%25`` (``aws.xray.metadata.a%2Eb.<key>``), the key as is.
    A namespace that is not text, or starts with ``AWS.`` (reserved by X-Ray), is
    dropped with a warning, as the X-Ray SDK drops it.
    """
    namespace = namespace or "default"
    if not isinstance(namespace, str) or namespace.startswith("AWS."):
        stats.incr("powertools_metadata_dropped")
        guard.warn_once(
            "powertools.metadata_namespace",
            "nexs_serverless: Powertools metadata namespace %r dropped (not text, or X-Ray's reserved AWS.)",
            namespace,
        )
        return
    if "." in namespace or "%" in namespace:
        namespace = namespace.replace("%", "%25").replace(".", "%2E")
    attribute = f"{METADATA_PREFIX}{namespace}.{key}"
    span.set_attribute(attribute, _metadata_value(value, runtime.settings.capture_max_length))


class NexsSegment(BaseSegment):
    """A Powertools segment that writes to one of our spans.

    ``subsegment.span`` is the underlying span, for the OpenTelemetry-style
    calls X-Ray has no word for (events, links, span kind).
    """

    __slots__ = ("span",)

    def __init__(self, span: Span) -> None:
        self.span = span

    def close(self, end_time: float | None = None) -> None:
        """End the span (`end_time` in seconds since the epoch, as X-Ray takes it)."""
        self.span.end(int(end_time * 1e9) if end_time else None)

    def add_subsegment(self, subsegment: Any) -> None:
        """Nothing to do: a span's parent is the span current when it starts."""

    def remove_subsegment(self, subsegment: Any) -> None:
        """Nothing to do: spans are not kept in a tree in memory."""

    def put_annotation(self, key: str, value: object) -> None:
        """Record an annotation (attribute ``aws.xray.annotation.<key>``)."""
        try:
            annotate(self.span, key, value)
        except Exception as exc:
            guard.report("powertools.put_annotation", exc)

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None:
        """Record metadata (attribute ``aws.xray.metadata.<namespace>.<key>``)."""
        try:
            add_metadata(self.span, key, value, namespace)
        except Exception as exc:
            guard.report("powertools.put_metadata", exc)

    def add_exception(self, exception: BaseException, stack: Any = None, remote: bool = False) -> None:
        """Record `exception` as an ``exception`` event and set status ERROR."""
        try:
            self.span.record_exception(exception)
            self.span.set_status(StatusCode.ERROR, f"{type(exception).__name__}: {exception}")
        except Exception as exc:
            guard.report("powertools.add_exception", exc)


def _handler_frame(frame: FrameType | None) -> FrameType | None:
    """The frame of Powertools' `capture_lambda_handler` wrapper, when it is the caller.

    Powertools calls ``provider.in_subsegment(name="## <handler>")`` from a
    closure named ``decorate`` over ``lambda_handler``, whose locals are
    ``event`` and ``context`` (aws-lambda-powertools 3.x); method wrappers
    close over ``method`` instead. Pinned by tests/test_powertools.py.
    """
    if frame is None:
        return None
    code = frame.f_code
    if (
        code.co_name == "decorate"
        and "lambda_handler" in code.co_freevars
        and frame.f_globals.get("__name__") == _POWERTOOLS_TRACER
    ):
        return frame
    return None


class _Scope:
    """One subsegment's lifetime, as a sync or async context manager.

    Three cases, decided on entry: under a current span it is a child span;
    for Powertools' handler wrapper with no current span it is the
    invocation (root span, flush at the end); otherwise a root span that the
    next flush exports.
    """

    __slots__ = ("_frame", "_invocation", "_machinery", "_name", "_span")

    def __init__(self, name: str, frame: FrameType | None) -> None:
        self._name = name
        self._frame = frame
        self._invocation: Invocation | None = None
        self._machinery: ModuleType | None = None
        self._span: Span | None = None

    def __enter__(self) -> NexsSegment:
        frame = self._frame
        if frame is not None:
            try:
                machinery = self._machinery = _invocation()
                locals_ = frame.f_locals
                args = (locals_.get("event"), locals_.get("context"))
                self._invocation = machinery.begin(locals_.get("lambda_handler"), _HANDLER_OPTIONS, args, {})
            except Exception as exc:
                guard.report("powertools.begin_invocation", exc)
            if self._invocation is not None:
                return NexsSegment(self._invocation.root)
        try:
            span = self._span = tracer.span(self._name)
            span.__enter__()
        except Exception as exc:  # the user's function runs whatever happens here
            guard.report("powertools.in_subsegment", exc)
            self._span = None
            return NexsSegment(_DISABLED)
        return NexsSegment(span)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        frame, self._frame = self._frame, None
        try:
            if self._invocation is None:
                if self._span is not None:
                    self._span.__exit__(exc_type, exc, tb)
                if frame is not None:  # the handler, but `begin` failed: still flush its spans
                    from .flushing import flush

                    flush(reason="return")
                return
            machinery = self._machinery
            assert machinery is not None  # set together with the invocation
            assert frame is not None
            if exc is not None:
                machinery.fail(self._invocation, exc)
            else:
                machinery.succeed(self._invocation, frame.f_locals.get("response"))
            machinery.finish(self._invocation, _HANDLER_OPTIONS)
        except Exception as err:
            guard.report("powertools.end_subsegment", err)

    async def __aenter__(self) -> NexsSegment:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)


class _DisabledScope:
    """What the provider hands out when turned off: a segment on a span that records nothing."""

    __slots__ = ()

    def __enter__(self) -> NexsSegment:
        return NexsSegment(_DISABLED)

    def __exit__(self, *exc: object) -> None:
        return None

    async def __aenter__(self) -> NexsSegment:
        return self.__enter__()

    async def __aexit__(self, *exc: object) -> None:
        return None


def _powertools_off() -> bool:
    """Whether Powertools' tracer is off: its configuration, shared by every `Tracer`, says disabled.

    Process-wide, as on the X-Ray SDK, where a disabled `Tracer` turns the SDK
    itself off for every tracer. Read at each call: the tracer is built after
    its provider.
    """
    module = sys.modules.get(_POWERTOOLS_TRACER)
    config = getattr(getattr(module, "Tracer", None), "_config", None)
    return isinstance(config, dict) and bool(config.get("disabled"))


class NexsProvider(BaseProvider):
    """Powertools tracing provider that records spans with nexs_serverless.

    Args:
        disabled: record nothing (default: ``POWERTOOLS_TRACE_DISABLED``). Whatever
            this says, nothing is recorded while Powertools' tracer is off.
    """

    def __init__(self, *, disabled: bool | None = None) -> None:
        if disabled is None:
            reader = Reader(runtime.settings.environ)
            disabled = reader.boolean("POWERTOOLS_TRACE_DISABLED", default=False)
            report(reader.problems)
        self.disabled = disabled

    # Powertools declares a generator-based context manager; ours is a plain
    # class (no generator frame, and it must see its caller's frame).
    def in_subsegment(  # type: ignore[override]
        self, name: str | None = None, **kwargs: Any
    ) -> _Scope | _DisabledScope:
        """A context manager yielding a `NexsSegment` on a new span named `name`."""
        if self.disabled or _powertools_off():
            return _DisabledScope()
        frame = None
        if current_parent() is None:
            try:
                frame = _handler_frame(sys._getframe(1))
            except Exception as exc:  # a Python without frames: a plain span then
                guard.report("powertools.handler_frame", exc)
        return _Scope(name or "subsegment", frame)

    def in_subsegment_async(self, name: str | None = None, **kwargs: Any) -> _Scope | _DisabledScope:
        """An async context manager yielding a `NexsSegment` on a new span named `name`."""
        if self.disabled or _powertools_off():
            return _DisabledScope()
        return _Scope(name or "subsegment", None)

    def put_annotation(self, key: str, value: object) -> None:
        """Annotate the current span (attribute ``aws.xray.annotation.<key>``)."""
        span = self._current("put_annotation")
        if span is not None:
            NexsSegment(span).put_annotation(key, value)

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None:
        """Add metadata to the current span (attribute ``aws.xray.metadata.<namespace>.<key>``)."""
        span = self._current("put_metadata")
        if span is not None:
            NexsSegment(span).put_metadata(key, value, namespace)

    def patch(self, modules: Sequence[str]) -> None:
        """Ignored: X-Ray SDK patching; outgoing calls are traced by our own instrumentation."""
        guard.logger.debug("nexs_serverless: Powertools patch(%s) ignored", list(modules))

    def patch_all(self) -> None:
        """Ignored, like `patch`."""
        guard.logger.debug("nexs_serverless: Powertools patch_all() ignored")

    def _current(self, what: str) -> Span | None:
        if self.disabled or _powertools_off():
            return None
        span = current_span()
        if span is None:
            stats.incr("powertools_no_active_span")
            guard.warn_once(
                "powertools.no_span",
                "nexs_serverless: Powertools %s called with no active span (outside a traced call); ignored",
                what,
            )
        return span
