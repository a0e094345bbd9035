"""Spans as X-Ray segment documents: ids, placement, flags, cause, annotations, blocks."""

from __future__ import annotations

import pytest
from support.exporter_spans import SPAN_ID, START_NS, TRACE_ID, exception_event, link_to, make_span

from nexs_serverless.exporters.xray_segments import (
    MAX_ANNOTATIONS,
    LambdaSegment,
    SegmentOptions,
    parse_trace_header,
    to_document,
    xray_trace_id,
)
from nexs_serverless.model import Event, SpanKind, StatusCode

ROOT = "1-5759e988-bd862e3fe1be46a994272793"
LAMBDA_PARENT = "0102030405060708"


def _lambda(sampled: bool = True, trace_id: int = TRACE_ID) -> SegmentOptions:
    return SegmentOptions(in_lambda=True, lambda_segment=LambdaSegment(trace_id, LAMBDA_PARENT, sampled))


def test_trace_id_is_split_after_eight_hex_digits() -> None:
    """The 128-bit id reads 1-<8 hex>-<24 hex>, the first part being X-Ray's epoch-seconds field."""
    assert xray_trace_id(TRACE_ID) == ROOT
    assert xray_trace_id(1) == "1-00000000-000000000000000000000001"


def test_ids_and_times_are_in_x_ray_units() -> None:
    """Document id is the span id in 16 hex digits; times are float epoch seconds."""
    doc = to_document(make_span(), SegmentOptions())
    assert doc["id"] == f"{SPAN_ID:016x}"
    assert doc["trace_id"] == ROOT
    assert doc["start_time"] == pytest.approx(START_NS / 1e9)
    assert doc["end_time"] == pytest.approx((START_NS + 25_000_000) / 1e9)


def test_outside_lambda_a_local_root_is_a_segment_named_after_the_service() -> None:
    """A root span becomes a segment: service name, origin from cloud.platform, SDK block, span name kept."""
    doc = to_document(make_span(kind=SpanKind.SERVER), SegmentOptions())
    assert "type" not in doc
    assert "parent_id" not in doc
    assert doc["name"] == "orders"
    assert doc["origin"] == "AWS::Lambda::Function"
    assert doc["aws"] == {"xray": {"sdk": "nexs_serverless", "sdk_version": "0.1.0"}}
    assert doc["metadata"]["otel"]["span_name"] == "GET /orders"  # type: ignore[index]


def test_a_local_child_is_a_subsegment_of_its_parent() -> None:
    """A span with a local parent is an independent subsegment pointing at the parent's id."""
    doc = to_document(make_span(parent_span_id=0xAB, name="load"), SegmentOptions())
    assert doc["type"] == "subsegment"
    assert doc["parent_id"] == f"{0xAB:016x}"
    assert doc["name"] == "load"


def test_outside_lambda_a_remote_parent_makes_a_segment_with_parent_id() -> None:
    """A server span continuing a remote trace is this service's segment, linked to the caller."""
    doc = to_document(make_span(parent_span_id=0xCD, parent_is_remote=True), SegmentOptions())
    assert "type" not in doc
    assert doc["parent_id"] == f"{0xCD:016x}"


def test_in_lambda_a_remote_parent_is_the_function_segment() -> None:
    """Inside Lambda the invocation span hangs under the function segment Lambda records."""
    span = make_span(parent_span_id=int(LAMBDA_PARENT, 16), parent_is_remote=True, kind=SpanKind.SERVER)
    doc = to_document(span, _lambda())
    assert doc["type"] == "subsegment"
    assert doc["parent_id"] == LAMBDA_PARENT
    assert doc["name"] == "GET /orders"


def test_in_lambda_a_local_root_of_the_invocation_trace_adopts_the_function_segment() -> None:
    """A root span in the trace named by _X_AMZN_TRACE_ID becomes a subsegment of its Parent."""
    doc = to_document(make_span(), _lambda())
    assert doc["type"] == "subsegment"
    assert doc["parent_id"] == LAMBDA_PARENT


