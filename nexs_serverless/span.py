"""The span record: a mutable, slotted object that the pool hands out and takes back.

A `Span` is started by `Tracer.span` (which fills its identity fields inline,
because a method call with ten arguments costs more than the rest of the start),
used as a context manager to become the current span, and ended once. After
it ends it is read-only; after it is exported it may be reset and reused by
the pool, which is why exporters that keep spans store `FinishedSpan` copies.

Arguments of another type than the API's (a float time, OpenTelemetry's status
or context, a mapping that is not a dict) are converted by `_span_coerce`,
imported inside the branch that meets one: a cold start never loads it (issue #5).
So is `_span_reentry`, which sorts out the tokens of a span entered again while
its `with` is open or exited in another context.
"""

from __future__ import annotations

import sys
import time

from . import _stats as stats
from .attributes import DROP, SpanLimits, clean_value
from .model import Event, InstrumentationScope, Link, Resource, SpanContext, StatusCode

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from contextvars import Token
    from types import TracebackType

    from .attributes import AttributeValue

    _Token = Token["Span | SpanContext | None"]

__all__ = ["NonRecordingSpan", "Span"]

_time_ns = time.time_ns
_MAX_NS = 2**63  # times past this do not fit the encoders' 64-bit fields (and are not times)


def _bind_context() -> None:
    """First use only: load the context variables and bind their methods here.

    Why not at import: `context` needs `_contextvars`, an extension module that
    costs a path search and a `dlopen`, about 0.4 ms of the import budget; no
    span is current before the first one starts. Bound once because called as
    ``_current.set(...)`` CPython 3.11 looks the method up on every call (it
    takes a name imported with ``from`` for a module) and allocates a bound
    method each time: 3% of a span start + end, measured.
    """
    global _set_current, _reset_current
    from .context import _current

    _reset_current = _current.reset
    _set_current = _current.set


def _first_set(value: Span | SpanContext | None) -> Token[Span | SpanContext | None]:
    _bind_context()
    return _set_current(value)


def _first_reset(token: Token[Span | SpanContext | None]) -> None:
    _bind_context()
    _reset_current(token)


_set_current: Callable[[Span | SpanContext | None], Token[Span | SpanContext | None]] = _first_set
_reset_current: Callable[[Token[Span | SpanContext | None]], None] = _first_reset
# A class attribute read (`StatusCode.UNSET`) is not specialised by CPython 3.11: read once here
# for the two places that run for every pooled record (allocation and reset).
_UNSET = StatusCode.UNSET
# References to a span's attribute dict while `Span.reset` runs: the span's slot, the local name,
# `getrefcount`'s argument. More means someone kept the mapping.
_ATTRIBUTES_HELD_HERE = 3
_getrefcount = sys.getrefcount


class _State:
    """Settings every span reads: limits, resource and scope; swapped by `configure`.

    The resource is built on first read (the first export), not at import:
    detecting the platform is work that a cold start should not pay twice.
    """

    __slots__ = ("_resource", "limits", "resource_factory", "scope")

    def __init__(self) -> None:
        self.limits = SpanLimits()
        self._resource: Resource | None = None
        self.resource_factory: Callable[[], Mapping[str, AttributeValue]] = dict
        self.scope = InstrumentationScope("nexs_serverless", "0")

    @property
    def resource(self) -> Resource:
        """The process's resource, built on first use."""
        resource = self._resource
        if resource is None:
            resource = self._resource = Resource(self.resource_factory())
        return resource

    def set_resource_factory(self, factory: Callable[[], Mapping[str, AttributeValue]]) -> None:
        """Use `factory` to build the resource, at the next read."""
        self.resource_factory = factory
        self._resource = None


state = _State()


