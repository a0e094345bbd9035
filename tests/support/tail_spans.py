"""Spans as tail sampling sees them, without the tracer: its rules are pure functions of these fields."""

from __future__ import annotations

from typing import Any

from nexs_serverless.model import StatusCode

__all__ = ["FakeSpan"]


class FakeSpan:
    """The fields tail sampling reads, without the tracer (rules are pure functions of these)."""

    def __init__(
        self,
        trace_id: int,
        span_id: int,
        parent: int = 0,
        *,
        attributes: dict[str, Any] | None = None,
        status: int = StatusCode.UNSET,
        duration_ms: float = 10.0,
        remote: bool = False,
    ) -> None:
        self.trace_id = trace_id
        self.span_id = span_id
        self.parent_span_id = parent
        self.parent_is_remote = remote
        self.attributes: dict[str, Any] = attributes if attributes is not None else {}
        self.status_code = status
        self.start_ns = 1_000_000_000
        self.end_ns = self.start_ns + int(duration_ms * 1e6)
