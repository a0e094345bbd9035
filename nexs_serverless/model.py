"""Value types shared by spans, propagators and exporters.

Why hand-written slotted classes instead of dataclasses: `dataclasses` and
`typing` cost 8 to 16 ms to import on a small Lambda, three times the whole
cold-start budget of this package (see README, "Cold start"). These classes
are immutable by convention and by `__setattr__`, hashable, and cheap to build.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

    from .attributes import AttributeValue

__all__ = [
    "Event",
    "InstrumentationScope",
    "Link",
    "Resource",
    "SpanContext",
    "SpanKind",
    "StatusCode",
]

_tuple_new = tuple.__new__
if not TYPE_CHECKING:  # mypy reads SpanContext's fields from its annotations
    try:  # the C accessor `collections.namedtuple` uses
        from _collections import _tuplegetter as _field
    except ImportError:  # pragma: no cover - other interpreters
        from operator import itemgetter

        def _field(index, doc):
            return property(itemgetter(index), doc=doc)


INVALID_TRACE_ID = 0
INVALID_SPAN_ID = 0
SAMPLED = 0x01


class SpanKind:
    """OpenTelemetry's span kinds, with the OpenTelemetry Python API's values.

    Plain int constants rather than an `enum.IntEnum`: creating an enum class
    costs about 0.4 ms at import on a small Lambda, a tenth of our budget.
    """

    __slots__ = ()

    INTERNAL = 0
    SERVER = 1
    CLIENT = 2
    PRODUCER = 3
    CONSUMER = 4

    NAMES: tuple[str, ...] = ("INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")

    @staticmethod
    def name_of(kind: int) -> str:
        """``"SERVER"`` for `SpanKind.SERVER`; ``"UNKNOWN"`` outside the range."""
        return SpanKind.NAMES[kind] if 0 <= kind < len(SpanKind.NAMES) else "UNKNOWN"


class StatusCode:
    """OpenTelemetry's span status codes (the values OTLP uses), as int constants."""

    __slots__ = ()

    UNSET = 0
    OK = 1
    ERROR = 2

    NAMES: tuple[str, ...] = ("UNSET", "OK", "ERROR")

    @staticmethod
    def name_of(code: int) -> str:
        """``"ERROR"`` for `StatusCode.ERROR`."""
        return StatusCode.NAMES[code] if 0 <= code < len(StatusCode.NAMES) else "UNKNOWN"


class _Frozen:
    """Base for immutable slotted values: assignment after `__init__` raises."""

    __slots__ = ()

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def _fields(self) -> tuple[str, ...]:
        fields: tuple[str, ...] = getattr(type(self), "__slots__", ())
        return fields

    def _key(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self._fields())

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, _Frozen)
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields())
        return f"{type(self).__name__}({fields})"


