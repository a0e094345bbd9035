"""Batches too big for one OTLP request: split up front by size, halved on HTTP 413.

Split out of `otlp_encode` and `otlp_http` because a batch within the
collector's limit, the usual case, needs none of it: only an oversize batch
loads this module (cold start). `split_spans` serves OTLP/gRPC too;
`send_split` and `send_halves` are `OTLPHttpExporter`'s, and update its
learned limit (``_max_bytes``).

A span too large on its own is dropped (``spans_dropped_oversize``) and
reported as dropped (`base.Sent`), not sent.
"""

from __future__ import annotations

from .. import _guard as guard
from .. import _stats as stats
from .base import Sent
from .errors import send_parts
from .otlp_encode import _request, _resource, _scope, _span, encode_spans

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..model import InstrumentationScope, Resource
    from ..typing import ReadableSpan
    from .otlp_http import OTLPHttpExporter

__all__ = ["send_halves", "send_split", "split_spans"]


# Per (resource, scope) group of a request: the tags and largest length varints of its
# ResourceSpans and ScopeSpans fields, beyond the resource's and the scope's own bytes.
_GROUP_FRAMING = 2 * (1 + 5)


def split_spans(
    spans: Sequence[ReadableSpan], max_bytes: int
) -> tuple[list[tuple[Sequence[ReadableSpan], bytes]], int]:
    """`spans` as requests of at most `max_bytes` each, in order, each span encoded once.

    For a batch `encode_spans` found too big for the collector (gRPC's 4 MiB
    receive limit, an HTTP 413): each part is ``(its spans, its request)``.
    Returns the parts and how many spans did not fit in a request even alone
    (left out; the caller counts them).
    """
    parts: list[tuple[Sequence[ReadableSpan], bytes]] = []
    too_big = 0
    groups: dict[tuple[int, int], tuple[Resource, InstrumentationScope, list[bytes]]] = {}
    members: list[ReadableSpan] = []
    size = 0  # an upper bound of the request `groups` would make
    for span in spans:
        resource = span.resource
        scope = span.instrumentation_scope
        key = (id(resource), id(scope))
        encoded = _span(span)
        alone = len(_resource(resource)) + len(_scope(scope)) + _GROUP_FRAMING + len(encoded)
        if alone > max_bytes:
            too_big += 1
            continue
        grown = size + (len(encoded) if key in groups else alone)
        if grown > max_bytes:
            parts.append((members, _request(groups)))
            groups, members, grown = {}, [], alone
        groups.setdefault(key, (resource, scope, []))[2].append(encoded)
        members.append(span)
        size = grown
    if members:
        parts.append((members, _request(groups)))
    return parts, too_big


def send_split(
    exporter: OTLPHttpExporter, spans: Sequence[ReadableSpan], limit: int, deadline: float
) -> int | Sent:
    """Send `spans`, whose request is over `limit` bytes, as several requests under it."""
    parts, too_big = split_spans(spans, limit)
    if too_big:
        _drop_oversize(exporter.endpoint, too_big, f"over the {limit}-byte request limit")
    return send_parts(
        parts, lambda part, part_body: exporter._send_request(part, part_body, deadline), dropped=too_big
    )


def send_halves(
    exporter: OTLPHttpExporter, spans: Sequence[ReadableSpan], body: bytes, deadline: float
) -> int | Sent:
    """Send again as two halves the `spans` whose request (`body`) the collector refused with 413.

    OTLP/HTTP names no limit. Later batches are split up front (`split_spans`)
    into requests of at most half the refused size, about what the halves that
    got through weighed: a warm function pays for a 413 only when the
    collector's limit is lower still.
    """
    if len(spans) == 1:
        _drop_oversize(exporter.endpoint, 1, f"refused with HTTP 413 ({len(body)} bytes)")
        return Sent(0, 1)
    limit = exporter._max_bytes
    if limit is None or len(body) // 2 < limit:
        exporter._max_bytes = len(body) // 2
    middle = len(spans) // 2
    halves = [(half, encode_spans(half)) for half in (spans[:middle], spans[middle:])]
    return send_parts(halves, lambda half, half_body: exporter._send_request(half, half_body, deadline))


def _drop_oversize(endpoint: str, count: int, why: str) -> None:
    stats.incr("spans_dropped_oversize", count)
    guard.warn_once(
        "otlp_oversize:" + endpoint,
        "nexs_serverless: %d span(s) too big for %s on their own, dropped: %s",
        count,
        endpoint,
        why,
    )
