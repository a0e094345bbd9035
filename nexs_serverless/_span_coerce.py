"""Wrong-typed arguments to the span API, converted; loaded only when one arrives.

Why a module of its own: each of these conversions exists because a value of
another type, stored as given, made the OTLP encoding of the whole batch fail
or raised at the caller (a float time or status code, OpenTelemetry's
``StatusCode``, ``Status``, spans, contexts and links, attributes as a list of
pairs, an enum, bytes or a mixed list as an attribute value, a span kind by
name). They are rare, and a cold start should not load them (issue #5):
`tracing`, `span` and `attributes` keep one type check for the common case and
import this module inside the branch taken when a value is not of the common
type.
"""

from __future__ import annotations

import time

from . import _guard as guard
from . import _stats as stats
from .attributes import DROP, clean_value
from .model import SpanContext, SpanKind
from .span import Span

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

    from .attributes import AttributeValue, _Drop

__all__ = [
    "add_link",
    "as_span_context",
    "attribute_value",
    "items_of",
    "kind_of",
    "links_of",
    "parent_of",
    "status_of",
    "time_ns",
]

_PRIMITIVES = (str, bool, int, float)


def items_of(attributes: object) -> list[tuple[str, object]] | None:
    """The items of a mapping of attributes that is not a dict; None, counted, for a non-mapping.

    A list of pairs raised at the caller's code for a tracer's argument; OpenTelemetry's types
    say mapping. Keys are returned as they are: every caller checks them.
    """
    get_items = getattr(attributes, "items", None)
    if get_items is not None:
        try:
            return list(get_items())
        except Exception:  # noqa: S110 - an odd mapping: counted below as a dropped one
            pass
    stats.incr("attributes_dropped")
    return None


