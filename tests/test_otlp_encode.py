"""The hand-written OTLP encoder, checked field by field against `opentelemetry-proto` (the oracle)."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan
from opentelemetry.proto.trace.v1.trace_pb2 import Status as PbStatus
from support.otlp_values import attrs
from support.spans import make_span

from nexs_serverless import Link, SpanContext, SpanKind, StatusCode, tracer
from nexs_serverless.exporters._otlp_response import decode_partial_success, iter_fields
from nexs_serverless.exporters.otlp_encode import encode_spans
from nexs_serverless.finished import freeze
from nexs_serverless.model import Event, InstrumentationScope, Resource
from nexs_serverless.runtime import runtime


def decode(data: bytes) -> ExportTraceServiceRequest:
    return ExportTraceServiceRequest.FromString(data)


def all_spans(request: ExportTraceServiceRequest) -> list[Any]:
    return [s for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans]


def test_traced_tree_round_trips() -> None:
    """Ids, parentage, kind, times, attributes, events, links, status and dropped counts survive."""
    remote = SpanContext(0x1234, 0x5678, 1, (("vendor", "abc"), ("other", "x=y")), is_remote=True)
    with tracer.span("parent", kind=SpanKind.SERVER, attributes={"http.route": "/orders"}) as parent:
        with tracer.span(
            "child", kind=SpanKind.CLIENT, links=[Link(remote, {"messaging.id": "m1"})]
        ) as child:
            child.add_event("cache-miss", {"key": "k1", "tries": 2}, timestamp_ns=1_700_000_000_000_000_001)
            child.set_attribute("n", 7)
            child.set_attribute("ratio", 0.5)
            child.set_attribute("ok", False)
            child.set_attribute("tags", ["a", "b"])
            child.set_status(StatusCode.ERROR, "boom")
    spans = runtime.buffer.take_ended()
    request = decode(encode_spans(spans))
    (resource_spans,) = request.resource_spans
    assert attrs(resource_spans.resource.attributes) == dict(spans[0].resource.attributes)
    (scope_spans,) = resource_spans.scope_spans
    assert scope_spans.scope.name == "nexs_serverless"
    assert scope_spans.scope.version == spans[0].instrumentation_scope.version
    by_name = {span.name: span for span in scope_spans.spans}
    got_parent, got_child = by_name["parent"], by_name["child"]
    assert got_parent.trace_id == parent.trace_id.to_bytes(16, "big")
    assert got_parent.span_id == parent.span_id.to_bytes(8, "big")
    assert got_parent.parent_span_id == b""
    assert got_child.parent_span_id == parent.span_id.to_bytes(8, "big")
    assert got_child.trace_id == got_parent.trace_id
    assert got_parent.kind == PbSpan.SPAN_KIND_SERVER
    assert got_child.kind == PbSpan.SPAN_KIND_CLIENT
    assert got_child.start_time_unix_nano == child.start_ns
    assert got_child.end_time_unix_nano == child.end_ns
    assert attrs(got_parent.attributes) == {"http.route": "/orders"}
    assert attrs(got_child.attributes) == {"n": 7, "ratio": 0.5, "ok": False, "tags": ("a", "b")}
    (event,) = got_child.events
    assert event.name == "cache-miss"
    assert event.time_unix_nano == 1_700_000_000_000_000_001
    assert attrs(event.attributes) == {"key": "k1", "tries": 2}
    (link,) = got_child.links
    assert link.trace_id == (0x1234).to_bytes(16, "big")
    assert link.span_id == (0x5678).to_bytes(8, "big")
    assert link.trace_state == "vendor=abc,other=x=y"
    assert attrs(link.attributes) == {"messaging.id": "m1"}
    assert link.flags == 0x301  # sampled, has-is-remote, is-remote
    assert got_child.status.code == PbStatus.STATUS_CODE_ERROR
    assert got_child.status.message == "boom"
    assert not got_parent.HasField("status")


def test_every_kind_maps_to_otlp_kind_plus_one() -> None:
    """OTLP's SpanKind is ours plus one (0 is UNSPECIFIED in OTLP)."""
    spans = [make_span(kind=kind, span_id=kind + 1) for kind in range(5)]
    got = all_spans(decode(encode_spans(spans)))
    assert [span.kind for span in got] == [1, 2, 3, 4, 5]


def test_flags_carry_trace_flags_and_remote_parent() -> None:
    """Span.flags holds the W3C trace flags plus the has-is-remote and is-remote bits."""
    spans = [
        make_span(span_id=1, trace_flags=1, parent_span_id=9, parent_is_remote=True),
        make_span(span_id=2, trace_flags=0),
        make_span(span_id=3, trace_flags=0x81, parent_span_id=9),
    ]
    got = all_spans(decode(encode_spans(spans)))
    assert [span.flags for span in got] == [0x301, 0x100, 0x181]


