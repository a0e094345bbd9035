"""OTLP protobuf, written by hand: our spans to ``ExportTraceServiceRequest`` bytes.

Why not `opentelemetry-proto`: importing `google.protobuf` costs tens of
milliseconds, and the OpenTelemetry SDK's encoder spends about 5 ms on 100
spans because it builds a message object per span, attribute and value. The
wire format is simple enough to write directly: each message is its fields'
bytes, each nested message is a tag, a varint length and its bytes. The tests
decode every output with `opentelemetry-proto` and compare field by field.

Field numbers follow ``opentelemetry/proto/trace/v1/trace.proto``,
``common/v1/common.proto`` and ``collector/trace/v1/trace_service.proto``.
Values the wire format cannot carry are converted, never raised: an integer
outside int64 and an unknown type become strings, invalid UTF-8 is replaced.

Reading answers (`decode_partial_success`, `iter_fields`) lives in
`_otlp_response` and splitting a batch too big for one request
(`split_spans`) in `_otlp_split`: a successful export runs neither, so a cold
start does not load them. Both stay importable from here.
"""

from __future__ import annotations

import struct

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from ..model import Event, InstrumentationScope, Link, Resource
    from ..typing import ReadableSpan

__all__ = ["encode_spans"]

_pack_u64 = struct.Struct("<Q").pack
_pack_u32 = struct.Struct("<I").pack
_pack_double = struct.Struct("<d").pack
# Span.start_time_unix_nano (field 7) and end_time_unix_nano (field 8), both fixed64.
_pack_times = struct.Struct("<BQBQ").pack

_SMALL = tuple(bytes((n,)) for n in range(128))
_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1
_HAS_IS_REMOTE = 0x100  # SpanFlags.SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK
_IS_REMOTE = 0x200  # SpanFlags.SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK
_KINDS = (b"\x30\x01", b"\x30\x02", b"\x30\x03", b"\x30\x04", b"\x30\x05")  # OTLP kind = ours + 1
# Span.flags (field 16, fixed32) for trace flags 0/1, with and without a remote parent.
_FLAGS = {flags: b"\x85\x01" + struct.pack("<I", flags) for flags in (0x100, 0x101, 0x300, 0x301)}

# Encoded span attribute fields of string values seen before: most values repeat
# across spans and invocations (routes, methods, names). Bounded; cleared when full.
_KV_CACHE_MAX = 4096
_KV_CACHEABLE_LENGTH = 128
_attr_cache: dict[tuple[str, str], bytes] = {}
# Values of some keys never repeat (order ids, request ids): caching each one costs more
# than encoding it (about 1 us more per value here, bench_export.py's fresh batches), and
# their churn would clear the values that do repeat. A key stops being cached once it has
# added this many values since the cache was last cleared.
_KEY_MISS_LIMIT = 256
_key_misses: dict[str, int] = {}
_key_cache: dict[str, bytes] = {}
# Resource and scope encodings, by identity (both are immutable and few).
_resource_cache: dict[int, tuple[object, bytes]] = {}


def _varint(value: int) -> bytes:
    if value < 0x80:
        return _SMALL[value]
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _utf8(text: str) -> bytes:
    # "replace": lone surrogates become "?", since protobuf strings must be valid UTF-8.
    return text.encode("utf-8", "replace")


def _string(tag: bytes, text: str) -> bytes:
    data = _utf8(text)
    return tag + _varint(len(data)) + data


def _any_value(value: object) -> bytes:
    """An ``AnyValue`` message body."""
    t = type(value)
    if t is str:
        return _string(b"\x0a", value)  # type: ignore[arg-type]
    if t is bool:
        return b"\x10\x01" if value else b"\x10\x00"
    if t is int:
        number: int = value  # type: ignore[assignment]
        if 0 <= number <= _INT64_MAX:
            return b"\x18" + _varint(number)
        if _INT64_MIN <= number < 0:
            return b"\x18" + _varint(number + (1 << 64))
        return _string(b"\x0a", str(number))  # beyond int64: keep the digits
    if t is float:
        return b"\x21" + _pack_double(value)
    if t is tuple or t is list:
        items = [_any_value(item) for item in value]  # type: ignore[attr-defined]
        body = b"".join([b"\x0a" + _varint(len(item)) + item for item in items])
        return b"\x2a" + _varint(len(body)) + body
    return _any_value_slow(value)


