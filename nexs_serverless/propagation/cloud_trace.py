"""Google Cloud's ``X-Cloud-Trace-Context`` header (``OTEL_PROPAGATORS=cloud_trace`` or ``gcp``).

Format (Cloud Trace documentation, "Trace context"):
``TRACE_ID/SPAN_ID;o=OPTIONS`` with a 32-hex trace id and the span id as an
unsigned 64-bit *decimal* number. ``OPTIONS`` is a bit mask whose lowest bit
means "trace this request" (as Google's OpenCensus libraries read it): ``o=1``
is sampled, ``o=0`` or no option is not. Ids that are zero or out of range give
no context.
"""

from __future__ import annotations

import re

from ..model import SpanContext
from ._carrier import get

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..span import Span
    from .incoming import Incoming

__all__ = ["CloudTracePropagator", "format_header", "parse_header"]

_HEADER = re.compile(r"([0-9a-fA-F]{32})/([0-9]{1,20})(?:;o=([0-9]+))?")
_MAX_SPAN_ID = (1 << 64) - 1


def parse_header(header: str | None) -> SpanContext | None:
    """The context in an ``X-Cloud-Trace-Context`` value, or None."""
    if not header:
        return None
    match = _HEADER.fullmatch(header.strip(" \t"))
    if match is None:
        return None
    trace_id = int(match.group(1), 16)
    span_id = int(match.group(2))
    if not trace_id or not 0 < span_id <= _MAX_SPAN_ID:
        return None
    options = match.group(3)
    # The lowest bit of a decimal number is its last digit's; no int() of an unbounded digit run.
    flags = 1 if options and options[-1] in "13579" else 0
    return SpanContext(trace_id, span_id, flags, (), True)


def format_header(trace_id: int, span_id: int, flags: int) -> str:
    """The ``X-Cloud-Trace-Context`` value for a context."""
    return f"{trace_id:032x}/{span_id};o={flags & 1}"


class CloudTracePropagator:
    """``X-Cloud-Trace-Context``."""

    __slots__ = ()
    name = "cloud_trace"
    fields = ("X-Cloud-Trace-Context",)

    def extract(self, carrier: object, incoming: Incoming) -> None:
        """Set `incoming.context` from the carrier's header, when valid."""
        incoming.context = self.extract_context(carrier, incoming.context)

    def extract_context(self, carrier: object, previous: SpanContext | None) -> SpanContext | None:
        """The carrier's context when valid, else `previous` (what formats before this one found)."""
        context = parse_header(get(carrier, "x-cloud-trace-context"))
        return previous if context is None else context

    def inject(self, carrier: object, context: SpanContext | Span, ids: tuple[str, str] | None) -> None:
        """Write ``X-Cloud-Trace-Context``."""
        if ids is not None:
            carrier["X-Cloud-Trace-Context"] = f"{ids[0]}/{context.span_id};o={context.trace_flags & 1}"  # type: ignore[index]