def test_trace_state_dropped_counts_and_status_ok() -> None:
    """trace_state is serialised w3c-style; dropped counts and an OK status survive."""
    span = make_span(
        trace_state=(("a", "1"), ("b", "2")),
        dropped_attributes=3,
        dropped_events=4,
        dropped_links=5,
        status_code=StatusCode.OK,
        events=(Event("e", 5, {"x": 1}, dropped_attributes=2),),
        links=(Link(SpanContext(1, 2, 0), {}, dropped_attributes=6),),
    )
    (got,) = all_spans(decode(encode_spans([span])))
    assert got.trace_state == "a=1,b=2"
    assert (got.dropped_attributes_count, got.dropped_events_count, got.dropped_links_count) == (3, 4, 5)
    assert got.status.code == PbStatus.STATUS_CODE_OK
    assert got.status.message == ""
    assert got.events[0].dropped_attributes_count == 2
    assert got.links[0].dropped_attributes_count == 6
    assert got.links[0].flags == 0x100


primitives = st.one_of(
    st.text(st.characters(blacklist_categories=("Cs",))),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
)
arrays = st.one_of(
    st.lists(st.text(st.characters(blacklist_categories=("Cs",))), max_size=5).map(tuple),
    st.lists(st.booleans(), max_size=5).map(tuple),
    st.lists(st.integers(min_value=-(2**63), max_value=2**63 - 1), max_size=5).map(tuple),
    st.lists(st.floats(allow_nan=False), max_size=5).map(tuple),
)
attribute_maps = st.dictionaries(
    st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=20),
    st.one_of(primitives, arrays),
    max_size=8,
)


@settings(max_examples=60, deadline=None)
@given(span_attrs=attribute_maps, event_attrs=attribute_maps, link_attrs=attribute_maps, name=st.text())
def test_generated_attributes_round_trip(
    span_attrs: dict[str, Any], event_attrs: dict[str, Any], link_attrs: dict[str, Any], name: str
) -> None:
    """Any attribute map of OpenTelemetry types decodes to the same values, on spans, events and links."""
    name = name.encode("utf-8", "replace").decode()
    span = make_span(
        name=name,
        attributes=span_attrs,
        events=(Event("e", 1, event_attrs),),
        links=(Link(SpanContext(3, 4), link_attrs),),
    )
    (got,) = all_spans(decode(encode_spans([span])))
    assert got.name == name
    assert attrs(got.attributes) == span_attrs
    assert attrs(got.events[0].attributes) == event_attrs
    assert attrs(got.links[0].attributes) == link_attrs
    assert [kv.key for kv in got.attributes] == list(span_attrs)  # order kept


def test_repeated_string_attributes_use_the_cache_correctly() -> None:
    """A cached string attribute is not confused with a bool or int of the same key."""
    spans = [
        make_span(span_id=1, attributes={"k": "True"}),
        make_span(span_id=2, attributes={"k": True}),
        make_span(span_id=3, attributes={"k": "True"}),
        make_span(span_id=4, attributes={"k": 1}),
    ]
    got = all_spans(decode(encode_spans(spans)))
    assert [attrs(span.attributes)["k"] for span in got] == ["True", True, "True", 1]
    assert [type(attrs(span.attributes)["k"]) for span in got] == [str, bool, str, int]


def test_a_key_whose_values_never_repeat_stops_filling_the_cache() -> None:
    """Ids are encoded right every time, but only the first values of their key are cached."""
    from nexs_serverless.exporters import otlp_encode

    otlp_encode._attr_cache.clear()
    otlp_encode._key_misses.clear()
    limit = otlp_encode._KEY_MISS_LIMIT
    spans = [
        make_span(span_id=index + 1, attributes={"order.id": f"o-{index}", "http.method": "GET"})
        for index in range(limit + 50)
    ]
    got = all_spans(decode(encode_spans(spans)))
    assert [attrs(span.attributes) for span in got] == [
        {"order.id": f"o-{index}", "http.method": "GET"} for index in range(limit + 50)
    ]
    cached_ids = [value for key, value in otlp_encode._attr_cache if key == "order.id"]
    assert len(cached_ids) == limit
    assert ("http.method", "GET") in otlp_encode._attr_cache  # a repeating value stays cached