def test_in_an_unsampled_invocation_roots_stay_segments() -> None:
    """When Lambda did not record its segment (Sampled=0), subsegments would be orphans: segments instead."""
    span = make_span(parent_span_id=int(LAMBDA_PARENT, 16), parent_is_remote=True)
    assert "type" not in to_document(span, _lambda(sampled=False))
    assert "type" not in to_document(make_span(), _lambda(sampled=False))


def test_a_root_of_another_trace_is_not_attached_to_this_invocation() -> None:
    """A local root whose trace differs from the invocation's (e.g. carried over) stays a segment."""
    doc = to_document(make_span(trace_id=TRACE_ID + 1), _lambda())
    assert "type" not in doc
    assert "parent_id" not in doc


def test_in_lambda_a_remote_parent_of_another_trace_makes_a_segment() -> None:
    """A caller's traceparent (not the invocation's trace) gives a segment linked to it, as outside Lambda."""
    span = make_span(trace_id=TRACE_ID + 1, parent_span_id=0xCD, parent_is_remote=True, kind=SpanKind.SERVER)
    doc = to_document(span, _lambda())
    assert "type" not in doc
    assert (doc["parent_id"], doc["name"]) == (f"{0xCD:016x}", "orders")


def test_in_lambda_a_remote_parent_of_the_invocation_trace_hangs_under_the_function_segment() -> None:
    """A remote parent in the invocation's trace (e.g. the caller's) yields to the function segment."""
    span = make_span(parent_span_id=0xCD, parent_is_remote=True, kind=SpanKind.SERVER)
    doc = to_document(span, _lambda())
    assert (doc["type"], doc["parent_id"]) == ("subsegment", LAMBDA_PARENT)


@pytest.mark.parametrize(
    ("status", "span_status", "flags"),
    [
        (429, StatusCode.UNSET, {"throttle": True, "error": True}),
        (404, StatusCode.UNSET, {"error": True}),
        (404, StatusCode.ERROR, {"error": True}),
        (503, StatusCode.UNSET, {"fault": True}),
        (200, StatusCode.ERROR, {"fault": True}),
        (None, StatusCode.ERROR, {"fault": True}),
        (200, StatusCode.OK, {}),
    ],
)
def test_fault_error_and_throttle_flags(status: int | None, span_status: int, flags: dict[str, bool]) -> None:
    """Flags follow X-Ray: 429 throttle+error, 4xx error, 5xx or status ERROR fault."""
    attrs = {} if status is None else {"http.response.status_code": status}
    doc = to_document(make_span(attributes=attrs, status_code=span_status), SegmentOptions())
    assert {key: doc[key] for key in ("fault", "error", "throttle") if key in doc} == flags


def test_cause_lists_exception_events_with_parsed_stack() -> None:
    """Each exception event becomes an exception with type, message and frames, most recent first."""
    span = make_span(
        events=(exception_event(ValueError("bad order")),), status_code=StatusCode.ERROR, kind=SpanKind.CLIENT
    )
    doc = to_document(span, SegmentOptions())
    [entry] = doc["cause"]["exceptions"]  # type: ignore[index]
    assert entry["type"] == "ValueError"
    assert entry["message"] == "bad order"
    assert entry["remote"] is True
    assert len(entry["id"]) == 16
    top = entry["stack"][0]
    assert top["path"].endswith("exporter_spans.py")
    assert top["label"] == "exception_event"
    assert isinstance(top["line"], int)
    assert doc["fault"] is True


def test_cause_falls_back_to_the_status_description() -> None:
    """An ERROR span without exception events still says why, from its status description."""
    doc = to_document(make_span(status_code=StatusCode.ERROR, status_description="timeout"), SegmentOptions())
    assert doc["cause"]["exceptions"][0]["message"] == "timeout"  # type: ignore[index]


def test_exception_ids_are_stable_for_the_same_span() -> None:
    """Sending a span twice gives the same exception ids (X-Ray keeps one document per id)."""
    span = make_span(events=(exception_event(KeyError("k")),))
    first = to_document(span, SegmentOptions())["cause"]
    assert to_document(span, SegmentOptions())["cause"] == first


