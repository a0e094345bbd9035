"""OTLP attributes read back from protobuf as the Python values they were encoded from."""

from __future__ import annotations

from typing import Any

__all__ = ["attrs"]


def _value(value: Any) -> Any:
    """An ``AnyValue`` as a Python value: arrays as tuples, key-value lists as dicts, unset as None."""
    which = value.WhichOneof("value")
    if which == "array_value":
        return tuple(_value(item) for item in value.array_value.values)
    if which == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, which) if which else None


def attrs(key_values: Any) -> dict[str, Any]:
    """Repeated ``KeyValue``s (a span's, event's, link's or resource's attributes) as a dict."""
    return {kv.key: _value(kv.value) for kv in key_values}
