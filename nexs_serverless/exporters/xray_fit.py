"""Make X-Ray payloads fit in one UDP datagram, saying on the span what was cut.

The X-Ray daemon reads datagrams of at most 64 KiB and silently loses larger
ones (so does the X-Ray SDK that sends them), so an oversized span must be cut
before it is sent: the largest attribute values (strings shortened, lists
shortened) go first, then stack frames, then metadata, and the document or
span records which values were cut (``metadata.nexs.truncated`` on a segment
document, the ``nexs.truncated`` attribute on an OTLP span). Cutting is the
rare path: documents that fit are serialized once and returned.
"""

from __future__ import annotations

import json

from .. import _stats as stats

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..finished import FinishedSpan
    from ..model import Event

__all__ = ["MARK", "dumps", "fit_document", "truncate_span"]

MARK = "…[truncated]"
_MIN_KEEP = 64  # bytes: values shorter than this are not worth cutting
_ROUNDS = 200
# Sections of a document whose values may be cut (never ids, times, name or type).
_CUTTABLE = ("metadata", "annotations", "http", "sql", "aws", "cause")


# One encoder for every document: json.dumps with options builds a new one per call.
_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def dumps(doc: object) -> bytes:
    """Compact UTF-8 JSON (non-ASCII kept as is: 1 to 4 bytes instead of 6 per character)."""
    return _encode(doc).encode("utf-8", "replace")


def fit_document(doc: dict[str, object], max_bytes: int) -> bytes | None:
    """`doc` as JSON of at most `max_bytes`, cut if needed; None when even cutting cannot fit it."""
    data = dumps(doc)
    if len(data) <= max_bytes:
        return data
    cut: list[str] = []
    for _ in range(_ROUNDS):
        excess = len(data) - max_bytes
        leaf = _largest_leaf(doc)
        if leaf is None or leaf[0] <= _MIN_KEEP:
            break
        size, container, key, path = leaf
        target = size - excess - 2 * len(MARK.encode()) - 16
        if isinstance(container, dict):
            container[str(key)] = _shrink(container[str(key)], size, target)
        elif isinstance(key, int):
            container[key] = _shrink(container[key], size, target)
        if path not in cut:
            cut.append(path)
        _mark(doc, cut)
        data = dumps(doc)
        if len(data) <= max_bytes:
            break
    for fallback in (_drop_stacks, _drop_metadata):
        if len(data) <= max_bytes:
            break
        cut.append(fallback(doc))
        _mark(doc, cut)
        data = dumps(doc)
    if len(data) > max_bytes:
        stats.incr("spans_dropped_oversize")
        return None
    stats.incr("spans_truncated")
    return data


def truncate_span(span: FinishedSpan, excess_bytes: int) -> list[str]:
    """Shorten the largest attribute values of `span` (a private copy) by at least `excess_bytes`.

    Event attributes count too (an exception's stack trace is the usual
    culprit). The keys cut are added to the span's ``nexs.truncated`` attribute.
    """
    cut: list[str] = []
    left = excess_bytes + 64  # room for the nexs.truncated attribute itself
    for _ in range(_ROUNDS):
        if left <= 0:
            break
        best: tuple[int, dict[str, object], str, str] | None = None
        attrs: dict[str, object] = dict(span.attributes)
        span.attributes = attrs  # type: ignore[assignment]
        candidates: list[tuple[dict[str, object], str]] = [(attrs, "")]
        events = list(span.events)
        for index, event in enumerate(events):
            candidates.append((dict(event.attributes), f"events[{index}]."))
        for mapping, prefix in candidates:
            for key, value in mapping.items():
                size = _raw_size(value)
                if size > _MIN_KEEP and (best is None or size > best[0]):
                    best = (size, mapping, key, prefix + key)
        if best is None:
            break
        size, mapping, key, path = best
        mapping[key] = _shrink(mapping[key], size, size - left - len(MARK.encode()) - 16)
        left -= size - _raw_size(mapping[key])
        if path not in cut:
            cut.append(path)
        if mapping is not attrs:
            index = int(path[len("events[") : path.index("]")])
            _replace_event(span, events, index, mapping)
    if cut:
        attrs = dict(span.attributes)
        earlier = attrs.get("nexs.truncated")
        merged = [str(key) for key in earlier] if isinstance(earlier, (list, tuple)) else []
        attrs["nexs.truncated"] = tuple(merged + [key for key in cut if key not in merged])
        span.attributes = attrs  # type: ignore[assignment]
        stats.incr("spans_truncated")
    return cut


def _replace_event(
    span: FinishedSpan, events: list[Event], index: int, attributes: dict[str, object]
) -> None:
    from ..model import Event

    old = span.events[index]
    events[index] = Event(old.name, old.timestamp_ns, attributes, old.dropped_attributes)  # type: ignore[arg-type]
    span.events = tuple(events)


def _largest_leaf(doc: dict[str, object]) -> tuple[int, dict[str, object] | list[object], object, str] | None:
    best: tuple[int, dict[str, object] | list[object], object, str] | None = None
    stack: list[tuple[object, str]] = [(doc[name], name) for name in _CUTTABLE if name in doc]
    while stack:
        node, path = stack.pop()
        items: list[tuple[object, object]]
        if isinstance(node, dict):
            items = list(node.items())
        elif isinstance(node, list) and any(isinstance(item, (dict, list)) for item in node):
            items = list(enumerate(node))
        else:
            continue
        for key, value in items:
            child_path = f"{path}/{key}"
            if child_path == "metadata/nexs":
                continue
            if isinstance(value, dict) or (
                isinstance(value, list) and any(isinstance(item, (dict, list)) for item in value)
            ):
                stack.append((value, child_path))
                continue
            size = _size(value)
            if best is None or size > best[0]:
                best = (size, node, key, child_path)
    return best


def _shrink(value: object, size: int, target: int) -> object:
    """`value` (a string or a list of scalars) cut to about `target` serialized bytes."""
    target = max(_MIN_KEEP // 2, target)
    if isinstance(value, str):
        keep = max(0, int(len(value) * target / max(size, 1)) - len(MARK))
        return value[:keep] + MARK
    if isinstance(value, (list, tuple)):
        keep = max(0, int(len(value) * target / max(size, 1)) - 1)
        return list(value[:keep])
    return value


def _size(value: object) -> int:
    if isinstance(value, str) and value.isascii() and value.isprintable():
        return len(value) + 2
    try:
        return len(dumps(value))
    except (TypeError, ValueError):
        return len(str(value))


def _raw_size(value: object) -> int:
    """About how many bytes `value` takes in protobuf (strings by their UTF-8 length)."""
    if isinstance(value, str):
        return len(value.encode("utf-8", "replace"))
    if isinstance(value, (list, tuple)):
        return sum(_raw_size(item) + 2 for item in value)
    return 9


def _mark(doc: dict[str, object], cut: list[str]) -> None:
    metadata = doc.get("metadata")
    if not isinstance(metadata, dict):
        metadata = doc["metadata"] = {}
    metadata["nexs"] = {"truncated": list(cut)}


def _drop_stacks(doc: dict[str, object]) -> str:
    cause = doc.get("cause")
    if isinstance(cause, dict):
        for entry in cause.get("exceptions", ()):
            if isinstance(entry, dict):
                entry.pop("stack", None)
    return "cause/exceptions/*/stack"


def _drop_metadata(doc: dict[str, object]) -> str:
    doc["metadata"] = {}
    return "metadata"
