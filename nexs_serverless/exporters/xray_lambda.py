"""The function segment Lambda records for an invocation, named by ``_X_AMZN_TRACE_ID``.

Inside a traced invocation our spans are subsegments of that segment: its
``Root`` is the trace, its ``Parent`` the segment id, and ``Sampled=0`` means
Lambda recorded no segment to hang under (`xray_segments` places spans by it).

Spans that could not be sent wait for a later invocation's flush, when
``_X_AMZN_TRACE_ID`` names another invocation: so the exporter remembers the
last `REMEMBERED` invocations' segments by trace (`remember`), and each span
is placed by its own trace's, never by the current one's.
"""

from __future__ import annotations

import re

__all__ = ["REMEMBERED", "LambdaSegment", "parse_trace_header", "remember"]

# Invocations whose function segment is remembered: spans carried over for more
# invocations than this (or never seen by the exporter) are placed as spans of a
# trace Lambda may have recorded, without claiming its function segment.
REMEMBERED = 8

_HEADER = re.compile(r"(?:^|;)\s*(Root|Parent|Sampled)=([^;]*)")
_ROOT = re.compile(r"1-([0-9a-fA-F]{8})-([0-9a-fA-F]{24})")
_SPAN_HEX = re.compile(r"[0-9a-fA-F]{16}")


class LambdaSegment:
    """The function segment Lambda records for one invocation (``Root``, ``Parent``, ``Sampled``)."""

    __slots__ = ("parent_id", "sampled", "trace_id")

    def __init__(self, trace_id: int, parent_id: str, sampled: bool) -> None:
        self.trace_id = trace_id
        self.parent_id = parent_id
        self.sampled = sampled


def parse_trace_header(value: str) -> LambdaSegment | None:
    """The function segment named by an ``_X_AMZN_TRACE_ID`` value, or None when malformed."""
    fields = {key: raw.strip() for key, raw in _HEADER.findall(value or "")}
    root = _ROOT.fullmatch(fields.get("Root", ""))
    parent = fields.get("Parent", "")
    if root is None or not _SPAN_HEX.fullmatch(parent):
        return None
    trace_id = int(root.group(1) + root.group(2), 16)
    if not trace_id or not int(parent, 16):
        return None
    return LambdaSegment(trace_id, parent.lower(), fields.get("Sampled", "") == "1")


def remember(
    segments: dict[int, LambdaSegment], segment: LambdaSegment, limit: int = REMEMBERED
) -> dict[int, LambdaSegment]:
    """`segments` (by trace id, oldest first) with `segment` added last and the oldest beyond `limit` gone.

    A new dict, not `segments` changed: a conversion running on another thread
    keeps reading the one it was given. Costs one copy of a few entries per
    invocation, never per span.
    """
    kept = {trace_id: known for trace_id, known in segments.items() if trace_id != segment.trace_id}
    kept[segment.trace_id] = segment
    while len(kept) > limit:
        del kept[next(iter(kept))]
    return kept