def test_a_full_cache_is_cleared_and_every_key_may_fill_it_again() -> None:
    """Clearing bounds memory; the per-key counts go with it, so no key is shut out for good."""
    from nexs_serverless.exporters import otlp_encode

    otlp_encode._attr_cache.clear()
    otlp_encode._key_misses.clear()
    limit = otlp_encode._KEY_MISS_LIMIT
    keys = otlp_encode._KV_CACHE_MAX // limit
    spans = [
        make_span(span_id=1 + key * limit + index, attributes={f"k{key}": f"v{index}"})
        for key in range(keys)
        for index in range(limit)
    ]
    encode_spans(spans)
    assert len(otlp_encode._attr_cache) == otlp_encode._KV_CACHE_MAX
    spent = make_span(span_id=10**6, attributes={"k0": "more"})  # k0 has used its share
    assert attrs(all_spans(decode(encode_spans([spent])))[0].attributes) == {"k0": "more"}
    assert ("k0", "more") not in otlp_encode._attr_cache
    assert len(otlp_encode._attr_cache) == otlp_encode._KV_CACHE_MAX
    other = make_span(span_id=10**6 + 1, attributes={"other": "fresh"})
    assert attrs(all_spans(decode(encode_spans([other])))[0].attributes) == {"other": "fresh"}
    assert list(otlp_encode._attr_cache) == [("other", "fresh")]
    encode_spans([spent])
    assert ("k0", "more") in otlp_encode._attr_cache
    assert otlp_encode._key_misses == {"other": 1, "k0": 1}


def test_unencodable_values_are_converted_not_raised() -> None:
    """Ints beyond int64 become digits, lone surrogates become '?', bytes and maps keep their type."""
    span = make_span(
        name="bad\ud800name",
        attributes={
            "big": 2**70,
            "neg": -(2**70),
            "raw": b"\x00\x01",
            "map": {"a": 1, "b": "x"},
            "obj": object.__new__(type("Thing", (), {"__str__": lambda self: "thing"})),
            "nan": math.inf,
        },
    )
    (got,) = all_spans(decode(encode_spans([span])))
    assert got.name == "bad?name"
    values = attrs(got.attributes)
    assert values["big"] == str(2**70)
    assert values["neg"] == str(-(2**70))
    assert values["raw"] == b"\x00\x01"
    assert values["map"] == {"a": 1, "b": "x"}
    assert values["obj"] == "thing"
    assert values["nan"] == math.inf


def test_spans_of_different_resources_are_grouped() -> None:
    """Spans are grouped by resource, then scope, keeping their order inside a group."""
    first, second = Resource({"service.name": "a"}), Resource({"service.name": "b"})
    scope_a, scope_b = InstrumentationScope("lib-a", "1"), InstrumentationScope("lib-b", "")
    spans = [
        make_span(span_id=1, resource=first, instrumentation_scope=scope_a),
        make_span(span_id=2, resource=second, instrumentation_scope=scope_a),
        make_span(span_id=3, resource=first, instrumentation_scope=scope_b),
        make_span(span_id=4, resource=first, instrumentation_scope=scope_a),
    ]
    request = decode(encode_spans(spans))
    shape = [
        (
            attrs(rs.resource.attributes)["service.name"],
            [
                (ss.scope.name, ss.scope.version, [int.from_bytes(s.span_id, "big") for s in ss.spans])
                for ss in rs.scope_spans
            ],
        )
        for rs in request.resource_spans
    ]
    assert shape == [
        ("a", [("lib-a", "1", [1, 4]), ("lib-b", "", [3])]),
        ("b", [("lib-a", "1", [2])]),
    ]


def test_live_and_frozen_spans_encode_the_same() -> None:
    """A pooled record and its `freeze` copy produce identical bytes."""
    with tracer.span("op", attributes={"a": 1, "b": "two"}) as span:
        span.add_event("e")
    (live,) = runtime.buffer.take_ended()
    assert encode_spans([live]) == encode_spans([freeze(live)])


def test_empty_batch_is_an_empty_request() -> None:
    """No spans: zero bytes, which decodes as an empty request."""
    assert encode_spans([]) == b""
    assert len(decode(b"").resource_spans) == 0


def test_partial_success_is_read() -> None:
    """rejected_spans and error_message come out of an ExportTraceServiceResponse."""
    body = ExportTraceServiceResponse(
        partial_success=ExportTracePartialSuccess(rejected_spans=3, error_message="too old")
    ).SerializeToString()
    assert decode_partial_success(body) == (3, "too old")
    assert decode_partial_success(b"") == (0, "")


def test_malformed_response_raises_value_error() -> None:
    """A body that is not protobuf raises ValueError (the exporter counts it, never crashes)."""
    with pytest.raises(ValueError):
        decode_partial_success(b"\x0a\xff\xff\xff\xff\x0f")
    with pytest.raises(ValueError):
        list(iter_fields(b"\x0f"))  # wire type 7
