"""The X-Ray exporters against the segment document schema, the daemon's UDP protocol and PutTraceSegments.

Documents are received by a UDP socket on 127.0.0.1 standing in for the daemon
(`support.xray_daemon`), or stored by moto in server mode and read back with
``BatchGetTraces``; `assert_valid` checks each one against the rules of the
segment document reference (ids, names, times, annotations, subsegments,
exceptions) that moto does not check.
"""

from __future__ import annotations

import json
import re
import secrets
import time
import traceback
from pathlib import Path
from typing import Any

import pytest
from support.canned_http import LocalServer, Reply, Request
from support.exporter_spans import START_NS, TRACE_ID, exception_event_of, make_span
from support.xray_daemon import HEADER, Datagram, FakeXRayDaemon, nested, walk
from support.xray_stored import stored_traces

from nexs_serverless import _stats
from nexs_serverless.exporters import ExportResult, xray_fit
from nexs_serverless.exporters.base import outcome
from nexs_serverless.exporters.errors import ErrorClass, ExportError
from nexs_serverless.exporters.xray_fit import MARK, MAX_LISTED
from nexs_serverless.exporters.xray_segments import SegmentOptions, to_document, xray_trace_id
from nexs_serverless.exporters.xray_udp import MAX_DATAGRAM_BYTES
from nexs_serverless.model import (
    Event,
    InstrumentationScope,
    Link,
    Resource,
    SpanContext,
    SpanKind,
    StatusCode,
)

_ID = re.compile(r"[0-9a-f]{16}")
_TRACE = re.compile(r"1-[0-9a-f]{8}-[0-9a-f]{24}")
_NAME = re.compile(r"[\w .:/%&#=+\\\-@]{1,200}")
_KEY = re.compile(r"[A-Za-z0-9_]{1,500}")


def assert_valid(doc: dict[str, Any], *, embedded: bool = False) -> None:
    """`doc` and its subsegments follow the segment document reference.

    Required fields and their formats, ``end_time`` not before ``start_time``
    or ``in_progress`` instead, names in X-Ray's character set, annotation keys
    and values, exceptions with 16-digit ids, and ``trace_id``/``parent_id``/
    ``type`` only on documents sent on their own.
    """
    assert _ID.fullmatch(doc["id"]), doc["id"]
    assert _NAME.fullmatch(doc["name"]), doc["name"]
    assert isinstance(doc["start_time"], float)
    if doc.get("in_progress") is True:
        assert "end_time" not in doc
    else:
        assert isinstance(doc["end_time"], float)
        assert doc["end_time"] >= doc["start_time"]
    if embedded:
        assert not {"trace_id", "parent_id", "type"} & set(doc)
    else:
        assert _TRACE.fullmatch(doc["trace_id"]), doc["trace_id"]
        if doc.get("type") == "subsegment" or "parent_id" in doc:
            assert _ID.fullmatch(doc["parent_id"])
    for key, value in doc.get("annotations", {}).items():
        assert _KEY.fullmatch(key), key
        assert isinstance(value, (str, int, float, bool))
        assert not isinstance(value, str) or len(value) <= 1000
    for exception in doc.get("cause", {}).get("exceptions", ()):
        assert _ID.fullmatch(exception["id"])
        assert "cause" not in exception or _ID.fullmatch(exception["cause"])
    status = doc.get("http", {}).get("response", {}).get("status")
    assert status is None or type(status) is int
    assert doc.get("namespace") in (None, "aws", "remote")
    for child in nested(doc):
        assert_valid(child, embedded=True)


def documents(datagrams: list[Datagram]) -> list[dict[str, Any]]:
    """The documents of `datagrams` (each under the limit, with the daemon's header), validated."""
    out = []
    for datagram in datagrams:
        assert len(datagram.raw) <= MAX_DATAGRAM_BYTES
        assert datagram.header == HEADER
        datagram.body.decode("utf-8")  # strict: the daemon forwards the bytes as they are
        doc = datagram.document()
        assert_valid(doc)
        out.append(doc)
    return out


