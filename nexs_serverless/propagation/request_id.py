"""Azure's legacy ``Request-Id`` header (``OTEL_PROPAGATORS=request_id``).

Application Insights SDKs older than W3C support send a hierarchical id,
``|<root>.<child>.<grandchild>.`` (".NET HierarchicalRequestId" format), and
newer ones send ``|<32 hex trace id>.<16 hex span id>.`` next to
``traceparent``. Read only when the carrier has no ``traceparent`` at all,
as Application Insights does. The root becomes the trace id when it is 32 hex
digits, the last segment the parent span id when it is 16; otherwise the id
is derived from a hash of the root (and of the whole header for the span), so
every service that sees the same legacy root still shares one trace. The
header carries no sampling decision: the context reads as sampled.
"""

from __future__ import annotations

import re

from ..model import SpanContext
from ._carrier import get

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..span import Span
    from .incoming import Incoming

__all__ = ["RequestIdPropagator", "format_header", "parse_header"]

MAX_LENGTH = 1024
_VISIBLE = re.compile(r"[\x21-\x7e]+")
_HEX32 = re.compile(r"[0-9a-fA-F]{32}")
_HEX16 = re.compile(r"[0-9a-fA-F]{16}")


def _hashed(text: str, size: int) -> int:
    from hashlib import blake2b

    return int.from_bytes(blake2b(text.encode("ascii"), digest_size=size).digest(), "big") or 1


def parse_header(header: str | None) -> SpanContext | None:
    """The context in a ``Request-Id`` value, or None."""
    if not header:
        return None
    header = header.strip(" \t")
    if len(header) > MAX_LENGTH or _VISIBLE.fullmatch(header) is None:
        return None
    body = header[1:] if header.startswith("|") else header
    root, _, rest = body.partition(".")
    if not root:
        return None
    trace_id = int(root, 16) if _HEX32.fullmatch(root) else 0
    if not trace_id:
        trace_id = _hashed(root, 16)
    segments = [segment for segment in rest.split(".") if segment]
    last = segments[-1] if segments else ""
    span_id = int(last, 16) if _HEX16.fullmatch(last) else 0
    if not span_id:
        span_id = _hashed(header, 8)
    return SpanContext(trace_id, span_id, 1, (), True)


def format_header(trace_id: int, span_id: int) -> str:
    """The W3C-compatible ``Request-Id`` for a context."""
    return f"|{trace_id:032x}.{span_id:016x}."


class RequestIdPropagator:
    """``Request-Id``, read only when no ``traceparent`` is present."""

    __slots__ = ()
    name = "request_id"
    fields = ("Request-Id",)

    def extract(self, carrier: object, incoming: Incoming) -> None:
        """Set `incoming.context` from ``Request-Id`` unless the carrier has a ``traceparent``."""
        incoming.context = self.extract_context(carrier, incoming.context)

    def extract_context(self, carrier: object, previous: SpanContext | None) -> SpanContext | None:
        """The carrier's context when valid, else `previous` (what formats before this one found)."""
        if get(carrier, "traceparent") is not None:
            return previous
        context = parse_header(get(carrier, "request-id"))
        return previous if context is None else context

    def inject(self, carrier: object, context: SpanContext | Span, ids: tuple[str, str] | None) -> None:
        """Write ``Request-Id: |trace.span.``."""
        if ids is not None:
            carrier["Request-Id"] = f"|{ids[0]}.{ids[1]}."  # type: ignore[index]
