"""`Tracer`: starts spans, and `tracer.capture` for one span per function call.

`Tracer.span` is the per-span hot path, budgeted at 2 us for start and end
with three attributes (README, "Speed"): it fills the pooled record inline,
takes ids from a C generator, and checks the attributes in one compiled pass
(`_speedups.c`; without it, one identity test per attribute type); everything
unusual falls through to the slower, safe methods. Arguments of another type
(a name that is not a str, a float start, a kind by name, attributes that are
not a dict, foreign links or parents) are converted on branches the common case
never takes, by `_span_coerce`: stored as given, they made the encoding of the
whole batch fail or raised at the caller.
"""

from __future__ import annotations

import time

from . import _stats as stats
from .model import Link, SpanContext, SpanKind
from .runtime import runtime
from .span import _MAX_NS, NonRecordingSpan, Span, _safe_str

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping
    from typing import ParamSpec, TypeVar, overload

    P = ParamSpec("P")
    R = TypeVar("R")

__all__ = ["Tracer", "name_of", "tracer"]

_time_ns = time.time_ns


def _load_context() -> Span | SpanContext | None:
    """First call only: load the context variables, bind `_get_current` and read it.

    See `span._bind_context` for why not at import.
    """
    global _get_current
    from .context import _current

    _get_current = _current.get
    return _current.get()


# The current span or remote context; rebinds itself to the context variable's `get` on first use.
_get_current: Callable[[], Span | SpanContext | None] = _load_context


def _load_wrap(fn: Callable[P, R]) -> Callable[P, R]:
    """First call only: bind `_wrap` to `context.wrap` (an import per call costs 2-3 us)."""
    global _wrap
    from .context import wrap

    _wrap = wrap
    return wrap(fn)


_wrap: Callable[[Callable[P, R]], Callable[P, R]] = _load_wrap


def _no_copy(dest: dict[str, object], src: Mapping[str, object]) -> bool:
    """The pure-Python stand-in for `_speedups.copy_plain`: copies nothing, so the loop checks."""
    return False


# Spans with attributes checked by the Python loop before the compiled check loads.
COMPILED_CHECK_AFTER = 256
_python_checks = 0


def _load_copy_plain(dest: dict[str, object], src: Mapping[str, object]) -> bool:
    """For the first `COMPILED_CHECK_AFTER` spans: leave the check to the loop; then bind the compiled one.

    Why not at import, nor at the first span: loading the shared library costs
    0.3-0.4 ms (a search of the package's folder and a `dlopen`) and saves
    about 0.4 us a span, so it pays for itself after about a thousand spans.
    Waiting for 256 keeps it out of a cold start's first invocation (a handful
    of spans) and still binds it early in a busy process's life. The count is
    approximate under threads, which is all it needs to be. Without the module
    (no compiler at install, another interpreter) `_no_copy` takes its place.
    """
    global _copy_plain, _python_checks
    _python_checks += 1
    if _python_checks <= COMPILED_CHECK_AFTER:
        return False
    try:
        from ._speedups import copy_plain
    except (ImportError, OSError):  # not built (no compiler, another interpreter), or unloadable here
        copy_plain = _no_copy
    _copy_plain = copy_plain
    return copy_plain(dest, src)


# `_copy_plain(attrs, attributes)`: copy when every item is a plain attribute (one C pass over
# the dict, `_speedups.c`); False leaves `attrs` alone and the span's loop checks item by item.
_copy_plain: Callable[[dict[str, object], Mapping[str, object]], bool] = _load_copy_plain


def _load_ids(bits: int) -> int:
    """First call only: load the id generator (a shared library) and draw from it."""
    global _getrandbits
    from . import _ids

    _getrandbits = _ids.random_bits
    return _ids.random_bits(bits)


# Draws `k` random bits; rebinds itself to the C generator on first use. A zero
# draw (probability 2**-64 for span ids) falls back to `_ids`' retrying helpers.
_getrandbits: Callable[[int], int] = _load_ids


def _new_trace_id() -> int:
    from ._ids import new_trace_id

    return new_trace_id()


def _new_span_id() -> int:
    from ._ids import new_span_id

    return new_span_id()


_INTERNAL = SpanKind.INTERNAL
_KINDS = frozenset(range(len(SpanKind.NAMES)))


_ROOT = object()  # `parent=` sentinel: start a new trace whatever is current