class SpanContext(tuple):  # type: ignore[type-arg]
    """The identity of a span as it crosses process boundaries.

    Attributes:
        trace_id: 128-bit trace id; 0 means invalid.
        span_id: 64-bit span id; 0 means invalid.
        trace_flags: W3C trace flags; bit 0 is "sampled".
        trace_state: W3C tracestate entries as ``(key, value)`` pairs, in order.
        is_remote: True when the context was extracted from a carrier.

    A tuple, as OpenTelemetry's own ``SpanContext`` is: one is built for every
    extracted header (each invocation, each message of a batch), and a tuple
    is built in one C call where a slotted object takes five attribute stores,
    about 0.5 us of the 5 us extract+inject budget (A/B measured). Immutable
    and hashable as a tuple is; it equals a context with the same five fields.
    """

    __slots__ = ()

    if TYPE_CHECKING:  # read-only at run time: the fields are the tuple's items
        trace_id: int
        span_id: int
        trace_flags: int
        trace_state: tuple[tuple[str, str], ...]
        is_remote: bool
    else:
        trace_id = _field(0, "128-bit trace id; 0 means invalid.")
        span_id = _field(1, "64-bit span id; 0 means invalid.")
        trace_flags = _field(2, 'W3C trace flags; bit 0 is "sampled".')
        trace_state = _field(3, "W3C tracestate entries as (key, value) pairs, in order.")
        is_remote = _field(4, "True when the context was extracted from a carrier.")

    def __new__(
        cls,
        trace_id: int,
        span_id: int,
        trace_flags: int = SAMPLED,
        trace_state: tuple[tuple[str, str], ...] = (),
        is_remote: bool = False,
    ) -> SpanContext:
        """A context with these fields (the defaults: sampled, no state, local)."""
        return _tuple_new(cls, (trace_id, span_id, trace_flags, trace_state, is_remote))

    def __getnewargs__(self) -> tuple[object, ...]:
        return tuple(self)

    @property
    def sampled(self) -> bool:
        """Whether the sampled flag is set."""
        return bool(self.trace_flags & SAMPLED)

    @property
    def is_valid(self) -> bool:
        """Whether both ids are non-zero, as the W3C recommendation requires."""
        return self.trace_id != INVALID_TRACE_ID and self.span_id != INVALID_SPAN_ID

    def __repr__(self) -> str:
        return (
            f"SpanContext(trace_id={self[0]!r}, span_id={self[1]!r}, trace_flags={self[2]!r}, "
            f"trace_state={self[3]!r}, is_remote={self[4]!r})"
        )


def remote_context(
    trace_id: int, span_id: int, flags: int, trace_state: tuple[tuple[str, str], ...]
) -> SpanContext:
    """``SpanContext(trace_id, span_id, flags, trace_state, True)`` without the Python-level `__new__`.

    Extraction runs on every invocation and every message of a batch.
    """
    return _tuple_new(SpanContext, (trace_id, span_id, flags, trace_state, True))


class Event(_Frozen):
    """A timestamped annotation on a span (exceptions are events named ``exception``)."""

    __slots__ = ("attributes", "dropped_attributes", "name", "timestamp_ns")

    name: str
    timestamp_ns: int
    attributes: Mapping[str, AttributeValue]
    dropped_attributes: int

    def __init__(
        self,
        name: str,
        timestamp_ns: int,
        attributes: Mapping[str, AttributeValue],
        dropped_attributes: int = 0,
    ) -> None:
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "timestamp_ns", timestamp_ns)
        object.__setattr__(self, "attributes", attributes)
        object.__setattr__(self, "dropped_attributes", dropped_attributes)

    @property
    def timestamp(self) -> int:
        """OpenTelemetry SDK spelling of `timestamp_ns`."""
        return self.timestamp_ns

    def __hash__(self) -> int:
        return hash((self.name, self.timestamp_ns))


class Link(_Frozen):
    """A reference from a span to another span's context (e.g. each SQS message)."""

    __slots__ = ("attributes", "context", "dropped_attributes")

    context: SpanContext
    attributes: Mapping[str, AttributeValue]
    dropped_attributes: int

    def __init__(
        self,
        context: SpanContext,
        attributes: Mapping[str, AttributeValue] | None = None,
        dropped_attributes: int = 0,
    ) -> None:
        object.__setattr__(self, "context", context)
        object.__setattr__(self, "attributes", attributes if attributes is not None else {})
        object.__setattr__(self, "dropped_attributes", dropped_attributes)

    def __hash__(self) -> int:
        return hash(self.context)


class Resource(_Frozen):
    """The entity producing spans: service, cloud and FaaS resource attributes."""

    __slots__ = ("attributes",)

    attributes: Mapping[str, AttributeValue]

    def __init__(self, attributes: Mapping[str, AttributeValue]) -> None:
        object.__setattr__(self, "attributes", dict(attributes))

    def __hash__(self) -> int:
        return hash(tuple(sorted((k, str(v)) for k, v in self.attributes.items())))


class InstrumentationScope(_Frozen):
    """The library that produced the spans (OTLP's InstrumentationScope)."""

    __slots__ = ("name", "version")

    name: str
    version: str

    def __init__(self, name: str, version: str) -> None:
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "version", version)
