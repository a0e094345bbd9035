"""Make X-Ray payloads fit in one UDP datagram, saying on the span what was cut.

The X-Ray daemon reads datagrams of at most 64 KiB and silently loses larger
ones (so does the X-Ray SDK that sends them), so an oversized span must be cut
before it is sent. Cutting is the rare path: documents that fit are
serialized once and returned.

A segment document (`fit_document`) is cut in a few passes, each one
serialization: every value over a common size (the "water level" that
removes the excess) is cut to it, so each long value keeps its beginning;
metadata first, and the indexed or structured sections (annotations,
``http``, ``sql``, ``aws``, ``cause``, ``user``, ``service``) only when
metadata cannot absorb the excess. Then, if needed, the ``otel`` events and
links, the stack frames, and the rest of the metadata go. The document names
what was cut in ``metadata.nexs.truncated`` (at most `MAX_LISTED` paths, each
cut to 200 characters, ``truncated_count`` giving the total when there are more).

An OTLP span (`truncate_span`) loses its largest attribute values first
(event attributes count: an exception's stack trace is the usual culprit),
then its events and links; the ``nexs.truncated`` attribute names what went.
"""

from __future__ import annotations

import json

from .. import _stats as stats

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..finished import FinishedSpan
    from ..model import Event

__all__ = ["MARK", "MAX_LISTED", "drop_events_and_links", "dumps", "fit_document", "truncate_span"]

MARK = "…[truncated]"
MAX_LISTED = 20  # cut paths named in metadata.nexs.truncated; more are only counted
_MIN_KEEP = 64  # bytes: values shorter than this are not worth cutting
_PASSES = 4  # water-level passes (each one serialization) before the fallbacks
# Sections of a document whose values may be cut (never ids, times, name or type),
# in two tiers: metadata alone when it can absorb the excess, then all of them.
# ``user`` (``enduser.id``) and ``service`` (``service.version``) are the user's text too:
# left whole, one long value would cost the whole span.
_CUTTABLE = ("metadata", "annotations", "http", "sql", "aws", "cause", "user", "service")
_MAX_PATH = 200  # characters of a cut value's path listed in the mark (a key may be any length)
_TIERS = (("metadata",), _CUTTABLE)


# One encoder for every document: json.dumps with options builds a new one per call.
_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode

_Leaf = tuple[int, "dict[str, object] | list[object]", object, str]


def dumps(doc: object) -> bytes:
    """Compact UTF-8 JSON (non-ASCII kept as is: 1 to 4 bytes instead of 6 per character)."""
    return _encode(doc).encode("utf-8", "replace")


def fit_document(doc: dict[str, object], max_bytes: int) -> bytes | None:
    """`doc` as JSON of at most `max_bytes`, cut if needed; None when even cutting cannot fit it.

    A cut document is counted once (``spans_truncated``), a dropped one
    (``spans_dropped_oversize``) only as dropped.
    """
    data = dumps(doc)
    if len(data) <= max_bytes:
        return data
    cut: list[str] = []
    for _ in range(_PASSES):
        if not _cut_to_level(doc, len(data) - max_bytes, cut):
            break
        _mark(doc, cut)
        data = dumps(doc)
        if len(data) <= max_bytes:
            break
    for fallback in (_drop_otel_lists, _drop_stacks, _drop_metadata):
        if len(data) <= max_bytes:
            break
        cut.extend(fallback(doc))
        _mark(doc, cut)
        data = dumps(doc)
    if len(data) > max_bytes:
        stats.incr("spans_dropped_oversize")
        return None
    stats.incr("spans_truncated")
    return data


def _cut_to_level(doc: dict[str, object], excess: int, cut: list[str]) -> bool:
    """Cut every value over the level that removes `excess` bytes; False when nothing can be cut."""
    for sections in _TIERS:
        leaves = _leaves(doc, sections)
        if not leaves:
            continue
        sizes = [leaf[0] for leaf in leaves]
        level, enough = _level(sizes, excess + _mark_room(cut))
        # The mark names the values cut: leave room for their paths too.
        named = cut + [leaf[3] for leaf in leaves if leaf[0] > level and leaf[3] not in cut]
        level, enough = _level(sizes, excess + _mark_room(named))
        if not enough and sections is not _CUTTABLE:
            continue  # metadata alone cannot absorb it: cut every section
        leaves.sort(key=lambda leaf: -leaf[0])  # the largest are named first
        for size, container, key, path in leaves:
            if size <= level:
                break
            if isinstance(container, dict):
                container[str(key)] = _shrink(container[str(key)], size, level)
            elif isinstance(key, int):
                container[key] = _shrink(container[key], size, level)
            if path not in cut:
                cut.append(path)
        return True
    return False