def by_id(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every document of `docs`' trees, embedded ones included, by id."""
    return {doc["id"]: doc for root in docs for doc, _ in walk(root)}


def chained_error() -> BaseException:
    """A ValueError raised ``from`` a KeyError that was raised while handling an OSError."""
    try:
        try:
            raise OSError("disk")
        except OSError:
            {}["missing"]
    except KeyError as exc:
        try:
            raise ValueError("bad order") from exc
        except ValueError as final:
            return final
    raise AssertionError("unreachable")


# -- ids and times ---------------------------------------------------------------


def test_a_w3c_trace_id_whose_first_digits_are_no_epoch_is_sent_split_as_is(
    daemon: FakeXRayDaemon, udp: Any
) -> None:
    """X-Ray neither needs nor validates the epoch of a W3C id: ffffffff (year 2106) goes as 1-ffffffff-..."""
    trace_id = 0xFFFFFFFF_0123456789ABCDEF01234567
    assert udp().export([make_span(trace_id=trace_id)]) is ExportResult.SUCCESS
    [doc] = documents(daemon.receive())
    assert doc["trace_id"] == "1-ffffffff-0123456789abcdef01234567"


@pytest.mark.parametrize(
    "ids",
    [
        {"span_id": 0},
        {"span_id": 1 << 64},
        {"trace_id": 0},
        {"trace_id": 1 << 128},
        {"parent_span_id": 1 << 64},
        {"span_id": -5},
    ],
)
def test_a_span_with_ids_x_ray_cannot_take_is_dropped_and_counted_and_its_tree_still_arrives(
    ids: dict[str, int], daemon: FakeXRayDaemon, udp: Any
) -> None:
    """An invalid id would make X-Ray refuse the whole nested document: that span alone is left out."""
    root = make_span(span_id=0xA1)
    good = make_span(span_id=0xA2, parent_span_id=0xA1, name="good")
    bad = make_span(**{"span_id": 0xA3, "parent_span_id": 0xA1, "name": "bad", **ids})
    assert udp().export([good, bad, root]) is ExportResult.SUCCESS
    [doc] = documents(daemon.receive())
    assert [child["name"] for child in nested(doc)] == ["good"]
    assert _stats.snapshot()["spans_dropped_serialization"] == 1


def test_an_end_before_the_start_is_sent_as_the_start_with_the_reported_end(
    daemon: FakeXRayDaemon, udp: Any
) -> None:
    """No negative duration reaches X-Ray; the end the span reported is kept in metadata.otel."""
    span = make_span(start_ns=START_NS, end_ns=START_NS - 3_000_000)
    udp().export([span])
    [doc] = documents(daemon.receive())
    assert doc["end_time"] == doc["start_time"] == START_NS / 1e9
    assert doc["metadata"]["otel"]["reported_end_time"] == (START_NS - 3_000_000) / 1e9


def test_a_span_without_an_end_is_in_progress_not_a_zero_duration(daemon: FakeXRayDaemon, udp: Any) -> None:
    """X-Ray's ``in_progress`` says "started, not ended"; no end_time is invented."""
    udp().export([make_span(end_ns=0)])
    [doc] = documents(daemon.receive())
    assert doc["in_progress"] is True
    assert "end_time" not in doc


def test_times_keep_microseconds_of_the_nanosecond_clock(daemon: FakeXRayDaemon, udp: Any) -> None:
    """X-Ray asks for milliseconds; float epoch seconds keep well under a microsecond of the span's times."""
    start, end = 1_700_000_000_123_456_789, 1_700_000_000_123_457_789  # one microsecond apart
    udp().export([make_span(start_ns=start, end_ns=end)])
    [doc] = documents(daemon.receive())
    assert abs(doc["start_time"] * 1e9 - start) < 1_000
    assert abs(doc["end_time"] * 1e9 - end) < 1_000
    assert doc["end_time"] > doc["start_time"]


# -- names and characters ------------------------------------------------------------


def test_non_ascii_text_and_a_lone_surrogate_arrive_as_valid_utf8(daemon: FakeXRayDaemon, udp: Any) -> None:
    """Names and values keep their letters (UTF-8, not \\u escapes); a lone surrogate becomes '?'."""
    span = make_span(
        parent_span_id=0xFF,
        name="Zürich 東京 café",
        attributes={"city": "Zürich", "broken": "a\ud800b", "emoji": "🚀"},
    )
    udp().export([span])
    [datagram] = daemon.receive()
    assert "Zürich 東京 café".encode() in datagram.body
    [doc] = documents([datagram])
    assert doc["name"] == "Zürich 東京 café"
    assert doc["metadata"]["default"] == {"city": "Zürich", "broken": "a?b", "emoji": "🚀"}


def test_names_keep_unicode_letters_and_allowed_symbols_but_not_tabs_or_newlines(
    daemon: FakeXRayDaemon, udp: Any
) -> None:
    """Of whitespace only the space is kept; refused characters become '_' and the original is metadata."""
    resource = Resource({"service.name": "orders\tapi\nv2 (eu)"})
    child = make_span(span_id=2, parent_span_id=1, name="GET /a:b=c+d@e%f#g&h\\i")
    udp().export([child, make_span(span_id=1, resource=resource)])
    [root] = documents(daemon.receive())
    assert root["name"] == "orders_api_v2 _eu_"
    [inner] = nested(root)
    assert inner["name"] == "GET /a:b=c+d@e%f#g&h\\i"
    assert "span_name" not in inner["metadata"]["otel"]


# -- http, sql, aws, user ------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "status", "flags"),
    [
        (503.0, 503, {"fault": True}),
        ("404", 404, {"error": True}),
        (429, 429, {"error": True, "throttle": True}),
        (600, 600, {}),
        (302, 302, {}),
    ],
)
def test_http_statuses_that_are_integers_set_the_flags(
    value: object, status: int, flags: dict[str, bool], daemon: FakeXRayDaemon, udp: Any
) -> None:
    """An integral float or digits count as the status; only 4xx and 5xx set flags (the Collector's rule)."""
    span = make_span(
        parent_span_id=0xFF, kind=SpanKind.SERVER, attributes={"http.response.status_code": value}
    )
    udp().export([span])
    [doc] = documents(daemon.receive())
    assert doc["http"] == {"response": {"status": status}}
    assert {key: doc[key] for key in ("error", "fault", "throttle") if key in doc} == flags
    assert "http.response.status_code" not in doc["metadata"].get("default", {})


