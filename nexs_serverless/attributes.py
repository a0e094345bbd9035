"""Attribute values: OpenTelemetry's types, its limits, and what happens to the rest.

OpenTelemetry allows str, bool, int, float and homogeneous sequences of them.
A tracer must never raise at its caller for a bad value, so anything else is
converted (enums to their value, bytes to text, other objects to ``str``) or,
when even that fails, dropped; both are counted in `stats()`.
"""

from __future__ import annotations

from . import _stats as stats

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import TypeAlias

    Primitive: TypeAlias = "str | bool | int | float"
    AttributeValue: TypeAlias = (
        "str | bool | int | float | Sequence[str] | Sequence[bool] | Sequence[int] | Sequence[float]"
    )

__all__ = ["DROP", "SpanLimits", "clean_value"]

_PRIMITIVES = (str, bool, int, float)


class SpanLimits:
    """OpenTelemetry's span limits (``OTEL_SPAN_*`` / ``OTEL_ATTRIBUTE_*`` variables).

    Attributes:
        attribute_count: attributes per span (default 128).
        event_count: events per span (default 128).
        link_count: links per span (default 128).
        attribute_value_length: longest string value; None means unlimited, as in OpenTelemetry.
        event_attribute_count: attributes per event (default 128).
        link_attribute_count: attributes per link (default 128).
    """

    __slots__ = (
        "attribute_count",
        "attribute_value_length",
        "event_attribute_count",
        "event_count",
        "link_attribute_count",
        "link_count",
    )

    def __init__(
        self,
        *,
        attribute_count: int = 128,
        event_count: int = 128,
        link_count: int = 128,
        attribute_value_length: int | None = None,
        event_attribute_count: int = 128,
        link_attribute_count: int = 128,
    ) -> None:
        self.attribute_count = attribute_count
        self.event_count = event_count
        self.link_count = link_count
        self.attribute_value_length = attribute_value_length
        self.event_attribute_count = event_attribute_count
        self.link_attribute_count = link_attribute_count


class _Drop:
    """Sentinel returned by `clean_value` for a value that cannot be kept."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "DROP"


DROP = _Drop()


def clean_value(value: object, max_length: int | None) -> AttributeValue | _Drop:
    """Return `value` as an OpenTelemetry attribute value, or `DROP`.

    The fast path (a str, bool, int or float) is one type check; everything
    else goes through `_convert`, which never raises.
    """
    t = type(value)
    if t is str:
        if max_length is not None and len(value) > max_length:  # type: ignore[arg-type]
            return value[:max_length]  # type: ignore[index,no-any-return]
        return value  # type: ignore[return-value]
    if t is int or t is float or t is bool:
        return value  # type: ignore[return-value]
    return _convert(value, max_length)


def _convert(value: object, max_length: int | None) -> AttributeValue | _Drop:
    try:
        if value is None:
            stats.incr("attributes_dropped")
            return DROP
        if isinstance(value, _PRIMITIVES):  # subclasses: IntEnum, str enums, numpy-free floats
            # An enum member converts to its value: str() of a str enum is "Region.EU".
            plain = getattr(value, "_value_", value)
            for base in (bool, int, float, str):
                if isinstance(value, base):
                    stats.incr("attributes_converted")
                    return clean_value(base(plain), max_length)
        if isinstance(value, (list, tuple)):
            return _convert_sequence(value, max_length)
        if isinstance(value, (bytes, bytearray)):
            stats.incr("attributes_converted")
            return clean_value(bytes(value).decode("utf-8", "replace"), max_length)
        text = str(value)
    except Exception:  # a __str__ that raises must not reach the caller
        stats.incr("attributes_dropped")
        return DROP
    stats.incr("attributes_converted")
    return clean_value(text, max_length)


def _convert_sequence(
    value: list[object] | tuple[object, ...], max_length: int | None
) -> AttributeValue | _Drop:
    # Types compared by identity: a set of them would hash each class, which runs a metaclass's
    # code (one that raises dropped the whole attribute).
    first = type(value[0]) if value else str
    if (first is str or first is bool or first is int or first is float) and all(
        type(item) is first for item in value
    ):
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