def time_ns(value: object) -> int:
    """A time in ns since the epoch given as something else than a positive int: a float, or now.

    Stored as given, a float time made the OTLP encoding of the whole batch fail.
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < 2**63:
        return int(value)
    return time.time_ns()


def status_of(code: object, description: object) -> tuple[int, object]:
    """A status given as something else than our int: OpenTelemetry's ``Status`` or ``StatusCode``.

    Returns (0, ...) for anything unrecognised (a bool, a float, a name), which `set_status` ignores.
    """
    status_code = getattr(code, "status_code", None)
    if status_code is not None:  # opentelemetry.trace.Status(code, description)
        if description is None:
            description = getattr(code, "description", None)
        code = status_code
    value = getattr(code, "value", code)  # opentelemetry.trace.StatusCode: its values are ours
    if isinstance(value, int) and not isinstance(value, bool):
        return int(value), description
    return 0, description


def kind_of(kind: object) -> int:
    """A span kind given as something else than its int: OpenTelemetry's `SpanKind`, a name.

    Stored as given, ``kind="client"`` broke every later use of the span (the
    console's tree, the exporters' encodings), and ``kind=2.0`` the OTLP
    encoding of the whole batch. Anything unrecognised (a float among them, as
    `status_of` ignores a float code) is INTERNAL, reported once.
    """
    value = getattr(kind, "value", kind)  # opentelemetry.trace.SpanKind: its value is ours
    if isinstance(value, str):
        name = value.rpartition(".")[2].upper()  # "client", "SpanKind.CLIENT"
        if name in SpanKind.NAMES:
            return SpanKind.NAMES.index(name)
    elif isinstance(value, int) and 0 <= value < len(SpanKind.NAMES):  # a bool, an IntEnum
        return int(value)
    guard.warn_once(
        "span_kind",
        "nexs_serverless: span kind %r is not one of SpanKind's (INTERNAL, SERVER, CLIENT, PRODUCER, "
        "CONSUMER); recorded as INTERNAL",
        kind,
    )
    return SpanKind.INTERNAL


def parent_of(parent: object) -> SpanContext | None:
    """An explicit parent that is not ours (OpenTelemetry's span or context, a `FinishedSpan`), as a context.

    None (a new trace, reported once) when it is none of these. Taken as it was, its
    fields (OpenTelemetry's trace state object) were copied onto the child and made the
    encoding of the whole batch fail.
    """
    context = as_span_context(parent)
    if context is None:
        guard.warn_once(
            "span_parent",
            "nexs_serverless: parent %r is not a span or SpanContext; a new trace is started",
            parent,
        )
    return context


def links_of(links: object) -> list[object]:
    """``links=`` given as something else than a list or tuple: a generator, a set, one link alone.

    A context on its own (ours and OpenTelemetry's are tuples) is one link, not its fields; what
    is not a collection is returned as one link, which `Span.add_link` drops and counts (iterating
    it raised at the caller).
    """
    if hasattr(links, "trace_id"):
        return [links]
    try:
        found: list[object] = list(links)  # type: ignore[call-overload]
    except Exception:
        return [links]
    return found


def add_link(span: Span, link: object) -> None:
    """Add a link that is neither our `Link` nor a `SpanContext`: OpenTelemetry's ``Link``, a span, junk.

    A span (ours, a `FinishedSpan`, OpenTelemetry's) is its context alone: its attributes describe
    the span, not the link (they were copied onto the link). `Span.add_link` converts the context,
    or drops and counts it.
    """
    context: object = link
    attributes: Mapping[str, object] | None = None
    if not (hasattr(link, "get_span_context") or hasattr(link, "parent_span_id")):
        context = getattr(link, "context", link)  # opentelemetry.trace.Link
        if context is not link:
            attributes = getattr(link, "attributes", None)
    span.add_link(context, attributes)  # type: ignore[arg-type]


def as_span_context(value: object) -> SpanContext | None:
    """Our `SpanContext` for a span of ours or a span or context of OpenTelemetry's; None otherwise.

    Links and explicit parents accept these; stored as they were, another type (OpenTelemetry's
    ``SpanContext``, whose trace state is not our tuple) made the encoding of the batch fail.
    """
    if type(value) is SpanContext:
        return value
    get_context = getattr(value, "get_span_context", None)  # an OpenTelemetry span
    if get_context is not None:
        try:
            value = get_context()
        except Exception:
            return None
    elif isinstance(value, Span) or hasattr(value, "parent_span_id"):  # ours, or a FinishedSpan
        value = getattr(value, "context", None)
        if type(value) is SpanContext:
            return value
    try:
        trace_id = getattr(value, "trace_id", None)
        span_id = getattr(value, "span_id", None)
        if type(trace_id) is not int or type(span_id) is not int:
            return None
        state_items = getattr(getattr(value, "trace_state", None), "items", None)
        trace_state = tuple((str(k), str(v)) for k, v in state_items()) if state_items is not None else ()
        return SpanContext(
            trace_id,
            span_id,
            int(getattr(value, "trace_flags", 1)),
            trace_state,
            bool(getattr(value, "is_remote", False)),
        )
    except Exception:
        return None


def attribute_value(value: object, max_length: int | None) -> AttributeValue | _Drop:
    """`value` (not None, a primitive or a list of one primitive type) as an attribute value, or `DROP`.

    Enums become their value (str() of a str enum is "Region.EU"), bytes text, other objects
    their ``str``; a ``__str__`` that raises drops the value rather than reach the caller.
    """
    try:
        if isinstance(value, _PRIMITIVES):  # subclasses: IntEnum, str enums, numpy-free floats
            plain = getattr(value, "_value_", value)
            for base in (bool, int, float, str):
                if isinstance(value, base):
                    stats.incr("attributes_converted")
                    return clean_value(base(plain), max_length)
        if isinstance(value, (list, tuple)):
            return _sequence(value, max_length)
        if isinstance(value, (bytes, bytearray)):
            stats.incr("attributes_converted")
            return clean_value(bytes(value).decode("utf-8", "replace"), max_length)
        text = str(value)
    except Exception:  # a __str__ that raises must not reach the caller
        stats.incr("attributes_dropped")
        return DROP
    stats.incr("attributes_converted")
    return clean_value(text, max_length)


def _sequence(value: list[object] | tuple[object, ...], max_length: int | None) -> AttributeValue | _Drop:
    # Types compared by identity: a set of them would hash each class, which runs a metaclass's
    # code (one that raises dropped the whole attribute).
    first = type(value[0]) if value else str
    if (first is str or first is bool or first is int or first is float) and all(
        type(item) is first for item in value
    ):  # a subclass of list or tuple holding one primitive type
        if max_length is not None and first is str:
            return tuple(item[:max_length] for item in value)  # type: ignore[index]
        return tuple(value)  # type: ignore[return-value]
    if all(type(item) is int or type(item) is float for item in value):
        stats.incr("attributes_converted")
        return tuple(float(item) for item in value)  # type: ignore[arg-type]
    stats.incr("attributes_converted")
    cleaned = [clean_value(item, max_length) for item in value]
    kind = type(cleaned[0])
    if (kind is str or kind is bool or kind is int or kind is float) and all(
        type(item) is kind for item in cleaned
    ):
        # One type once converted (a list of IntEnum members, of bytes): kept with that type,
        # as the same value alone would be, rather than as text.
        return tuple(cleaned)  # type: ignore[return-value]
    # Mixed or non-primitive members: keep the information as text rather than lose it, each
    # item within the length limit (a nested sequence's text was not cut).
    out: list[str] = []
    for item, clean in zip(value, cleaned, strict=True):
        text = clean if type(clean) is str else str(item)
        out.append(text if max_length is None or len(text) <= max_length else text[:max_length])
    return tuple(out)