def test_configured_attributes_become_annotations_and_leave_metadata() -> None:
    """Only listed keys are indexed, with X-Ray-safe names; the rest goes to metadata.default."""
    span = make_span(attributes={"order.id": "42", "tenant": "acme", "tags": ("a", "b"), "other": 1})
    doc = to_document(span, SegmentOptions(("order.id", "tags", "missing")))
    assert doc["annotations"] == {"order_id": "42"}
    assert doc["metadata"]["default"] == {"tenant": "acme", "tags": ["a", "b"], "other": 1}  # type: ignore[index]


def test_star_annotates_every_scalar_attribute_up_to_the_limit() -> None:
    """NEXS_XRAY_ANNOTATION_KEYS=* indexes scalar attributes, at most 50 per document."""
    attrs = {f"k{i}": i for i in range(60)}
    doc = to_document(make_span(attributes=attrs), SegmentOptions(("*",)))
    assert len(doc["annotations"]) == MAX_ANNOTATIONS  # type: ignore[arg-type]
    assert len(doc["metadata"]["default"]) == 10  # type: ignore[index,arg-type]


def test_annotation_keys_keep_only_ascii_letters_digits_and_underscore() -> None:
    """X-Ray refuses non-ASCII annotation keys, so every other character becomes an underscore."""
    doc = to_document(make_span(attributes={"größe": 3, "x²": 1}), SegmentOptions(("*",)))
    assert doc["annotations"] == {"gr__e": 3, "x_": 1}


def test_attributes_whose_keys_clean_alike_keep_both_values() -> None:
    """The first such key is the annotation; the other's value stays in metadata instead of being lost."""
    doc = to_document(make_span(attributes={"order.id": "A", "order_id": "B"}), SegmentOptions(("*",)))
    assert doc["annotations"] == {"order_id": "A"}
    assert doc["metadata"]["default"] == {"order_id": "B"}  # type: ignore[index]


@pytest.mark.parametrize(
    "attributes",
    [
        {"http.request.method": "GET", "server.address": "api.example.com"},
        {"http.method": "GET", "http.target": "/orders?id=7"},
    ],
)
def test_server_url_parts_that_make_no_url_stay_in_metadata(attributes: dict[str, str]) -> None:
    """A host without a path (or a target without a host) builds no URL, so it is kept as metadata."""
    doc = to_document(make_span(kind=SpanKind.SERVER, attributes=attributes), SegmentOptions())
    assert doc["http"] == {"request": {"method": "GET"}}
    [(key, value)] = [
        item for item in attributes.items() if item[0] not in ("http.method", "http.request.method")
    ]
    assert doc["metadata"]["default"] == {key: value}  # type: ignore[index]


def test_server_http_block_is_built_from_semantic_conventions() -> None:
    """A server span gets http.request (method, url from parts, user agent, client ip) and response."""
    span = make_span(
        kind=SpanKind.SERVER,
        attributes={
            "http.request.method": "POST",
            "url.scheme": "https",
            "server.address": "api.example.com",
            "url.path": "/orders",
            "url.query": "x=1",
            "user_agent.original": "curl/8",
            "client.address": "10.0.0.1",
            "http.response.status_code": 201,
            "http.response.body.size": 12,
        },
    )
    doc = to_document(span, SegmentOptions())
    assert doc["http"] == {
        "request": {
            "method": "POST",
            "url": "https://api.example.com/orders?x=1",
            "user_agent": "curl/8",
            "client_ip": "10.0.0.1",
        },
        "response": {"status": 201, "content_length": 12},
    }
    assert "default" not in doc["metadata"]  # type: ignore[operator]


def test_aws_sdk_calls_are_named_after_the_service_in_namespace_aws() -> None:
    """A CLIENT span with rpc.system=aws-api shows as the AWS service, with the aws block."""
    span = make_span(
        kind=SpanKind.CLIENT,
        name="DynamoDB.GetItem",
        parent_span_id=0xAB,
        attributes={
            "rpc.system": "aws-api",
            "rpc.service": "DynamoDB",
            "rpc.method": "GetItem",
            "aws.region": "eu-west-1",
            "aws.request_id": "REQ1",
            "aws.dynamodb.table_names": ("orders",),
        },
    )
    doc = to_document(span, SegmentOptions())
    assert doc["name"] == "DynamoDB"
    assert doc["namespace"] == "aws"
    assert doc["aws"] == {
        "operation": "GetItem",
        "region": "eu-west-1",
        "request_id": "REQ1",
        "table_name": "orders",
    }


