"""B3 (Zipkin) propagation, single header (``b3``) and multiple headers (``b3multi``).

Per the openzipkin/b3-propagation specification and OpenTelemetry's B3
requirements: ids are lower-hex, the trace id 16 or 32 characters (64-bit ids
are left-padded), the span id 16. Sampled is ``1`` or ``d`` (debug) in the
single header, ``1``/``true`` (or ``d``) or ``X-B3-Flags: 1`` in the multi
form; ``0``, ``false`` and any other value read as not sampled. No sampling
state (a ``b3`` of only ``trace-span``, no or an empty ``X-B3-Sampled``) is
the specification's "Defer": the receiver decides. We take the decision the
configured sampler makes for a new trace with that id, at extraction, as for
X-Ray's ``Sampled=?`` (`incoming.receiver_decides`): the trace continues under
its parent instead of being dropped by a parent-based sampler, and outgoing
headers carry our decision. Debug is not kept as such (the context has only
the sampled flag): it goes on as ``1``, not ``d`` or ``X-B3-Flags: 1``. The
parent span id is accepted and ignored, and never written (OpenTelemetry:
"MUST NOT" inject it). A single header holding only a sampling state carries
no context. Extraction reads the single header first, then the multi headers.
"""

from __future__ import annotations

import re

from ..model import SpanContext
from ._carrier import get
from .incoming import receiver_decides

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..span import Span
    from .incoming import Incoming

__all__ = ["B3MultiPropagator", "B3SinglePropagator", "parse_multi", "parse_single"]

_TRACE = re.compile(r"[0-9a-f]{16}|[0-9a-f]{32}")
_SPAN = re.compile(r"[0-9a-f]{16}")


def _context(trace_hex: str | None, span_hex: str | None, sampled: int) -> SpanContext | None:
    """The context for valid ids; `sampled` is 1, 0, or -1 for "Defer" (the sampler decides)."""
    if not trace_hex or not span_hex:
        return None
    if _TRACE.fullmatch(trace_hex) is None or _SPAN.fullmatch(span_hex) is None:
        return None
    trace_id = int(trace_hex, 16)
    span_id = int(span_hex, 16)
    if not trace_id or not span_id:
        return None
    if sampled < 0:
        sampled = receiver_decides(trace_id)
    return SpanContext(trace_id, span_id, sampled, (), True)


def parse_single(header: str | None) -> SpanContext | None:
    """The context in a ``b3`` header (``trace-span[-sampled[-parent]]``), or None.

    Without the sampled field the configured sampler decides (B3's "Defer").
    """
    if not header:
        return None
    parts = header.strip(" \t").split("-")
    if len(parts) < 2 or len(parts) > 4:
        return None
    sampled = -1  # Defer
    if len(parts) >= 3:
        if parts[2] not in ("0", "1", "d"):
            return None
        sampled = 0 if parts[2] == "0" else 1
    if len(parts) == 4 and _SPAN.fullmatch(parts[3]) is None:
        return None
    return _context(parts[0], parts[1], sampled)


def parse_multi(carrier: object) -> SpanContext | None:
    """The context in the ``X-B3-*`` headers, or None.

    No (or an empty) ``X-B3-Sampled`` without debug is B3's "Defer": the configured sampler decides.
    """
    state = (get(carrier, "x-b3-sampled") or "").strip().lower()
    if (get(carrier, "x-b3-flags") or "").strip() == "1" or state in ("1", "true", "d"):
        sampled = 1
    else:
        sampled = 0 if state else -1
    return _context(
        (get(carrier, "x-b3-traceid") or "").strip(),
        (get(carrier, "x-b3-spanid") or "").strip(),
        sampled,
    )


class B3SinglePropagator:
    """The single ``b3`` header (``OTEL_PROPAGATORS=b3``); extraction also reads the multi form."""

    __slots__ = ()
    name = "b3"
    fields: tuple[str, ...] = ("b3",)

    def extract(self, carrier: object, incoming: Incoming) -> None:
        """Set `incoming.context` from ``b3``, else from ``X-B3-*``."""
        incoming.context = self.extract_context(carrier, incoming.context)

    def extract_context(self, carrier: object, previous: SpanContext | None) -> SpanContext | None:
        """The carrier's context when valid, else `previous` (what formats before this one found)."""
        context = parse_single(get(carrier, "b3")) or parse_multi(carrier)
        return previous if context is None else context

    def inject(self, carrier: object, context: SpanContext | Span, ids: tuple[str, str] | None) -> None:
        """Write ``b3: trace-span-sampled``."""
        if ids is not None:
            carrier["b3"] = f"{ids[0]}-{ids[1]}-{context.trace_flags & 1}"  # type: ignore[index]


class B3MultiPropagator(B3SinglePropagator):
    """The ``X-B3-TraceId``/``X-B3-SpanId``/``X-B3-Sampled`` headers (``OTEL_PROPAGATORS=b3multi``)."""

    __slots__ = ()
    name = "b3multi"
    fields: tuple[str, ...] = ("X-B3-TraceId", "X-B3-SpanId", "X-B3-Sampled")

    def inject(self, carrier: object, context: SpanContext | Span, ids: tuple[str, str] | None) -> None:
        """Write the three ``X-B3-*`` headers."""
        if ids is not None:
            carrier["X-B3-TraceId"] = ids[0]  # type: ignore[index]
            carrier["X-B3-SpanId"] = ids[1]  # type: ignore[index]
            carrier["X-B3-Sampled"] = str(context.trace_flags & 1)  # type: ignore[index]