class _DisabledSpan(NonRecordingSpan):
    """The shared span handed out while the kill switch is on: no context switch at all."""

    __slots__ = ()

    def __enter__(self) -> Span:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def end(self, end_ns: int | None = None) -> None:
        """Ignored."""


def _disabled_span() -> _DisabledSpan:
    span = _DisabledSpan()
    span.name = ""
    span.trace_id = span.span_id = span.parent_span_id = span.trace_flags = 0
    span.trace_state = ()
    span.parent_is_remote = False
    span.kind = _INTERNAL
    span.start_ns = 0
    return span


_DISABLED = _disabled_span()


class Tracer:
    """Creates spans in the process-wide buffer. Use the module's `tracer` instance."""

    __slots__ = ()

    ROOT = _ROOT

    def span(  # not keyword-only: see the note in the docstring
        self,
        name: str,
        kind: int = _INTERNAL,
        attributes: Mapping[str, object] | None = None,
        links: Iterable[Link] | None = None,
        start_ns: int | None = None,
        parent: Span | SpanContext | object | None = None,
    ) -> Span:
        """Start a span; ``with`` makes it current and ends it.

        Args:
            name: the operation's name (low cardinality: no ids in it).
            kind: OpenTelemetry span kind.
            attributes: initial attributes (same rules as `Span.set_attribute`).
            links: links to other spans' contexts.
            start_ns: start time in ns since the epoch (default: now).
            parent: a span or remote context to parent under instead of the
                current span; `Tracer.ROOT` starts a new trace.

        Returns:
            The started span. Without ``with``, end it with `Span.end()`.

        Pass the arguments after `name` by keyword. They are not declared
        keyword-only because CPython 3.11 fills each omitted keyword-only
        argument from a dict lookup in `__kwdefaults__` on every call: about
        3% of a span (A/B measured), where positional defaults cost nothing.
        """
        rt = runtime
        if rt.disabled:
            return _DISABLED
        if parent is None:
            parent = _get_current()
        elif parent is _ROOT:
            parent = None
        elif type(parent) is not SpanContext and not isinstance(parent, Span):
            from ._span_coerce import parent_of

            parent = parent_of(parent)
        if parent is None:
            trace_id = _getrandbits(128) or _new_trace_id()
            sampler = rt.sampler
            if sampler is not None and not sampler.should_sample(trace_id, None):
                return _unsampled(name, kind, trace_id, 0, 0, (), False)
            parent_id = 0
            flags = 1
            trace_state: tuple[tuple[str, str], ...] = ()
            remote = False
        else:
            trace_id = parent.trace_id
            parent_id = parent.span_id
            trace_state = parent.trace_state
            if type(parent) is SpanContext:  # a context, not one of our spans
                if not (trace_id and parent_id):  # an invalid context parents nothing: a new trace
                    return self.span(name, kind, attributes, links, start_ns, _ROOT)
                # Only an extracted context is remote and goes to the sampler; a local one (another
                # SDK's span, through the bridge) is followed as our own spans are.
                remote = parent.is_remote
                if remote and rt.sampler is not None:
                    flags = 1 if rt.sampler.should_sample(trace_id, parent) else 0
                else:
                    flags = parent.trace_flags
            else:
                remote = False
                flags = parent.trace_flags
            if not flags & 1:
                return _unsampled(name, kind, trace_id, parent_id, flags, trace_state, remote)
        buffered = rt.buffered
        if len(buffered) >= rt.max_buffered:  # counted as dropped, not as unsampled
            return _unsampled(
                name, kind, trace_id, parent_id, flags, trace_state, remote, "spans_dropped_buffer_full"
            )
        pool = rt.pool  # SpanPool.acquire, inlined
        records = pool.records
        if records:
            span = records.pop()
        else:
            pool.misses += 1
            span = Span()
        span.name = name if type(name) is str else _safe_str(name)
        span.trace_id = trace_id
        span.span_id = _getrandbits(64) or _new_span_id()
        span.parent_span_id = parent_id
        span.trace_flags = flags
        span.trace_state = trace_state
        span.parent_is_remote = remote
        if type(kind) is not int or kind not in _KINDS:  # a float 2.0 is in the set
            from ._span_coerce import kind_of

            kind = kind_of(kind)
        span.kind = kind
        if start_ns is None:
            start_ns = _time_ns()
        elif type(start_ns) is not int or not 0 < start_ns < _MAX_NS:
            from ._span_coerce import time_ns

            start_ns = time_ns(start_ns)
        span.start_ns = start_ns
        if attributes:
            attrs = span.attributes
            if type(attributes) is dict and len(attributes) <= rt.plain_attribute_limit:
                if not _copy_plain(attrs, attributes):  # type: ignore[arg-type]
                    # Identity tests: a set lookup would hash the class, which runs a metaclass's code.
                    for key, value in attributes.items():
                        t = type(value)
                        if (t is str or t is int or t is float or t is bool) and type(key) is str and key:
                            attrs[key] = value
                        else:
                            span.set_attribute(key, value)
            else:
                span.set_attributes(attributes)
        if links:
            _add_links(span, links)
        buffered.append(span)
        return span

    start_span = span

    def current_span(self) -> Span | None:
        """The innermost active span, or None."""
        value = _get_current()
        if value is None or not hasattr(value, "end"):  # a remote parent is no span
            return None
        return value  # type: ignore[return-value]

    def wrap(self, fn: Callable[P, R]) -> Callable[P, R]:
        """Bind `fn` to the current context (for `ThreadPoolExecutor.submit` and threads)."""
        return _wrap(fn)

    if TYPE_CHECKING:

        @overload
        def capture(self, fn: Callable[P, R], /) -> Callable[P, R]: ...

        @overload
        def capture(
            self,
            fn: None = None,
            /,
            *,
            name: str | None = None,
            kind: int = _INTERNAL,
            attributes: Mapping[str, object] | None = None,
        ) -> Callable[[Callable[P, R]], Callable[P, R]]: ...

    def capture(
        self,
        fn: Callable[P, R] | None = None,
        /,
        *,
        name: str | None = None,
        kind: int = _INTERNAL,
        attributes: Mapping[str, object] | None = None,
    ) -> Callable[P, R] | Callable[[Callable[P, R]], Callable[P, R]]:
        """Decorator: one span per call, named after the function.

        Works bare (``@tracer.capture``) or with options
        (``@tracer.capture(name="price")``), on plain and ``async def``
        functions and on (async) generators, whose span covers the iteration:
        the generator runs in a context of its own, where the span is current
        (and a span it entered before a ``yield`` still is after it), not in
        the caller's code while it is paused, and ``send``/``throw``
        (``asend``/``athrow``) reach the generator. Also on methods, static and
        class methods (above ``@staticmethod``), `functools.partial` objects
        and callable objects. Exceptions are recorded and re-raised unchanged.
        """
        from ._capture import wrap_calls  # the wrappers load with the first decorated function

        if fn is None:

            def decorate(f: Callable[P, R]) -> Callable[P, R]:
                return wrap_calls(self, f, name, kind, attributes)

            return decorate
        return wrap_calls(self, fn, name, kind, attributes)