def _any_value_slow(value: object) -> bytes:
    if isinstance(value, (bytes, bytearray)):
        return b"\x3a" + _varint(len(value)) + bytes(value)
    for base in (bool, int, float, str):  # subclasses (IntEnum, str enums)
        if isinstance(value, base):
            return _any_value(base(value))
    if isinstance(value, (tuple, list)):
        return _any_value(list(value))
    if hasattr(value, "items"):
        body = _attributes(b"\x0a", value)  # type: ignore[arg-type]
        return b"\x32" + _varint(len(body)) + body
    try:
        text = str(value)
    except Exception:
        text = f"<unprintable {type(value).__name__}>"
    return _string(b"\x0a", text)


def _key_value(key: str, value: object) -> bytes:
    """A ``KeyValue`` message body."""
    if type(value) is str:
        return _string(b"\x0a", key) + b"\x12" + _string_any(value)
    any_value = _any_value(value)
    return _string(b"\x0a", str(key)) + b"\x12" + _varint(len(any_value)) + any_value


def _key_prefix(key: str) -> bytes:
    """``KeyValue.key`` (field 1) with its tag and length, cached per key."""
    prefix = _string(b"\x0a", str(key))
    if len(_key_cache) >= _KV_CACHE_MAX:
        _key_cache.clear()
    _key_cache[key] = prefix
    return prefix


def _string_any(value: str) -> bytes:
    """Length-prefixed ``AnyValue{string_value}`` (the length and the body)."""
    data = _utf8(value)
    length = _varint(len(data))
    return _varint(len(data) + 1 + len(length)) + b"\x0a" + length + data


def _attributes(tag: bytes, attributes: Mapping[str, object]) -> bytes:
    """Repeated ``KeyValue`` fields with field tag `tag`."""
    parts = []
    for key, value in attributes.items():
        kv = _key_value(key, value)
        parts.append(tag + _varint(len(kv)) + kv)
    return b"".join(parts)


def _trace_state(state: tuple[tuple[str, str], ...]) -> str:
    return ",".join([key + "=" + value for key, value in state])


def _event(event: Event) -> bytes:
    body = b"\x09" + _pack_u64(event.timestamp_ns) + _string(b"\x12", event.name)
    if event.attributes:
        body += _attributes(b"\x1a", event.attributes)
    if event.dropped_attributes:
        body += b"\x20" + _varint(event.dropped_attributes)
    return b"\x5a" + _varint(len(body)) + body


def _link(link: Link) -> bytes:
    context = link.context
    body = (
        b"\x0a\x10" + context.trace_id.to_bytes(16, "big") + b"\x12\x08" + context.span_id.to_bytes(8, "big")
    )
    if context.trace_state:
        body += _string(b"\x1a", _trace_state(context.trace_state))
    if link.attributes:
        body += _attributes(b"\x22", link.attributes)
    if link.dropped_attributes:
        body += b"\x28" + _varint(link.dropped_attributes)
    flags = (context.trace_flags & 0xFF) | _HAS_IS_REMOTE | (_IS_REMOTE if context.is_remote else 0)
    body += b"\x35" + _pack_u32(flags)
    return b"\x6a" + _varint(len(body)) + body


def _span(span: ReadableSpan) -> bytes:
    """A ``Span`` message, tag and length included (field 2 of ``ScopeSpans``).

    The hot loop of the encoder: common cases are inlined (lengths under 128,
    string attributes seen before, int/bool/float values).
    """
    small = _SMALL
    name = span.name.encode("utf-8", "replace")
    size = len(name)
    parts = [
        b"\x0a\x10",
        span.trace_id.to_bytes(16, "big"),
        b"\x12\x08",
        span.span_id.to_bytes(8, "big"),
    ]
    if span.trace_state:
        parts.append(_string(b"\x1a", _trace_state(span.trace_state)))
    if span.parent_span_id:
        parts.append(b"\x22\x08" + span.parent_span_id.to_bytes(8, "big"))
    parts.append(b"\x2a" + (small[size] if size < 128 else _varint(size)) + name)
    kind = span.kind
    if 0 <= kind < 5:
        parts.append(_KINDS[kind])
    parts.append(_pack_times(0x39, span.start_ns, 0x41, span.end_ns))
    attributes = span.attributes
    if attributes:
        cache = _attr_cache
        keys = _key_cache
        for key, value in attributes.items():
            t = type(value)
            if t is str:
                field = cache.get((key, value))  # type: ignore[arg-type]
                if field is None:
                    field = _cached_attribute(key, value)  # type: ignore[arg-type]
                parts.append(field)
                continue
            prefix = keys.get(key)
            if prefix is None:
                prefix = _key_prefix(key)
            if t is int and 0 <= value < 128:  # type: ignore[operator]
                kv = prefix + b"\x12\x02\x18" + small[value]  # type: ignore[index]
            elif t is bool:
                kv = prefix + (b"\x12\x02\x10\x01" if value else b"\x12\x02\x10\x00")
            elif t is float:
                kv = prefix + b"\x12\x09\x21" + _pack_double(value)
            else:
                any_value = _any_value(value)
                kv = prefix + b"\x12" + _varint(len(any_value)) + any_value
            size = len(kv)
            parts.append(b"\x4a" + (small[size] if size < 128 else _varint(size)) + kv)
    if span.dropped_attributes:
        parts.append(b"\x50" + _varint(span.dropped_attributes))
    if span.events:
        parts.extend([_event(event) for event in span.events])
    if span.dropped_events:
        parts.append(b"\x60" + _varint(span.dropped_events))
    if span.links:
        parts.extend([_link(link) for link in span.links])
    if span.dropped_links:
        parts.append(b"\x70" + _varint(span.dropped_links))
    code = span.status_code
    description = span.status_description
    if code or description:
        status = (_string(b"\x12", description) if description else b"") + (
            b"\x18" + _varint(code) if code else b""
        )
        parts.append(b"\x7a" + _varint(len(status)) + status)
    parts.append(
        _FLAGS[(span.trace_flags & 0xFF) | _HAS_IS_REMOTE | (_IS_REMOTE if span.parent_is_remote else 0)]
        if span.trace_flags < 2
        else b"\x85\x01"
        + _pack_u32((span.trace_flags & 0xFF) | _HAS_IS_REMOTE | (_IS_REMOTE if span.parent_is_remote else 0))
    )
    body = b"".join(parts)
    size = len(body)
    return b"\x12" + (small[size] if size < 128 else _varint(size)) + body