def _level(sizes: list[int], need: int) -> tuple[int, bool]:
    """The highest size such that cutting every larger value to it removes `need` bytes.

    Returns the level and whether it removes enough (when not, the level is the
    floor, `_MIN_KEEP`, and cutting to it removes all that can be removed).
    """
    ordered = sorted(sizes, reverse=True)
    total = 0
    for i, size in enumerate(ordered):
        total += size
        below = max(ordered[i + 1] if i + 1 < len(ordered) else 0, _MIN_KEEP)
        if total - (i + 1) * below >= need:
            return max(_MIN_KEEP, (total - need) // (i + 1)), True
    return _MIN_KEEP, False


def _mark_room(paths: list[str]) -> int:
    """The bytes the ``metadata.nexs`` mark naming `paths` takes, with some to spare."""
    listed = sum(len(_listed(path).encode()) + 3 for path in paths[:MAX_LISTED])
    return 64 + listed + (32 if len(paths) > MAX_LISTED else 0)


def truncate_span(span: FinishedSpan, excess_bytes: int) -> list[str]:
    """Shorten the largest attribute values of `span` (a private copy) by at least `excess_bytes`.

    Event attributes count too (an exception's stack trace is the usual
    culprit). The keys cut are added to the span's ``nexs.truncated``
    attribute; the span's mappings are replaced, never edited in place. Counts
    nothing: the caller counts the span once, cut or dropped.

    Returns:
        The keys cut (``events[i].key`` for an event's), [] when no value was
        long enough to cut.
    """
    left = excess_bytes + 64  # room for the nexs.truncated attribute itself
    attrs: dict[str, object] = dict(span.attributes)
    events = list(span.events)
    event_attrs: list[dict[str, object]] = [dict(event.attributes) for event in events]
    candidates: list[tuple[int, dict[str, object], str, str]] = [
        (size, attrs, key, key) for key, value in attrs.items() if (size := _raw_size(value)) > _MIN_KEEP
    ]
    for index, mapping in enumerate(event_attrs):
        prefix = f"events[{index}]."
        candidates.extend(
            (size, mapping, key, prefix + key)
            for key, value in mapping.items()
            if (size := _raw_size(value)) > _MIN_KEEP
        )
    candidates.sort(key=lambda candidate: -candidate[0])  # largest first, one sort (no round limit)
    cut: list[str] = []
    edited: set[int] = set()
    for size, mapping, key, path in candidates:
        if left <= 0:
            break
        mapping[key] = _shrink(mapping[key], size, size - left - len(MARK.encode()) - 16)
        left -= size - _raw_size(mapping[key])
        cut.append(path)
        if mapping is not attrs:
            edited.add(int(path[len("events[") : path.index("]")]))
    if edited:
        span.events = tuple(
            _with_attributes(event, event_attrs[i]) if i in edited else event
            for i, event in enumerate(events)
        )
    if cut:
        _note(span, attrs, cut)
    return cut


def drop_events_and_links(span: FinishedSpan) -> list[str]:
    """The last resort for an OTLP span no value cut can fit: its events, then its links, go.

    Events other than ``exception`` go first; the counts move to the span's
    dropped counts and ``nexs.truncated`` names what went.
    """
    cut: list[str] = []
    events = tuple(span.events)
    kept = tuple(event for event in events if event.name == "exception")
    if len(kept) < len(events):
        span.events = kept
        span.dropped_events += len(events) - len(kept)
        cut.append("events")
    elif events:
        span.events = ()
        span.dropped_events += len(events)
        cut.append("events")
    elif span.links:
        span.dropped_links += len(span.links)
        span.links = ()
        cut.append("links")
    if cut:
        _note(span, dict(span.attributes), cut)
    return cut


def _note(span: FinishedSpan, attrs: dict[str, object], cut: list[str]) -> None:
    """Add `cut` to the span's ``nexs.truncated`` attribute (a new mapping on the span)."""
    earlier = attrs.get("nexs.truncated")
    merged = [str(key) for key in earlier] if isinstance(earlier, (list, tuple)) else []
    attrs["nexs.truncated"] = tuple(merged + [key for key in cut if key not in merged])
    span.attributes = attrs  # type: ignore[assignment]


def _with_attributes(event: Event, attributes: dict[str, object]) -> Event:
    from ..model import Event

    return Event(event.name, event.timestamp_ns, attributes, event.dropped_attributes)  # type: ignore[arg-type]


def _leaves(doc: dict[str, object], sections: tuple[str, ...]) -> list[_Leaf]:
    """Every value of `sections` worth cutting (strings, lists of scalars) with where it sits."""
    out: list[_Leaf] = []
    stack: list[tuple[object, str]] = [(doc[name], name) for name in sections if name in doc]
    for value, name in stack:
        if isinstance(value, str) and (size := _size(value)) > _MIN_KEEP:  # a section that is one value
            out.append((size, doc, name, name))
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
            if isinstance(value, (str, list)):
                size = _size(value)
                if size > _MIN_KEEP:
                    out.append((size, node, key, child_path))
    return out


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
    mark: dict[str, object] = {"truncated": [_listed(path) for path in cut[:MAX_LISTED]]}
    if len(cut) > MAX_LISTED:
        mark["truncated_count"] = len(cut)
    metadata["nexs"] = mark


def _listed(path: str) -> str:
    """`path` as the mark lists it: cut to `_MAX_PATH` characters, or it could outgrow the value it names."""
    return path if len(path) <= _MAX_PATH else path[:_MAX_PATH] + MARK


def _drop_otel_lists(doc: dict[str, object]) -> list[str]:
    """The span's events and links (``metadata.otel``) go, counted in ``otel.dropped``; the kind stays."""
    metadata = doc.get("metadata")
    otel = metadata.get("otel") if isinstance(metadata, dict) else None
    if not isinstance(otel, dict):
        return []
    earlier = otel.get("dropped")
    counts: dict[str, object] = dict(earlier) if isinstance(earlier, dict) else {}
    cut: list[str] = []
    for name in ("events", "links"):
        items = otel.pop(name, None)
        if isinstance(items, list):
            previous = counts.get(name)
            counts[name] = (previous if isinstance(previous, int) else 0) + len(items)
            cut.append(f"metadata/otel/{name}")
    if cut:
        otel["dropped"] = counts
    return cut


def _drop_stacks(doc: dict[str, object]) -> list[str]:
    cause = doc.get("cause")
    dropped = False
    if isinstance(cause, dict):
        for entry in cause.get("exceptions", ()):
            if isinstance(entry, dict) and entry.pop("stack", None) is not None:
                dropped = True
    return ["cause/exceptions/*/stack"] if dropped else []


def _drop_metadata(doc: dict[str, object]) -> list[str]:
    doc["metadata"] = {}
    return ["metadata"]