def name_of(fn: object) -> str:
    """A callable's name for a span: a callable object or a `functools.partial` has no ``__qualname__``."""
    qualname = getattr(fn, "__qualname__", None) or getattr(getattr(fn, "func", None), "__qualname__", None)
    return str(qualname or type(fn).__qualname__)


def _add_links(span: Span, links: Iterable[object]) -> None:
    """Our `Link`s and bare contexts; other links and collections are read by `_span_coerce`."""
    if type(links) is not list and type(links) is not tuple:
        from ._span_coerce import links_of

        links = links_of(links)
    for link in links:
        if type(link) is Link:
            span.add_link(link.context, link.attributes)
        elif type(link) is SpanContext:
            span.add_link(link)
        else:
            from ._span_coerce import add_link

            add_link(span, link)


def _unsampled(
    name: str,
    kind: int,
    trace_id: int,
    parent_id: int,
    flags: int,
    trace_state: tuple[tuple[str, str], ...],
    remote: bool,
    counter: str = "spans_unsampled",
) -> NonRecordingSpan:
    """A context-only span: children and outgoing calls still carry the trace; `counter` says why."""
    span = NonRecordingSpan()
    span.name = name
    span.trace_id = trace_id
    span.span_id = _getrandbits(64) or _new_span_id()
    span.parent_span_id = parent_id
    span.trace_flags = flags
    span.trace_state = trace_state
    span.parent_is_remote = remote
    span.kind = kind
    span.start_ns = 0
    stats.incr(counter)
    return span


tracer = Tracer()
