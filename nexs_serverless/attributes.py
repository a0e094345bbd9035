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

    The common values (a str, bool, int or float, None, a list or tuple of one of
    those types) are handled here; anything else is converted by `_span_coerce`,
    which never raises and is loaded only then (issue #5: not at a cold start).
    """
    t = type(value)
    if t is str:
        if max_length is not None and len(value) > max_length:  # type: ignore[arg-type]
            return value[:max_length]  # type: ignore[index,no-any-return]
        return value  # type: ignore[return-value]
    if t is int or t is float or t is bool:
        return value  # type: ignore[return-value]
    if value is None:
        stats.incr("attributes_dropped")
        return DROP
    if t is tuple or t is list:
        items: tuple[object, ...] | list[object] = value  # type: ignore[assignment]
        # Types compared by identity: a set of them would hash each class, which runs a metaclass's
        # code (one that raises dropped the whole attribute).
        first: type = type(items[0]) if items else str
        if (first is str or first is bool or first is int or first is float) and all(
            type(item) is first for item in items
        ):
            if max_length is not None and first is str:
                return tuple(item[:max_length] for item in items)  # type: ignore[index]
            return tuple(items)  # type: ignore[return-value]
    from ._span_coerce import attribute_value

    return attribute_value(value, max_length)
