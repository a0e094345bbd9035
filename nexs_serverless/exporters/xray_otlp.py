"""OTLP spans in X-Ray daemon datagrams: batches split to fit, oversized spans cut.

Uses the package's own OTLP encoder (`otlp_encode.encode_spans`). A batch
that does not fit one datagram is split into about equal parts by span count,
and any part still too large is halved again; a single span too large for a
datagram is copied, its largest attribute values cut (`xray_fit.truncate_span`,
which records the cut keys in the ``nexs.truncated`` attribute) and encoded
again; a span still too large loses its events, then its links (the
counts move to its dropped counts). Sampled and unsampled spans go in
separate datagrams (``T1S``/``T1U``).
"""

from __future__ import annotations

from .. import _stats as stats
from .otlp_encode import encode_spans
from .xray_udp import MAX_DATAGRAM_BYTES, otlp_datagram, otlp_payload_budget

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..typing import ReadableSpan

__all__ = ["encode_datagrams", "split_payloads"]

_CUT_ATTEMPTS = 6  # value cuts, then events (other than exceptions), all events, links


def encode_datagrams(
    spans: Sequence[ReadableSpan], max_datagram_bytes: int = MAX_DATAGRAM_BYTES
) -> tuple[list[bytes], list[Sequence[ReadableSpan]], list[ReadableSpan]]:
    """Framed datagrams carrying every span of `spans` that can be made to fit, their spans, the rest.

    Returns:
        The datagrams; the spans each one carries (``members[i]`` for datagram
        ``i``), so that a sender failing part way names only the spans of the
        datagrams not sent (a retry of the whole batch would send the others
        twice); and the spans in none of them (counted under their reason).
    """
    budget = otlp_payload_budget(max_datagram_bytes)
    sampled = [span for span in spans if span.trace_flags & 1]
    unsampled = [span for span in spans if not span.trace_flags & 1] if len(sampled) != len(spans) else []
    out: list[bytes] = []
    members: list[Sequence[ReadableSpan]] = []
    dropped: list[ReadableSpan] = []
    for group, flag in ((sampled, True), (unsampled, False)):
        if group:
            payloads = split_payloads(group, budget, dropped, members)
            out.extend(otlp_datagram(payload, sampled=flag) for payload in payloads)
    return out, members, dropped


def split_payloads(
    spans: Sequence[ReadableSpan],
    budget: int,
    dropped: list[ReadableSpan] | None = None,
    members: list[Sequence[ReadableSpan]] | None = None,
) -> list[bytes]:
    """``ExportTraceServiceRequest`` payloads of at most `budget` bytes covering `spans`.

    A span that cannot be cut to fit is in none (counted ``spans_dropped_oversize``)
    and appended to `dropped`, when given. `members`, when given, gets the spans
    of each payload, in payload order (`spans` itself or the slices cut from it).
    """
    payload = encode_spans(spans)
    if len(payload) <= budget:
        if members is not None:
            members.append(spans)
        return [payload]
    if len(spans) == 1:
        fitted = _cut(spans[0], budget, len(payload))
        if fitted is None:
            if dropped is not None:
                dropped.append(spans[0])
            return []
        if members is not None:
            members.append(spans)
        return [fitted]
    parts = min(len(spans), -(-len(payload) * 10 // (budget * 9)))  # aim at 90 % full
    size = -(-len(spans) // parts)
    out: list[bytes] = []
    for start in range(0, len(spans), size):
        chunk = spans[start : start + size]
        if len(chunk) == len(spans):  # the estimate did not split: halve
            half = len(spans) // 2
            first = split_payloads(spans[:half], budget, dropped, members)
            return first + split_payloads(spans[half:], budget, dropped, members)
        out.extend(split_payloads(chunk, budget, dropped, members))
    return out


def _cut(span: ReadableSpan, budget: int, size: int) -> bytes | None:
    """One span alone over `budget`: cut its values on a copy (then its events and links) until it fits.

    Counted once: ``spans_truncated`` when it fits, ``spans_dropped_oversize`` when nothing makes it fit.
    """
    from ..finished import freeze
    from .xray_fit import drop_events_and_links, truncate_span

    copy = freeze(span)  # type: ignore[arg-type]
    if copy is span:  # already a FinishedSpan: never edit the caller's object
        from copy import copy as shallow

        copy = shallow(copy)
    for _ in range(_CUT_ATTEMPTS):
        if not truncate_span(copy, size - budget + 64) and not drop_events_and_links(copy):
            break
        payload = encode_spans([copy])
        if len(payload) <= budget:
            stats.incr("spans_truncated")
            return payload
        size = len(payload)
    stats.incr("spans_dropped_oversize")
    return None
