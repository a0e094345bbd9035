"""W3C Trace Context: the ``traceparent`` and ``tracestate`` headers.

Follows the W3C Recommendation "Trace Context" (Level 1, with Level 2's
``random`` flag kept):

- ``traceparent`` is ``version-traceid-parentid-flags`` in lower-case hex
  (section 3.2). Version ``ff`` is invalid; version ``00`` must be exactly 55
  characters; a higher version is parsed as ``00`` when its first four fields
  have the ``00`` shape and the next character, if any, is ``-``, keeping only
  the sampled flag (section 3.2.4 / 4.3). All-zero trace or parent ids are
  invalid. Any invalid value means "no context": a new trace starts.
- ``tracestate`` is read only with a valid ``traceparent``; several headers
  are joined with commas. It is dropped as a whole (the ``traceparent`` is
  kept) when a member breaks the key/value grammar (section 3.3.1), a key
  repeats, or there are more than 32 members (section 3.3.1.1).
"""

from __future__ import annotations

import re

from ..model import SpanContext
from ._carrier import Headers, _last_trace, get, new_context

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..span import Span
    from .incoming import Incoming

__all__ = [
    "TraceContextPropagator",
    "format_traceparent",
    "format_tracestate",
    "parse_traceparent",
    "parse_tracestate",
]

MAX_MEMBERS = 32
_OWS = " \t"
# The common case; its groups cut the fields in C, cheaper than three slices in Python.
_VERSION_00 = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?", re.DOTALL)
_KEY_CHARS = r"[a-z0-9_\-*/]"
_MEMBER = re.compile(
    rf"([a-z]{_KEY_CHARS}{{0,255}}|[a-z0-9]{_KEY_CHARS}{{0,240}}@[a-z]{_KEY_CHARS}{{0,13}})"
    r"=([\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e])"
)
_tuple_new = tuple.__new__  # `new_context`, inlined on the common path
_KNOWN_FLAGS = 0x03  # sampled (Level 1) and random (Level 2); other bits are zeroed


def parse_traceparent(value: str | None, trace_state: tuple[tuple[str, str], ...] = ()) -> SpanContext | None:
    """The remote context in a ``traceparent`` value (with `trace_state`), or None when it is not valid."""
    if not value:
        return None
    common = _VERSION_00.fullmatch(value) if len(value) == 55 else None
    if common is not None:
        # The common case, inlined: this runs for every invocation and every message of a batch.
        trace_hex, span_hex, flags_hex = common.groups()
        trace_id = int(trace_hex, 16)
        span_id = int(span_hex, 16)
        if not trace_id or not span_id:
            return None
        _last_trace[0] = (trace_id, trace_hex)  # the hex every injection in this trace reuses
        flags = 1 if flags_hex == "01" else int(flags_hex, 16) & _KNOWN_FLAGS
        return _tuple_new(SpanContext, (trace_id, span_id, flags, trace_state, True))
    match = _TRACEPARENT.fullmatch(value.strip(_OWS))
    if match is None:
        return None
    version, trace_hex, span_hex, flags_hex, rest = match.groups()
    if version == "ff":
        return None
    flags = int(flags_hex, 16)
    if version == "00":
        if rest is not None:
            return None
        flags &= _KNOWN_FLAGS
    else:
        flags &= 0x01
    trace_id = int(trace_hex, 16)
    span_id = int(span_hex, 16)
    if not trace_id or not span_id:
        return None
    return new_context(trace_id, span_id, flags, trace_state)


def parse_tracestate(value: str | None) -> tuple[tuple[str, str], ...] | None:
    """The members of a ``tracestate`` value, in order; None when it must be discarded."""
    if value is None:
        return ()
    members: list[tuple[str, str]] = []
    seen: set[str] = set()
    for raw in value.split(","):
        member = raw.strip(_OWS)
        if not member:
            continue  # empty list-members are allowed and skipped
        match = _MEMBER.fullmatch(member)
        if match is None:
            return None
        key, item = match.groups()
        if key in seen:
            return None
        seen.add(key)
        members.append((key, item))
        if len(members) > MAX_MEMBERS:
            return None
    return tuple(members)


def format_traceparent(trace_hex: str, span_hex: str, flags: int) -> str:
    """The version-00 ``traceparent`` for a context's hex ids and flags."""
    return f"00-{trace_hex}-{span_hex}-01" if flags == 1 else f"00-{trace_hex}-{span_hex}-{flags & 0xFF:02x}"


def format_tracestate(state: tuple[tuple[str, str], ...]) -> str:
    """The ``tracestate`` for a context's entries, the first `MAX_MEMBERS` of them."""
    return ",".join([f"{key}={value}" for key, value in state[:MAX_MEMBERS]])


class TraceContextPropagator:
    """``traceparent``/``tracestate`` (``OTEL_PROPAGATORS=tracecontext``)."""

    __slots__ = ()
    name = "tracecontext"
    fields = ("traceparent", "tracestate")

    def extract(self, carrier: object, incoming: Incoming) -> None:
        """Set `incoming.context` from the carrier's ``traceparent``, when valid."""
        incoming.context = self.extract_context(carrier, incoming.context)

    def extract_context(self, carrier: object, context: SpanContext | None) -> SpanContext | None:
        """The carrier's context when its ``traceparent`` is valid, else `context` (what came before)."""
        # The composite hands over `Headers`; reading it directly saves two calls per invocation.
        if type(carrier) is Headers:
            value = carrier.get("traceparent")
            state_value = carrier.get("tracestate")
        else:
            value = get(carrier, "traceparent")
            state_value = get(carrier, "tracestate")
        state = parse_tracestate(state_value) if state_value else ()
        found = parse_traceparent(value, state or ())
        return context if found is None else found

    def inject(self, carrier: object, context: SpanContext | Span, ids: tuple[str, str] | None) -> None:
        """Write ``traceparent`` (and ``tracestate`` when there is one)."""
        if ids is None:
            return
        flags = context.trace_flags
        carrier["traceparent"] = (  # type: ignore[index]
            f"00-{ids[0]}-{ids[1]}-01" if flags == 1 else format_traceparent(ids[0], ids[1], flags)
        )
        state = context.trace_state
        if state:
            carrier["tracestate"] = format_tracestate(state)  # type: ignore[index]