def _cached_attribute(key: str, value: str) -> bytes:
    """A span's string attribute as a whole field (tag 9, length, ``KeyValue``), cached."""
    kv = _key_value(key, value)
    field = b"\x4a" + _varint(len(kv)) + kv
    if len(value) <= _KV_CACHEABLE_LENGTH:
        added = _key_misses.get(key, 0)
        if added < _KEY_MISS_LIMIT:
            if len(_attr_cache) >= _KV_CACHE_MAX:
                _attr_cache.clear()
                _key_misses.clear()  # every key gets its chance again, and this stays bounded
                added = 0
            _key_misses[key] = added + 1
            _attr_cache[(key, value)] = field
    return field


def _resource(resource: Resource) -> bytes:
    """``ResourceSpans.resource`` (field 1), tag and length included; cached by identity."""
    cached = _resource_cache.get(id(resource))
    if cached is not None and cached[0] is resource:
        return cached[1]
    body = _attributes(b"\x0a", resource.attributes)
    encoded = b"\x0a" + _varint(len(body)) + body
    if len(_resource_cache) >= 16:
        _resource_cache.clear()
    _resource_cache[id(resource)] = (resource, encoded)
    return encoded


def _scope(scope: InstrumentationScope) -> bytes:
    """``ScopeSpans.scope`` (field 1), tag and length included."""
    body = (_string(b"\x0a", scope.name) if scope.name else b"") + (
        _string(b"\x12", scope.version) if scope.version else b""
    )
    return b"\x0a" + _varint(len(body)) + body


def encode_spans(spans: Sequence[ReadableSpan]) -> bytes:
    """Serialize `spans` as one ``ExportTraceServiceRequest``.

    Spans are grouped by resource and instrumentation scope (by identity: a
    process has one of each, so this is one group in practice), in the order
    they first appear; within a group the spans keep their order.
    """
    groups: dict[tuple[int, int], tuple[Resource, InstrumentationScope, list[bytes]]] = {}
    last_key: tuple[int, int] | None = None
    last_parts: list[bytes] = []
    for span in spans:
        resource = span.resource
        scope = span.instrumentation_scope
        key = (id(resource), id(scope))
        if key != last_key:
            group = groups.get(key)
            if group is None:
                group = groups[key] = (resource, scope, [])
            last_key = key
            last_parts = group[2]
        last_parts.append(_span(span))
    return _request(groups)


def _request(groups: dict[tuple[int, int], tuple[Resource, InstrumentationScope, list[bytes]]]) -> bytes:
    """The ``ExportTraceServiceRequest`` holding each group's encoded spans."""
    by_resource: dict[int, tuple[Resource, list[bytes]]] = {}
    for resource, scope, encoded in groups.values():
        scope_body = _scope(scope) + b"".join(encoded)
        entry = by_resource.setdefault(id(resource), (resource, []))
        entry[1].append(b"\x12" + _varint(len(scope_body)) + scope_body)
    out = []
    for resource, scope_spans in by_resource.values():
        body = _resource(resource) + b"".join(scope_spans)
        out.append(b"\x0a" + _varint(len(body)) + body)
    return b"".join(out)
