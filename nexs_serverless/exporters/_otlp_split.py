"""Batches too big for one OTLP request: split up front by size, halved on HTTP 413.

Split out of `otlp_encode` and `otlp_http` because a batch within the
collector's limit, the usual case, needs none of it: only an oversize batch
loads this module (cold start). `split_spans` serves OTLP/gRPC too;
`send_split` and `send_halves` are `OTLPHttpExporter`'s, and update its
learned limit (``_max_bytes``).

A limit learned from a 413 is a guess: OTLP/HTTP names no limit, and a proxy
may refuse one request by mistake. So it lasts `LEARNED_LIMIT_BATCHES`
split batches, after which a big batch goes whole again (a collector that
still has the limit says so with one more 413, which learns it again), and
it never drops a span: one over it goes in a request of its own. A span is
dropped (``spans_dropped_oversize``, reported as dropped by `base.Sent`,
not sent) only when the collector refuses it alone, or when it is over the
configured ``max_request_bytes``.
"""

from __future__ import annotations

import math

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

__all__ = ["LEARNED_LIMIT_BATCHES", "send_halves", "send_split", "split_spans"]

# How many batches a limit learned from a 413 splits before a big batch is tried whole again: a
# collector that has the limit costs one refused request per this many big batches; a 413 sent by
# mistake costs this many needlessly split ones, instead of every later batch's.
LEARNED_LIMIT_BATCHES = 16


# Per (resource, scope) group of a request: the tags and largest length varints of its
# ResourceSpans and ScopeSpans fields, beyond the resource's and the scope's own bytes.
_GROUP_FRAMING = 2 * (1 + 5)


def split_spans(
    spans: Sequence[ReadableSpan], max_bytes: int, *, drop_over: float | None = None
) -> tuple[list[tuple[Sequence[ReadableSpan], bytes]], int]:
    """`spans` as requests of at most `max_bytes` each, in order, each span encoded once.

    For a batch `encode_spans` found too big for the collector (gRPC's 4 MiB
    receive limit, an HTTP 413): each part is ``(its spans, its request)``.
    A span whose request alone is over `max_bytes` is left out when it is
    over `drop_over` too (default: `max_bytes`), else sent in a request of
    its own. Returns the parts and how many spans were left out (the caller
    counts them).
    """
    if drop_over is None:
        drop_over = max_bytes
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
            if alone > drop_over:
                too_big += 1
                continue
            if members:
                parts.append((members, _request(groups)))
            parts.append(([span], _request({key: (resource, scope, [encoded])})))
            groups, members, size = {}, [], 0
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
    exporter: OTLPHttpExporter, spans: Sequence[ReadableSpan], body: bytes, deadline: float
) -> int | Sent:
    """Send `spans`, whose request (`body`) is over the exporter's limit, as several requests under it.

    A learned limit splits `LEARNED_LIMIT_BATCHES` batches, then is forgotten
    (back to ``max_request_bytes``), and this batch goes whole if that allows.
    """
    configured = exporter.max_request_bytes
    limit = exporter._max_bytes
    if limit != configured:  # learned from a 413
        if exporter._learned_batches_left > 0:
            exporter._learned_batches_left -= 1
        else:
            exporter._max_bytes = limit = configured
            if limit is None or len(body) <= limit:
                return exporter._send_request(spans, body, deadline)
    assert limit is not None
    parts, too_big = split_spans(spans, limit, drop_over=configured if configured is not None else math.inf)
    if too_big:
        _drop_oversize(exporter.endpoint, too_big, f"over the {configured}-byte request limit")
    return send_parts(
        parts, lambda part, part_body: exporter._send_request(part, part_body, deadline), dropped=too_big
    )


def send_halves(
    exporter: OTLPHttpExporter, spans: Sequence[ReadableSpan], body: bytes, deadline: float
) -> int | Sent:
    """Send again as two halves the `spans` whose request (`body`) the collector refused with 413.

    OTLP/HTTP names no limit. The next `LEARNED_LIMIT_BATCHES` big batches
    are split up front (`split_spans`) into requests of at most half the
    refused size, about what the halves that got through weighed: a warm
    function pays for a 413 only when the collector's limit is lower still,
    or once the learned limit has lapsed (see the module's docstring).
    """
    if len(spans) == 1:
        _drop_oversize(exporter.endpoint, 1, f"refused with HTTP 413 ({len(body)} bytes)")
        return Sent(0, 1)
    limit = exporter._max_bytes
    if limit is None or len(body) // 2 < limit:
        exporter._max_bytes = len(body) // 2
    exporter._learned_batches_left = LEARNED_LIMIT_BATCHES
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