@pytest.mark.parametrize("value", ["²", "abc", True, 404.5, "-1"])
def test_an_http_status_that_is_no_integer_stays_in_metadata(
    value: object, daemon: FakeXRayDaemon, udp: Any
) -> None:
    """Before, "²" raised in int() and dropped the span, and "abc" vanished from the document."""
    span = make_span(
        parent_span_id=0xFF, kind=SpanKind.SERVER, attributes={"http.response.status_code": value}
    )
    udp().export([span])
    [doc] = documents(daemon.receive())
    assert "http" not in doc
    assert not {"error", "fault", "throttle"} & set(doc)
    assert doc["metadata"]["default"] == {"http.response.status_code": value}


def test_dynamodb_calls_get_no_sql_block_while_sql_databases_do(daemon: FakeXRayDaemon, udp: Any) -> None:
    """The instrumentation's db.system=dynamodb stays metadata; PostgreSQL's query is the sql block."""
    dynamodb = make_span(
        span_id=2,
        parent_span_id=1,
        kind=SpanKind.CLIENT,
        attributes={
            "rpc.system": "aws-api",
            "rpc.service": "DynamoDB",
            "rpc.method": "GetItem",
            "db.system": "dynamodb",
            "aws.dynamodb.table_names": ("orders",),
        },
    )
    postgres = make_span(
        span_id=3,
        parent_span_id=1,
        kind=SpanKind.CLIENT,
        attributes={
            "db.system.name": "postgresql",
            "db.query.text": "SELECT 1",
            "server.address": "db.local",
        },
    )
    udp().export([dynamodb, postgres, make_span(span_id=1)])
    docs = by_id(documents(daemon.receive()))
    ddb, pg = docs[f"{2:016x}"], docs[f"{3:016x}"]
    assert (ddb["name"], ddb["namespace"], ddb["aws"]) == (
        "DynamoDB",
        "aws",
        {"operation": "GetItem", "table_name": "orders"},
    )
    assert "sql" not in ddb
    assert ddb["metadata"]["default"] == {"db.system": "dynamodb"}
    assert (pg["name"], pg["namespace"]) == ("db.local", "remote")
    assert pg["sql"] == {"database_type": "postgresql", "sanitized_query": "SELECT 1"}


