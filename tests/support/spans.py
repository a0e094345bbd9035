"""Build `FinishedSpan`s directly, for exporter tests that need exact field values."""

from __future__ import annotations

from typing import Any

from nexs_serverless.finished import FinishedSpan
from nexs_serverless.model import InstrumentationScope, Resource, SpanKind, StatusCode

__all__ = ["make_span", "make_spans"]

_RESOURCE = Resource({"service.name": "svc"})
_SCOPE = InstrumentationScope("nexs_serverless", "0.1.0")


def make_span(**fields: Any) -> FinishedSpan:
    """A `FinishedSpan` with sensible defaults; any field can be overridden by name."""
    span = FinishedSpan.__new__(FinishedSpan)
    values: dict[str, Any] = {
        "name": "op",
        "trace_id": 0x0AF7651916CD43DD8448EB211C80319C,
        "span_id": 0xB7AD6B7169203331,
        "parent_span_id": 0,
        "trace_flags": 1,
        "trace_state": (),
        "parent_is_remote": False,
        "kind": SpanKind.INTERNAL,
        "start_ns": 1_700_000_000_000_000_000,
        "end_ns": 1_700_000_000_123_456_789,
        "attributes": {},
        "events": (),
        "links": (),
        "status_code": StatusCode.UNSET,
        "status_description": None,
        "dropped_attributes": 0,
        "dropped_events": 0,
        "dropped_links": 0,
        "force_ended": False,
        "resource": _RESOURCE,
        "instrumentation_scope": _SCOPE,
    }
    values.update(fields)
    for name, value in values.items():
        setattr(span, name, value)
    return span


def make_spans(count: int, prefix: str = "span", **fields: Any) -> list[FinishedSpan]:
    """`count` spans named ``<prefix>-<i>`` with span ids 1..count."""
    return [make_span(name=f"{prefix}-{i}", span_id=i + 1, **fields) for i in range(count)]