class Span:
    """One operation in a trace, recorded in memory until the invocation's flush.

    Use it as a context manager (``with tracer.span("work") as span:``) to make
    it the current span; an exception leaving the block is recorded as an
    ``exception`` event and sets status ERROR, then propagates unchanged.
    Once ended, mutations are ignored. Do not keep a span after its invocation
    returns: records are recycled by the span pool once exported.
    """

    __slots__ = (
        "_token",
        "attributes",
        "dropped_attributes",
        "dropped_events",
        "dropped_links",
        "end_ns",
        "events",
        "force_ended",
        "kind",
        "links",
        "name",
        "parent_is_remote",
        "parent_span_id",
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

    def __init__(self) -> None:
        # Only what `reset` restores; identity fields are filled by `Tracer.span`.
        self.end_ns = 0
        self.attributes: dict[str, AttributeValue] = {}
        # Events and links are rare: an empty tuple until the first one, so a
        # pooled record costs two allocations (itself, its dict), not four.
        self.events: list[Event] | tuple[()] = ()
        self.links: list[Link] | tuple[()] = ()
        self.status_code: int = _UNSET
        self.status_description: str | None = None
        self.dropped_attributes = 0
        self.dropped_events = 0
        self.dropped_links = 0
        self.force_ended = False
        # From the `with` that made it current; a list once entered again while current (`_span_reentry`).
        self._token: _Token | list[_Token] | None = None

    def reset(self) -> None:
        """Return the record to its freshly-allocated state (the pool calls this).

        The attribute dict is emptied in place only when nothing else holds it: a
        mapping someone kept (``span.attributes``) must not be emptied, nor filled
        with the next span's values.
        """
        self.end_ns = 0
        attributes = self.attributes
        if _getrefcount(attributes) > _ATTRIBUTES_HELD_HERE:
            self.attributes = {}
        else:
            attributes.clear()
        if self.events:
            self.events = ()
        if self.links:
            self.links = ()
        self.status_code = _UNSET
        self.status_description = None
        self.dropped_attributes = 0
        self.dropped_events = 0
        self.dropped_links = 0
        self.force_ended = False
        self._token = None

    # -- mutation ---------------------------------------------------------------

    def set_attribute(self, key: str, value: object) -> None:
        """Set one attribute; a bad value is converted or dropped and counted, never raised."""
        if self.end_ns:
            return
        if type(key) is not str or not key:  # before the lookup: an unhashable key would raise there
            self.dropped_attributes += 1
            stats.incr("attributes_dropped")
            return
        attrs = self.attributes
        if key not in attrs and len(attrs) >= state.limits.attribute_count:
            self.dropped_attributes += 1
            return
        cleaned = clean_value(value, state.limits.attribute_value_length)
        if cleaned is DROP:
            self.dropped_attributes += 1
            stats.incr("attributes_dropped")
            return
        attrs[key] = cleaned  # type: ignore[assignment]

    def set_attributes(self, attributes: Mapping[str, object]) -> None:
        """Set several attributes (same rules as `set_attribute`); a non-mapping is dropped and counted."""
        if type(attributes) is dict:
            items: list[tuple[str, object]] | None = list(attributes.items())
        else:  # another mapping, or a list of pairs (counted, dropped)
            from ._span_coerce import items_of

            items = items_of(attributes)
        if items is None:
            self.dropped_attributes += 1
            return
        for key, value in items:
            self.set_attribute(key, value)

    def add_event(
        self,
        name: str,
        attributes: Mapping[str, object] | None = None,
        timestamp_ns: int | None = None,
    ) -> None:
        """Add a timestamped event; beyond the event limit it is counted as dropped."""
        if self.end_ns:
            return
        if len(self.events) >= state.limits.event_count:
            self.dropped_events += 1
            return
        cleaned, dropped = _clean_mapping(attributes, state.limits.event_attribute_count)
        if timestamp_ns is None:
            timestamp_ns = _time_ns()
        elif type(timestamp_ns) is not int or not 0 < timestamp_ns < _MAX_NS:
            from ._span_coerce import time_ns

            timestamp_ns = time_ns(timestamp_ns)
        event = Event(name if type(name) is str else _safe_str(name), timestamp_ns, cleaned, dropped)
        events = self.events
        if type(events) is tuple:
            self.events = [event]
        else:
            events.append(event)  # type: ignore[union-attr]

    def add_link(self, context: SpanContext, attributes: Mapping[str, object] | None = None) -> None:
        """Link this span to another context (OpenTelemetry allows links after start).

        Also takes a span (ours or OpenTelemetry's) or OpenTelemetry's ``SpanContext``, read as
        our `SpanContext`; anything else is dropped and counted (stored, it made the encoding of
        the whole batch fail).
        """
        if self.end_ns:
            return
        if type(context) is not SpanContext:
            from ._span_coerce import as_span_context as context_of

            found = context_of(context)
            if found is None:
                self.dropped_links += 1
                stats.incr("links_dropped_invalid")
                return
            context = found
        if len(self.links) >= state.limits.link_count:
            self.dropped_links += 1
            return
        cleaned, dropped = _clean_mapping(attributes, state.limits.link_attribute_count)
        link = Link(context, cleaned, dropped)
        links = self.links
        if type(links) is tuple:
            self.links = [link]
        else:
            links.append(link)  # type: ignore[union-attr]

    def record_exception(
        self,
        exception: BaseException,
        attributes: Mapping[str, object] | None = None,
        timestamp_ns: int | None = None,
        escaped: bool = False,
    ) -> None:
        """Add an OpenTelemetry ``exception`` event (type, message, stack trace, whether it escaped).

        `escaped` (the OpenTelemetry API's parameter; code written for it raised a TypeError)
        adds ``exception.escaped``, a boolean as the semantic conventions type it, only when
        true: where we record an exception on its way out (a ``with``, the handler). The
        conventions have since deprecated the attribute (only escaping exceptions are to be
        recorded at all), so a handled one gets none rather than ``false`` on every event;
        OpenTelemetry's Python SDK writes the text ``"True"``/``"False"`` instead.
        `attributes` override these keys, as in the SDK. `timestamp_ns` is `add_event`'s
        (default now).
        """
        if self.end_ns:
            return
        import traceback  # on the first exception only (the Lambda runtime has it loaded already)

        exc_type = type(exception)
        module = exc_type.__module__
        qualname = exc_type.__qualname__
        try:
            stacktrace = "".join(
                traceback.format_exception(exc_type, exception, getattr(exception, "__traceback__", None))
            )
        except Exception:  # not an exception instance (a class, a message): what it is, as text
            stacktrace = _safe_str(exception)
        event_attrs: dict[str, object] = {
            # Fully qualified but for built-ins, as OpenTelemetry's SDK writes it ("__main__.Foo").
            "exception.type": qualname if module == "builtins" else f"{module}.{qualname}",
            "exception.message": _safe_str(exception),
            "exception.stacktrace": stacktrace,
        }
        if escaped:
            event_attrs["exception.escaped"] = True
        if attributes:
            if type(attributes) is dict:
                event_attrs.update(attributes)
            else:
                from ._span_coerce import items_of

                items = items_of(attributes)
                if items is not None:
                    event_attrs.update(items)
        self.add_event("exception", event_attrs, timestamp_ns)

    def set_status(self, code: int, description: str | None = None) -> None:
        """Set the status (a `StatusCode`); OK is final, a description is kept only with ERROR.

        UNSET is ignored, as OpenTelemetry's API says: it would wipe an ERROR set earlier.
        OpenTelemetry's own ``StatusCode`` and ``Status`` are read as ours (code migrated
        from the SDK passes them; they were ignored); anything else that is not 1 or 2 as
        an int is ignored (a float 2.0 was stored and broke the OTLP encoding of the batch).
        """
        if self.end_ns or self.status_code == StatusCode.OK:
            return
        why: object = description
        if type(code) is not int:
            from ._span_coerce import status_of

            code, why = status_of(code, why)
        if code not in (1, 2):
            return
        self.status_code = code
        if code == StatusCode.ERROR and why is not None:
            self.status_description = why if type(why) is str else _safe_str(why)
        else:
            self.status_description = None

    def update_name(self, name: str) -> None:
        """Rename the span (e.g. once the HTTP route is known)."""
        if not self.end_ns:
            # Text only: a name of another type made the OTLP encoding of the whole batch fail.
            self.name = name if type(name) is str else _safe_str(name)

    def end(self, end_ns: int | None = None) -> None:
        """End the span; later calls do nothing. A time that is not a positive int is converted (or now)."""
        if not self.end_ns:
            if end_ns is None:
                end_ns = _time_ns()
            elif type(end_ns) is not int or not 0 < end_ns < _MAX_NS:
                from ._span_coerce import time_ns

                end_ns = time_ns(end_ns)
            self.end_ns = end_ns

    def is_recording(self) -> bool:
        """True until the span ends (False for non-recording spans)."""
        return not self.end_ns

    # -- context manager --------------------------------------------------------

    def __enter__(self) -> Span:
        if self._token is None:
            self._token = _set_current(self)
        else:
            from ._span_reentry import enter_again

            enter_again(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Exceptions that are not errors (GeneratorExit, a cancelled task, SystemExit) end the
        # span as they are, as OpenTelemetry's `use_span` does.
        if exc is not None and not self.end_ns and isinstance(exc, Exception):
            self.record_exception(exc, escaped=True)
            if self.status_code == StatusCode.UNSET:
                self.set_status(
                    StatusCode.ERROR, f"{exc_type.__name__}: {_safe_str(exc)}" if exc_type else None
                )
        if not self.end_ns:
            self.end_ns = _time_ns()
        token = self._token
        if token is not None:
            self._token = None
            try:
                _reset_current(token)  # type: ignore[arg-type]  # a list raises TypeError, handled below
            except (TypeError, ValueError):  # several tokens (entered again), or another context
                from ._span_reentry import exit_elsewhere

                exit_elsewhere(self, token)

    # -- read side (the names OpenTelemetry SDK exporters use) -------------------

    @property
    def context(self) -> SpanContext:
        """This span's `SpanContext`, for propagation and links."""
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
    def end_time(self) -> int | None:
        """End, ns since the epoch, or None while running."""
        return self.end_ns or None

    @property
    def resource(self) -> Resource:
        """The process's resource (service, cloud, FaaS attributes)."""
        return state.resource

    @property
    def instrumentation_scope(self) -> InstrumentationScope:
        """Always this library."""
        return state.scope

    @property
    def duration_ns(self) -> int:
        """End minus start, 0 while running."""
        return self.end_ns - self.start_ns if self.end_ns else 0

    def __repr__(self) -> str:
        return f"<Span {self.name!r} trace={self.trace_id:032x} span={self.span_id:016x}>"


class NonRecordingSpan(Span):
    """A span that carries context (ids, sampled=0) but records nothing.

    Unsampled invocations use these so that children and outgoing calls still
    propagate the trace, at the cost of an id and a context switch only.
    """

    __slots__ = ()

    def set_attribute(self, key: str, value: object) -> None:
        """Ignored."""

    def add_event(
        self,
        name: str,
        attributes: Mapping[str, object] | None = None,
        timestamp_ns: int | None = None,
    ) -> None:
        """Ignored."""

    def add_link(self, context: SpanContext, attributes: Mapping[str, object] | None = None) -> None:
        """Ignored."""

    def record_exception(
        self,
        exception: BaseException,
        attributes: Mapping[str, object] | None = None,
        timestamp_ns: int | None = None,
        escaped: bool = False,
    ) -> None:
        """Ignored."""

    def set_status(self, code: int, description: str | None = None) -> None:
        """Ignored."""

    def is_recording(self) -> bool:
        """Always False."""
        return False


def _clean_mapping(
    attributes: Mapping[str, object] | None, limit: int
) -> tuple[dict[str, AttributeValue], int]:
    if not attributes:
        return {}, 0
    if type(attributes) is dict:
        items: list[tuple[str, object]] | None = list(attributes.items())
    else:
        from ._span_coerce import items_of

        items = items_of(attributes)
    if items is None:
        return {}, 1
    max_length = state.limits.attribute_value_length
    out: dict[str, AttributeValue] = {}
    dropped = 0
    for key, value in items:
        cleaned = clean_value(value, max_length)
        if cleaned is DROP or len(out) >= limit or type(key) is not str:
            dropped += 1
            continue
        out[key] = cleaned  # type: ignore[assignment]
    return out, dropped


def _safe_str(value: object) -> str:
    try:
        return str(value)
    except Exception:
        return f"<unprintable {type(value).__name__}>"