def test_a_segment_gets_user_and_service_version_and_a_subsegment_keeps_them_as_metadata(
    daemon: FakeXRayDaemon, udp: Any
) -> None:
    """enduser.id is X-Ray's indexed user and service.version its service block, on segments only."""
    resource = Resource({"service.name": "orders", "service.version": "1.4.2"})
    child = make_span(span_id=2, parent_span_id=1, attributes={"enduser.id": "u-7"}, resource=resource)
    root = make_span(span_id=1, attributes={"enduser.id": "u-7"}, resource=resource)
    udp().export([child, root])
    [doc] = documents(daemon.receive())
    assert (doc["user"], doc["service"]) == ("u-7", {"version": "1.4.2"})
    assert "default" not in doc["metadata"]
    [inner] = nested(doc)
    assert not {"user", "service"} & set(inner)
    assert inner["metadata"]["default"] == {"enduser.id": "u-7"}


def test_an_unknown_sdk_version_is_left_out_rather_than_null(daemon: FakeXRayDaemon, udp: Any) -> None:
    """``aws.xray.sdk_version`` is a string when present; a scope without a version writes none."""
    udp().export([make_span(instrumentation_scope=InstrumentationScope("nexs_serverless", None))])
    [doc] = documents(daemon.receive())
    assert doc["aws"] == {"xray": {"sdk": "nexs_serverless"}}


# -- annotations ---------------------------------------------------------------------------


def test_annotation_keys_stop_at_500_characters_and_an_empty_key_is_skipped(
    daemon: FakeXRayDaemon, udp: Any
) -> None:
    """X-Ray's key limit is 500 alphanumeric characters; values stop at 1,000 characters."""
    long_key = "k" * 600
    span = make_span(parent_span_id=0xFF, attributes={long_key: "v" * 1500, "": "empty", "ok.key": 7})
    udp(annotation_keys=("*",)).export([span])
    [doc] = documents(daemon.receive())
    assert doc["annotations"] == {"k" * 500: "v" * 1000, "ok_key": 7}
    assert doc["metadata"]["default"] == {"": "empty"}


# -- annotations and metadata recorded the X-Ray way (Powertools) ------------------------------------


