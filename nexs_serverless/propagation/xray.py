"""AWS X-Ray trace header: ``X-Amzn-Trace-Id``, SQS's ``AWSTraceHeader``, Lambda's ``_X_AMZN_TRACE_ID``.

The header is ``;``-separated ``key=value`` pairs (X-Ray developer guide,
"Tracing header"): ``Root=1-<8 hex epoch>-<24 hex>`` is the 128-bit trace id,
``Parent`` the 64-bit parent id, ``Sampled`` ``1``/``0``; another value reads
as not sampled. ``Sampled=?`` (X-Ray's "the receiver decides") and a header
without ``Sampled`` carry no decision, and the propagators take ours: the
context keeps its trace and parent ids, its sampled flag being what the
configured sampler decides for a new trace with that id (`incoming.receiver_decides`).
A parent-based sampler then follows that flag instead of dropping the trace,
and outgoing headers carry it. Decided at extraction, it needs no "undecided"
mark in the context that the tracer would have to know (its default path
follows a parent's flag without asking a sampler). OpenTelemetry's
propagators read a missing key as not sampled, and its Python one drops a
header with ``?``. `incoming_from` (Lambda's ``_X_AMZN_TRACE_ID``, which
always says ``1`` or ``0``, and SQS's ``AWSTraceHeader``, used only when
sampled, so a ``?`` there costs no trace) reads both as not sampled.
``Lineage`` (Lambda's recursive-loop counter) and keys we do not know are
kept and written back for the same trace, when their key is an RFC 9110
token and their value visible ASCII without ``;``, ``=`` or ``,`` (anything
else, a CR/LF above all, would corrupt or split the outgoing header: such a
pair is left out, the context kept); ``Self`` names the previous hop (ALB)
and is not forwarded. A pair without ``=``, a bad ``Root`` or ``Parent``,
or a header without both, gives no context.

``xray-lambda`` (OpenTelemetry semantic conventions, "AWS Lambda",
"xray-lambda propagator"): like ``xray``, and when no propagator before it
found a context, the per-invocation ``_X_AMZN_TRACE_ID`` variable (what the
runtime received as ``Lambda-Runtime-Trace-Id``) takes precedence.
"""

from __future__ import annotations

from ..config import read_env
from ..model import SpanContext
from ._carrier import Headers, get
from .incoming import Incoming, _extras, extra, receiver_decides

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..span import Span

__all__ = [
    "ENV_VARIABLE",
    "XRayLambdaPropagator",
    "XRayPropagator",
    "format_header",
    "incoming_from",
    "parse_header",
]

ENV_VARIABLE = "_X_AMZN_TRACE_ID"
MAX_LENGTH = 4096
# Hex digits checked with `str.strip`, not `re`: compiling two patterns cost ~0.4 ms of every cold
# start, and `int(text, 16)` alone would also take "_", "+", "0x", whitespace and non-ASCII digits.
_HEX_DIGITS = "0123456789abcdefABCDEF"
_LOW_96 = (1 << 96) - 1
# What a kept pair may hold, also checked with `str.strip`: a key is an RFC 9110 token; a value is
# visible ASCII (the tokens' characters and RFC 9110's delimiters) but the header's own separators
# (";" and "=") and the list separator (",").
_TCHARS = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_FIELD_VALUE = _TCHARS + '"()/:<>?@[\\]{}'
# (trace hex, "Root=1-...;Parent=") of the trace last written; one tuple, swapped atomically.
_last_root: list[tuple[str, str]] = [("", "")]


def parse_header(header: str | None, decide: bool = False) -> tuple[SpanContext | None, str]:
    """The context in an X-Ray header and the pairs to write back (``"Lineage=…"``).

    Args:
        header: the header's value.
        decide: for ``Sampled=?`` or no ``Sampled``, take the configured sampler's
            decision for a new trace (`incoming.receiver_decides`); when False, such a
            context is not sampled.
    """
    if not header or len(header) > MAX_LENGTH:
        return None, ""
    trace_id = span_id = 0
    flags = -1  # no Sampled yet
    kept: list[str] = []
    for raw in header.split(";"):
        part = raw.strip()
        if not part:
            continue
        key, sep, value = part.partition("=")
        if not sep:
            return None, ""
        key = key.strip()
        value = value.strip()
        lowered = key.lower()
        if lowered == "root":
            # "1-" + 8 hex digits (the epoch) + "-" + 24 hex digits
            if len(value) != 35 or value[:2] != "1-" or value[10] != "-":
                return None, ""
            digits = value[2:10] + value[11:]
            if digits.strip(_HEX_DIGITS):
                return None, ""
            trace_id = int(digits, 16)
        elif lowered == "parent":
            if len(value) != 16 or value.strip(_HEX_DIGITS):
                return None, ""
            span_id = int(value, 16)
        elif lowered == "sampled":
            flags = 1 if value == "1" else -1 if value == "?" else 0
        elif lowered != "self" and key and not key.strip(_TCHARS) and not value.strip(_FIELD_VALUE):
            kept.append(f"{key}={value}")
    if not trace_id or not span_id:
        return None, ""
    if flags < 0:
        flags = receiver_decides(trace_id) if decide else 0
    return SpanContext(trace_id, span_id, flags, (), True), ";".join(kept)