def test_other_downstream_calls_are_remote_and_named_after_the_peer() -> None:
    """An HTTP client span is named after the host it called, in namespace remote."""
    span = make_span(
        kind=SpanKind.CLIENT,
        parent_span_id=0xAB,
        attributes={"http.request.method": "GET", "url.full": "https://user@payments.example.com:8443/pay?x"},
    )
    doc = to_document(span, SegmentOptions())
    assert doc["name"] == "payments.example.com:8443"
    assert doc["namespace"] == "remote"
    assert doc["http"]["request"]["url"] == "https://user@payments.example.com:8443/pay?x"  # type: ignore[index]


def test_database_calls_get_a_sql_block() -> None:
    """db.* attributes become the sql block and the call is remote."""
    span = make_span(
        kind=SpanKind.CLIENT,
        parent_span_id=0xAB,
        attributes={"db.system": "postgresql", "db.query.text": "SELECT 1", "db.user": "app"},
    )
    doc = to_document(span, SegmentOptions())
    assert doc["sql"] == {"database_type": "postgresql", "sanitized_query": "SELECT 1", "user": "app"}
    assert doc["namespace"] == "remote"
    assert doc["name"] == "postgresql"


def test_names_are_cleaned_to_x_rays_character_set_and_length() -> None:
    """Characters X-Ray refuses become _, and names stop at 200 characters."""
    doc = to_document(make_span(parent_span_id=1, name="a<b>{c}" + "x" * 300), SegmentOptions())
    name = str(doc["name"])
    assert name.startswith("a_b__c_")
    assert len(name) == 200


def test_events_links_and_dropped_counts_go_to_otel_metadata() -> None:
    """What X-Ray has no field for is kept under metadata.otel."""
    span = make_span(
        events=(Event("cache.miss", START_NS + 10, {"key": "k"}),),
        links=(link_to(0xABC, 0xDEF, reason="batch"),),
        dropped_attributes=3,
        force_ended=True,
    )
    otel = to_document(span, SegmentOptions())["metadata"]["otel"]  # type: ignore[index]
    assert otel["events"] == [
        {"name": "cache.miss", "time": pytest.approx((START_NS + 10) / 1e9), "attributes": {"key": "k"}}
    ]
    assert otel["links"] == [
        {"trace_id": xray_trace_id(0xABC), "id": f"{0xDEF:016x}", "attributes": {"reason": "batch"}}
    ]
    assert otel["dropped"] == {"attributes": 3}
    assert otel["force_ended"] is True


def test_non_finite_floats_stay_valid_json() -> None:
    """NaN and infinities in metadata are written as strings (JSON has no NaN)."""
    doc = to_document(make_span(attributes={"x": float("nan"), "y": (1.0, float("inf"))}), SegmentOptions())
    assert doc["metadata"]["default"] == {"x": "nan", "y": [1.0, "inf"]}  # type: ignore[index]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1", (TRACE_ID, True)),
        (
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995C3F42CD8AD8;Sampled=0;Lineage=a:1",
            (TRACE_ID, False),
        ),
        ("Parent=53995c3f42cd8ad8;Root=1-5759e988-bd862e3fe1be46a994272793", (TRACE_ID, False)),
    ],
)
def test_parse_trace_header_reads_root_parent_and_sampled(header: str, expected: tuple[int, bool]) -> None:
    """_X_AMZN_TRACE_ID gives the invocation's trace, the function segment id and the sampled flag."""
    segment = parse_trace_header(header)
    assert segment is not None
    assert (segment.trace_id, segment.sampled) == expected
    assert segment.parent_id == "53995c3f42cd8ad8"


@pytest.mark.parametrize(
    "header",
    [
        "",
        "Root=1-5759e988-bd862e3fe1be46a994272793",
        "Root=2-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8",
        "Root=1-5759e988-bd86;Parent=53995c3f42cd8ad8",
        "Root=1-00000000-000000000000000000000000;Parent=53995c3f42cd8ad8",
        "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=0000000000000000",
    ],
)
def test_parse_trace_header_rejects_malformed_values(header: str) -> None:
    """Anything but a well-formed Root and Parent gives None."""
    assert parse_trace_header(header) is None