def test_powertools_annotations_and_metadata_reach_x_ray_as_annotations_and_metadata(
    daemon: FakeXRayDaemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The migration guide's promise: put_annotation is indexed under its own name, put_metadata is an
    object in the service's namespace, as with the X-Ray SDK (before: flat attributes in metadata.default)."""
    from aws_lambda_powertools import Tracer
    from aws_lambda_powertools.tracing import tracer as powertools_tracer_module

    from nexs_serverless.powertools import NexsProvider
    from nexs_serverless.testing import LambdaContext, reset

    Tracer._reset_config()
    monkeypatch.setattr(powertools_tracer_module, "is_cold_start", True)
    reset(
        environ={
            "OTEL_TRACES_EXPORTER": "xray",
            "AWS_XRAY_DAEMON_ADDRESS": daemon.address,
            "AWS_LAMBDA_FUNCTION_NAME": "payment",
        }
    )
    try:
        tracer = Tracer(service="payment", provider=NexsProvider(), disabled=False)

        @tracer.capture_method(capture_response=False)
        def charge(amount: float) -> None:
            tracer.put_annotation("PaymentStatus", "CONFIRMED")
            tracer.put_metadata("payment", {"amount": amount, "card": "visa"})

        @tracer.capture_lambda_handler(capture_response=False)
        def handler(event: dict[str, object], context: object) -> dict[str, object]:
            charge(12.5)
            return {"ok": True}

        assert handler({}, LambdaContext()) == {"ok": True}
    finally:
        Tracer._reset_config()
    [root] = documents(daemon.receive())
    assert root["annotations"] == {"ColdStart": True, "Service": "payment"}  # Powertools' own, as the SDK
    [charged] = [doc for doc, _ in walk(root) if doc["name"].endswith(".charge")]
    assert charged["annotations"] == {"PaymentStatus": "CONFIRMED"}
    assert charged["metadata"]["payment"] == {"payment": {"amount": 12.5, "card": "visa"}}
    assert not any(key.startswith("aws.xray.") for key in charged["metadata"].get("default", {}))


def test_recorded_annotations_are_indexed_without_configuration_and_count_once_with_star(
    daemon: FakeXRayDaemon, udp: Any
) -> None:
    """aws.xray.annotation.<key> is annotation <key>; "*" does not index it again under its full name."""
    attrs = {"aws.xray.annotation.order_id": "42", "aws.xray.annotation.paid": True, "region.code": "eu"}
    udp(annotation_keys=("*",)).export([make_span(attributes=attrs)])
    [doc] = documents(daemon.receive())
    assert doc["annotations"] == {"order_id": "42", "paid": True, "region_code": "eu"}
    assert "default" not in doc["metadata"]


def test_recorded_metadata_goes_to_its_namespace_and_reserved_ones_stay_attributes(
    daemon: FakeXRayDaemon, udp: Any
) -> None:
    """JSON text of an object or list is decoded (unless cut; NaN stays text); AWS., otel and nexs are not
    ours to fill, so those attributes stay in default as they were."""
    attrs = {
        "aws.xray.metadata.orders.response": '{"id": 42, "items": [1, 2]}',
        "aws.xray.metadata.orders.ratios": "[NaN, 1.5]",
        "aws.xray.metadata.orders.cut": '{"a": "' + "x" * 10 + MARK,
        "aws.xray.metadata.orders.plain": "[not json",
        "aws.xray.metadata.default.note": "text",
        "aws.xray.metadata.AWS.internal.k": 1,
        "aws.xray.metadata.otel.kind": "mine",
        "attempt": 2,
    }
    udp().export([make_span(attributes=attrs)])
    [doc] = documents(daemon.receive())
    metadata = doc["metadata"]
    assert metadata["orders"] == {
        "response": {"id": 42, "items": [1, 2]},
        "ratios": ["NaN", 1.5],
        "cut": '{"a": "' + "x" * 10 + MARK,
        "plain": "[not json",
    }
    assert metadata["default"] == {
        "attempt": 2,
        "aws.xray.metadata.AWS.internal.k": 1,
        "aws.xray.metadata.otel.kind": "mine",
        "note": "text",
    }
    assert metadata["otel"]["kind"] == "INTERNAL"  # ours, untouched by the attribute named like it


# -- cause and exceptions --------------------------------------------------------------------


def test_a_chained_traceback_is_one_exception_per_link_each_with_its_own_frames(
    daemon: FakeXRayDaemon, udp: Any
) -> None:
    """raise ... from, and an exception during handling: three exceptions linked by cause, frames apart."""
    span = make_span(status_code=StatusCode.ERROR, events=(exception_event_of(chained_error()),))
    udp().export([span])
    [doc] = documents(daemon.receive())
    final, key_error, os_error = doc["cause"]["exceptions"]
    assert (final["type"], final["message"]) == ("ValueError", "bad order")
    assert (key_error["type"], key_error["message"]) == ("KeyError", "'missing'")
    assert (os_error["type"], os_error["message"]) == ("OSError", "disk")
    assert final["cause"] == key_error["id"]
    assert key_error["cause"] == os_error["id"]
    assert "cause" not in os_error
    assert len({final["id"], key_error["id"], os_error["id"]}) == 3
    source = [line.strip() for line in Path(__file__).read_text(encoding="utf-8").splitlines()]

    def lines_of(entry: dict[str, Any]) -> set[str]:
        return {source[frame["line"] - 1] for frame in entry["stack"]}

    assert 'raise ValueError("bad order") from exc' in lines_of(final)
    assert not any("OSError" in line or "missing" in line for line in lines_of(final))
    assert any('{}["missing"]' in line for line in lines_of(key_error))
    assert lines_of(os_error) == {'raise OSError("disk")'}


def test_exception_ids_of_a_chain_are_the_same_when_a_span_is_sent_twice() -> None:
    """X-Ray keeps one document per id: a re-sent span must not grow new exception ids."""
    span = make_span(status_code=StatusCode.ERROR, events=(exception_event_of(chained_error()),))
    first = to_document(span, SegmentOptions())["cause"]
    assert to_document(span, SegmentOptions())["cause"] == first


def _deep(depth: int, label: str) -> None:
    """Recurse through `depth` distinct frames (named by `label` in turn), then raise."""
    if depth == 0:
        raise RuntimeError(label)
    namespace: dict[str, Any] = {"_deep": _deep}
    exec(f"def frame_{depth}(d, l):\n    _deep(d, l)", namespace)
    namespace[f"frame_{depth}"](depth - 1, label)


def test_a_long_stack_keeps_the_32_most_recent_frames_and_counts_the_rest(
    daemon: FakeXRayDaemon, udp: Any
) -> None:
    """100 distinct frames: the 32 innermost, most recent first; ``truncated`` counts the others."""
    try:
        _deep(100, "deep")
    except RuntimeError as caught:
        error: BaseException = caught
    event = exception_event_of(error)
    udp().export([make_span(status_code=StatusCode.ERROR, events=(event,))])
    [doc] = documents(daemon.receive())
    [exception] = doc["cause"]["exceptions"]
    frames = exception["stack"]
    assert len(frames) == 32
    assert frames[0]["label"] == "_deep"  # where it was raised
    assert [frame["label"] for frame in frames[1:4:2]] == ["frame_1", "frame_2"]
    total = len(traceback.extract_tb(error.__traceback__))
    assert exception["truncated"] == total - 32


def test_frames_python_folds_as_repeated_are_counted_as_truncated(daemon: FakeXRayDaemon, udp: Any) -> None:
    """A recursion prints "[Previous line repeated N more times]": those N frames are counted, not lost."""

    def recurse(depth: int) -> None:
        if depth == 0:
            raise RecursionError("deep")
        recurse(depth - 1)

    try:
        recurse(200)
    except RecursionError as caught:
        error: BaseException = caught
    event = exception_event_of(error)
    repeated = int(re.findall(r"repeated (\d+) more", str(event.attributes["exception.stacktrace"]))[0])
    udp().export([make_span(status_code=StatusCode.ERROR, events=(event,))])
    [doc] = documents(daemon.receive())
    [exception] = doc["cause"]["exceptions"]
    assert repeated > 150
    assert exception["truncated"] == repeated
    assert len(exception["stack"]) + repeated == len(traceback.extract_tb(error.__traceback__))


# -- very large documents ----------------------------------------------------------------------


def test_a_span_of_128_huge_attributes_is_cut_in_a_few_passes_keeping_every_key(
    daemon: FakeXRayDaemon, udp: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """12.8 MB of metadata (OpenTelemetry sets no length limit by default): before, one JSON encode of the
    whole document per cut value (128 of them, 14 s); now a few, each value keeping its beginning."""
    encodes: list[int] = []
    real_dumps = xray_fit.dumps

    def counting_dumps(doc: object) -> bytes:
        if isinstance(doc, dict):  # a whole document (cut values are measured one by one too)
            encodes.append(1)
        return real_dumps(doc)

    monkeypatch.setattr(xray_fit, "dumps", counting_dumps)
    attrs = {f"payload.{i:03d}": f"{i:03d}" + "x" * 100_000 for i in range(128)}
    udp().export([make_span(attributes=attrs)])
    assert len(encodes) <= 6
    [doc] = documents(daemon.receive())
    kept = doc["metadata"]["default"]
    assert sorted(kept) == sorted(attrs)
    for key, value in kept.items():
        assert value.startswith(key[-3:] + "xxx")
        assert value.endswith(MARK)
    mark = doc["metadata"]["nexs"]
    assert len(mark["truncated"]) == MAX_LISTED
    assert mark["truncated_count"] == 128
    assert _stats.snapshot()["spans_truncated"] == 1


def test_metadata_is_cut_before_the_indexed_annotation_and_the_cause(
    daemon: FakeXRayDaemon, udp: Any
) -> None:
    """When metadata can absorb the excess, annotations, the URL and the exception message stay whole."""
    span = make_span(
        kind=SpanKind.SERVER,
        status_code=StatusCode.ERROR,
        attributes={
            "order.note": "n" * 900,
            "url.full": "https://example.com/" + "p" * 3000,
            "http.request.method": "GET",
            "blob": "b" * 200_000,
        },
        events=(exception_event_of(ValueError("m" * 5000)),),
    )
    udp(annotation_keys=("order.note",)).export([span])
    [doc] = documents(daemon.receive())
    assert doc["annotations"] == {"order_note": "n" * 900}
    assert doc["http"]["request"]["url"] == "https://example.com/" + "p" * 3000
    assert doc["cause"]["exceptions"][0]["message"] == "m" * 5000
    assert doc["metadata"]["default"]["blob"].endswith(MARK)
    assert doc["metadata"]["nexs"] == {"truncated": ["metadata/default/blob"]}


def test_thousands_of_events_go_before_the_attributes_and_the_span_kind(
    daemon: FakeXRayDaemon, udp: Any
) -> None:
    """Events too small to cut go as a whole, counted and named in the mark; the rest of metadata stays."""
    events = tuple(Event(f"tick.{i}", START_NS + i, {"n": i}) for i in range(3000))
    span = make_span(events=events, attributes={"order.id": "42"})
    udp().export([span])
    [doc] = documents(daemon.receive())
    otel = doc["metadata"]["otel"]
    assert "events" not in otel
    assert otel["kind"] == "INTERNAL"
    assert otel["dropped"] == {"events": 3000}
    assert doc["metadata"]["default"] == {"order.id": "42"}
    assert doc["metadata"]["nexs"] == {"truncated": ["metadata/otel/events"]}


def test_a_fallback_that_removes_nothing_is_not_named(daemon: FakeXRayDaemon, udp: Any) -> None:
    """A span without a cause that must lose its metadata says "metadata", not a stack it never had."""
    attrs = {f"k{i:04d}" + "y" * 40: "v" * 50 for i in range(2000)}  # values too short to cut
    udp().export([make_span(attributes=attrs)])
    [doc] = documents(daemon.receive())
    assert doc["metadata"] == {"nexs": {"truncated": ["metadata"]}}


# -- Lambda parenting ---------------------------------------------------------------------------------


def test_each_invocation_header_is_read_at_its_own_flush(
    daemon: FakeXRayDaemon, udp: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Warm invocations: the root of each hangs under its own function segment, not the first one's."""
    exporter = udp(in_lambda=True)
    first_trace, second_trace = TRACE_ID, TRACE_ID + 1
    monkeypatch.setenv(
        "_X_AMZN_TRACE_ID", f"Root={xray_trace_id(first_trace)};Parent=00000000000000a1;Sampled=1"
    )
    exporter.export([make_span(trace_id=first_trace, span_id=1)])
    monkeypatch.setenv(
        "_X_AMZN_TRACE_ID",
        f"Root={xray_trace_id(second_trace)};Parent=00000000000000B2;Sampled=1;Lineage=x:1",
    )
    exporter.export([make_span(trace_id=second_trace, span_id=2)])
    first, second = documents(daemon.receive())
    assert (first["type"], first["parent_id"], first["trace_id"]) == (
        "subsegment",
        "00000000000000a1",
        xray_trace_id(first_trace),
    )
    assert (second["type"], second["parent_id"], second["trace_id"]) == (
        "subsegment",
        "00000000000000b2",
        xray_trace_id(second_trace),
    )


# -- OTLP mode ----------------------------------------------------------------------------------------


def test_otlp_a_span_with_thousands_of_events_keeps_its_exception_and_arrives(
    daemon: FakeXRayDaemon, udp: Any
) -> None:
    """Before, events too small to cut made the span undeliverable; now the others go, counted and named."""
    events = (
        *(Event(f"tick.{i}", START_NS + i, {"n": "t" * 40}) for i in range(3000)),
        exception_event_of(ValueError("x")),
    )
    udp(mode="otlp").export([make_span(events=events)])
    [datagram] = daemon.receive()
    assert len(datagram.raw) <= MAX_DATAGRAM_BYTES
    prefix, request = datagram.otlp()
    [span] = request.resource_spans[0].scope_spans[0].spans
    assert prefix == "T1S"
    assert [event.name for event in span.events] == ["exception"]
    assert span.dropped_events_count == 3000
    attrs = {kv.key: kv.value for kv in span.attributes}
    assert [value.string_value for value in attrs["nexs.truncated"].array_value.values] == ["events"]
    assert _stats.snapshot()["spans_truncated"] == 1


def test_otlp_a_span_with_thousands_of_links_arrives_without_them(daemon: FakeXRayDaemon, udp: Any) -> None:
    """Links are the last thing to go; their count moves to dropped_links_count."""
    links = tuple(Link(SpanContext(i + 1, i + 1, 1, (), True), {"k": "v" * 40}) for i in range(3000))
    udp(mode="otlp").export([make_span(links=links)])
    [datagram] = daemon.receive()
    _, request = datagram.otlp()
    [span] = request.resource_spans[0].scope_spans[0].spans
    assert (len(span.links), span.dropped_links_count) == (0, 3000)


def test_otlp_a_span_that_cannot_fit_is_counted_once_as_dropped(daemon: FakeXRayDaemon, udp: Any) -> None:
    """Keys are never cut: 2,000 long keys cannot fit, and the span is dropped, not also counted truncated."""
    attrs = {f"attribute.{i:05d}." + "k" * 40: "v" * 100 for i in range(2000)}
    udp(mode="otlp").export([make_span(attributes=attrs), make_span(span_id=7)])
    [datagram] = daemon.receive()
    _, request = datagram.otlp()
    assert [span.span_id.hex() for span in request.resource_spans[0].scope_spans[0].spans] == [f"{7:016x}"]
    counters = _stats.snapshot()
    assert counters["spans_dropped_oversize"] == 1
    assert "spans_truncated" not in counters


# -- PutTraceSegments (moto in server mode; a slow server for the deadline) ---------------------------


def stored(moto_url: str, trace_id: int) -> dict[str, dict[str, Any]]:
    """The documents moto stored for `trace_id`, by id, each validated."""
    [docs] = stored_traces(moto_url, trace_id)
    for doc in docs:
        assert_valid(doc)
    return {doc["id"]: doc for doc in docs}


def test_api_edge_case_documents_are_stored_by_moto(moto_url: str, xray_api: Any) -> None:
    """A random-epoch W3C id, non-ASCII, a chain, an end before the start, one in progress: all stored."""
    trace_id = (0xFFFFFFFF << 96) | secrets.randbits(96)
    spans = [
        make_span(trace_id=trace_id, span_id=1, name="Zürich", kind=SpanKind.SERVER),
        make_span(
            trace_id=trace_id,
            span_id=2,
            parent_span_id=1,
            status_code=StatusCode.ERROR,
            events=(exception_event_of(chained_error()),),
        ),
        make_span(trace_id=trace_id, span_id=3, parent_span_id=1, end_ns=START_NS - 1_000_000),
        make_span(trace_id=trace_id, span_id=4, parent_span_id=1, end_ns=0),
    ]
    assert xray_api(endpoint_url=moto_url).send(spans, 20.0) == 0
    docs = stored(moto_url, trace_id)
    assert sorted(docs) == [f"{i:016x}" for i in (1, 2, 3, 4)]
    assert docs[f"{1:016x}"]["trace_id"].startswith("1-ffffffff-")
    assert len(docs[f"{2:016x}"]["cause"]["exceptions"]) == 3
    assert docs[f"{4:016x}"]["in_progress"] is True


def test_api_a_span_with_an_invalid_id_is_not_uploaded(moto_url: str, xray_api: Any) -> None:
    """The span X-Ray would refuse is counted here; the others of the batch reach moto."""
    trace_id = (int(time.time()) << 96) | secrets.randbits(96)
    spans = [
        make_span(trace_id=trace_id, span_id=1),
        make_span(trace_id=trace_id, span_id=0, parent_span_id=1),
    ]
    assert outcome(xray_api(endpoint_url=moto_url).send(spans, 20.0)) == (0, 1)  # none rejected, one dropped
    assert sorted(stored(moto_url, trace_id)) == [f"{1:016x}"]
    assert _stats.snapshot()["spans_dropped_serialization"] == 1


class SlowXRay(LocalServer):
    """Answers PutTraceSegments with success after `delay_s`, counting the calls."""

    def __init__(self, delay_s: float) -> None:
        super().__init__()
        self.delay_s = delay_s
        self.calls: list[int] = []

    def answer(self, request: Request) -> Reply:
        self.calls.append(len(json.loads(request.body)["TraceSegmentDocuments"]))
        time.sleep(self.delay_s)
        return Reply(200, b'{"UnprocessedTraceSegments": []}', {"Content-Type": "application/json"})


def test_api_calls_of_one_batch_share_the_flush_deadline(xray_api: Any) -> None:
    """120 documents are three calls of 0.5 s; with 0.8 s in all, the second may wait only what is left.

    Before, each call could wait the whole 0.8 s: the three took 1.5 s and the send succeeded.
    """
    with SlowXRay(delay_s=0.5) as server:
        exporter = xray_api(endpoint_url=server.url)
        exporter.prepare()  # the client is built once per process, outside the calls' budget
        spans = [make_span(span_id=i + 1, parent_span_id=0xFF) for i in range(120)]
        with pytest.raises(ExportError) as caught:
            exporter.send(spans, 0.8)
    assert caught.value.error_class == ErrorClass.TIMEOUT
    assert server.calls[0] == 50
    assert len(server.calls) <= 2  # never a third call past the deadline