def format_header(trace_id: int, span_id: int, flags: int, kept: str | None = None) -> str:
    """The X-Ray header for a context, with the kept pairs appended."""
    header = f"Root=1-{trace_id >> 96:08x}-{trace_id & _LOW_96:024x};Parent={span_id:016x}"
    header += f";Sampled={flags & 1}"
    return f"{header};{kept}" if kept else header


def _adopt(incoming: Incoming, header: str | None, decide: bool) -> bool:
    context, kept = parse_header(header, decide)
    if context is None:
        return False
    incoming.context = context
    if kept:
        extras = incoming.extras if incoming.extras is not None else {}
        extras["xray"] = (context.trace_id, kept)
        incoming.extras = extras
    return True


def incoming_from(header: object) -> Incoming | None:
    """An `Incoming` from an X-Ray header value (SQS's ``AWSTraceHeader``, Lambda's variable), or None."""
    if not isinstance(header, str) or not header:
        return None
    incoming = Incoming()
    return incoming if _adopt(incoming, header, False) else None


class XRayPropagator:
    """``X-Amzn-Trace-Id`` (``OTEL_PROPAGATORS=xray``)."""

    __slots__ = ()
    name = "xray"
    fields = ("X-Amzn-Trace-Id",)

    def extract(self, carrier: object, incoming: Incoming) -> None:
        """Set `incoming.context` from the carrier's X-Ray header, when valid."""
        if type(carrier) is Headers:
            header = carrier.get("x-amzn-trace-id")
        else:
            header = get(carrier, "x-amzn-trace-id")
        if header:
            _adopt(incoming, header, True)

    def extract_context(self, carrier: object, context: SpanContext | None) -> SpanContext | None:
        """The carrier's context when its X-Ray header is valid, else `context` (kept pairs not read)."""
        header = (
            carrier.get("x-amzn-trace-id") if type(carrier) is Headers else get(carrier, "x-amzn-trace-id")
        )
        if not header:
            return context
        found = parse_header(header, True)[0]
        return context if found is None else found

    def inject(self, carrier: object, context: SpanContext | Span, ids: tuple[str, str] | None) -> None:
        """Write ``X-Amzn-Trace-Id`` (with this trace's kept ``Lineage`` and other pairs)."""
        if ids is None:
            return
        trace_hex = ids[0]
        cached_hex, root = _last_root[0]
        if cached_hex is not trace_hex:  # one trace, many outgoing calls: build "Root=..." once
            root = f"Root=1-{trace_hex[:8]}-{trace_hex[8:]};Parent="
            _last_root[0] = (trace_hex, root)
        header = root + ids[1] + (";Sampled=1" if context.trace_flags & 1 else ";Sampled=0")
        if _extras.get():
            kept = extra("xray", context.trace_id)
            if kept:
                header = f"{header};{kept}"
        carrier["X-Amzn-Trace-Id"] = header  # type: ignore[index]


class XRayLambdaPropagator(XRayPropagator):
    """``xray`` plus Lambda's ``_X_AMZN_TRACE_ID`` (``OTEL_PROPAGATORS=xray-lambda``).

    Use it instead of ``xray`` when spans go to AWS X-Ray, so that they hang
    under the segment Lambda's active tracing records.
    """

    __slots__ = ()
    name = "xray-lambda"

    def extract(self, carrier: object, incoming: Incoming) -> None:
        """The carrier's header; then, if nothing before had a context, the environment's."""
        had_context = incoming.context is not None
        header = get(carrier, "x-amzn-trace-id") or get(carrier, "lambda-runtime-trace-id")
        _adopt(incoming, header, True)
        if had_context:
            return
        _adopt(incoming, read_env(ENV_VARIABLE) or None, False)

    def extract_context(self, carrier: object, context: SpanContext | None) -> SpanContext | None:
        """As `extract`, for the context only."""
        incoming = Incoming(context)
        self.extract(carrier, incoming)
        return incoming.context
