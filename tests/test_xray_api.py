"""XRayExporter through PutTraceSegments: moto in server mode, and canned HTTP faults for classification.

Successful uploads go to moto on 127.0.0.1 and are checked by reading back what
moto stored (``BatchGetTraces``) and the calls moto received (its recorder).
Failures (throttling, 5xx, refused documents, auth) come from canned replies;
the carry-over test puts a fault proxy in front of moto.
"""

from __future__ import annotations

import base64
import functools
import json
import secrets
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from support.canned_http import CannedServer, Reply, SilentServer, closed_port
from support.exporter_spans import START_NS, exception_event, make_span
from support.fault_proxy import FaultProxy
from support.made_exporters import made_exporters

from nexs_serverless import _stats
from nexs_serverless.exporters import ExportResult, XRayExporter
from nexs_serverless.exporters.errors import ErrorClass, ExportError
from nexs_serverless.exporters.resilient import Options, ResilientExporter
from nexs_serverless.exporters.xray_segments import xray_trace_id
from nexs_serverless.model import SpanKind, StatusCode

pytestmark = pytest.mark.usefixtures("aws_test_credentials")


@pytest.fixture(scope="module")
def xray_reader(moto_url: str) -> Iterator[Any]:
    """A boto3 X-Ray client on moto, to read back what moto stored (shared: building one is slow)."""
    client = boto3.client(
        "xray",
        region_name="us-east-1",
        endpoint_url=moto_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    yield client
    client.close()


@pytest.fixture
def trace_id() -> int:
    """A trace id of this test's own: moto keeps what it stored for the whole module (and process).

    The first 32 bits are the current epoch second, as X-Ray reads them.
    """
    return (int(time.time()) << 96) | secrets.randbits(96)


Documents = dict[str, dict[str, Any]]


def stored_documents(xray_reader: Any, trace_id: int) -> Documents:
    """The documents moto stored for `trace_id`, by id, read back with ``BatchGetTraces``.

    Fails when moto does not know the trace, or stored one document twice.
    """
    wanted = xray_trace_id(trace_id)
    response = xray_reader.batch_get_traces(TraceIds=[wanted])
    assert response["UnprocessedTraceIds"] == []
    (trace,) = response["Traces"]
    assert trace["Id"] == wanted
    docs = [json.loads(segment["Document"]) for segment in trace["Segments"]]
    assert [segment["Id"] for segment in trace["Segments"]] == [doc["id"] for doc in docs]
    by_id = {doc["id"]: doc for doc in docs}
    assert len(by_id) == len(docs), f"moto stored a document twice: {sorted(doc['id'] for doc in docs)}"
    return by_id


def _moto_recorder(moto_url: str, action: str) -> bytes:
    method = "GET" if action == "download-recording" else "POST"
    request = urllib.request.Request(f"{moto_url}/moto-api/recorder/{action}", method=method)
    with urllib.request.urlopen(request, timeout=10) as response:
        return bytes(response.read())


PutCalls = Callable[[], list[list[dict[str, Any]]]]


@pytest.fixture
def put_calls(moto_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[PutCalls]:
    """moto's own request log for this test: the PutTraceSegments calls moto received, each as its documents.

    moto's recorder (``/moto-api/recorder/...``) appends every request to
    ``moto_recording`` in the working directory of the process that serves
    them: this one, so the test runs in `tmp_path`. Recording stops afterwards.
    """
    monkeypatch.chdir(tmp_path)
    _moto_recorder(moto_url, "reset-recording")
    _moto_recorder(moto_url, "start-recording")

    def calls() -> list[list[dict[str, Any]]]:
        found = []
        for line in _moto_recorder(moto_url, "download-recording").decode().splitlines():
            entry = json.loads(line)
            if urlsplit(entry["url"]).path != "/TraceSegments":
                continue
            body = base64.b64decode(entry["body"]) if entry["body_encoded"] else entry["body"]
            found.append([json.loads(doc) for doc in json.loads(body)["TraceSegmentDocuments"]])
        return found

    yield calls
    _moto_recorder(moto_url, "stop-recording")


Canned = Callable[..., tuple[CannedServer, XRayExporter]]


@pytest.fixture(scope="module")
def _canned_server() -> Iterator[CannedServer]:
    with CannedServer() as server:
        yield server


@pytest.fixture(scope="module")
def _canned_exporter(_canned_server: CannedServer) -> Iterator[XRayExporter]:
    # One boto3 client for the canned-reply tests: building one costs about half a second.
    exporter = XRayExporter(transport="api", region="us-east-1", endpoint_url=_canned_server.url)
    yield exporter
    exporter.shutdown()


@pytest.fixture
def canned(_canned_server: CannedServer, _canned_exporter: XRayExporter) -> Canned:
    """The shared canned server, answering this test's replies, and an exporter aimed at it."""

    def answer(*replies: Reply) -> tuple[CannedServer, XRayExporter]:
        _canned_server.replies = list(replies) or [Reply()]
        _canned_server.requests.clear()
        return _canned_server, _canned_exporter

    return answer


@pytest.fixture
def make_exporter() -> Iterator[type[XRayExporter]]:
    """API-transport XRayExporters in us-east-1, shut down after the test."""
    with made_exporters(functools.partial(XRayExporter, transport="api", region="us-east-1")) as make:
        yield make  # type: ignore[misc]


def _error(status: int, code: str, headers: dict[str, str] | None = None) -> Reply:
    body = json.dumps({"__type": code, "message": f"{code} from the test"}).encode()
    return Reply(
        status,
        body,
        {"Content-Type": "application/x-amz-json-1.1", "x-amzn-ErrorType": code, **(headers or {})},
    )


def test_segments_round_trip_through_put_trace_segments(
    moto_url: str, make_exporter: type[XRayExporter], xray_reader: Any, trace_id: int, put_calls: PutCalls
) -> None:
    """What moto stored, read back with BatchGetTraces: ids, nesting, names, timing, annotations, metadata."""
    spans = [
        make_span(
            trace_id=trace_id,
            span_id=0xA1,
            kind=SpanKind.SERVER,
            attributes={
                "order.id": "42",
                "http.response.status_code": 500,
                "cart.items": 3,
                "tags": ("a", "b"),
            },
        ),
        make_span(
            trace_id=trace_id,
            span_id=0xA2,
            parent_span_id=0xA1,
            name="charge",
            start_ns=START_NS + 5_000_000,
            end_ns=START_NS + 20_000_000,
            attributes={"order.id": "42", "card.brand": "visa"},
            status_code=StatusCode.ERROR,
            events=(exception_event(RuntimeError("card declined")),),
        ),
    ]
    exporter = make_exporter(endpoint_url=moto_url, annotation_keys=("order.id",))
    # moto refused none of them (it checks each has an id, name, trace_id, start and end time).
    # Its first request loads its back ends: the budget allows for that.
    assert exporter.send(spans, 20.0) == 0
    docs = stored_documents(xray_reader, trace_id)
    root, child = docs[f"{0xA1:016x}"], docs[f"{0xA2:016x}"]
    assert set(docs) == {root["id"], child["id"]}
    assert root["trace_id"] == child["trace_id"] == xray_trace_id(trace_id)
    # The local root is a segment named after the service; the child a subsegment under it.
    assert "parent_id" not in root
    assert "type" not in root
    assert (root["name"], root["origin"]) == ("orders", "AWS::Lambda::Function")
    assert root["aws"]["xray"]["sdk"] == "nexs_serverless"
    assert (child["type"], child["parent_id"], child["name"]) == ("subsegment", root["id"], "charge")
    # Seconds since the epoch, from the spans' nanoseconds.
    assert (root["start_time"], root["end_time"]) == (START_NS / 1e9, (START_NS + 25_000_000) / 1e9)
    assert (child["start_time"], child["end_time"]) == (
        (START_NS + 5_000_000) / 1e9,
        (START_NS + 20_000_000) / 1e9,
    )
    # Annotation keys become annotations (dots made underscores); every other attribute is metadata.
    assert root["annotations"] == child["annotations"] == {"order_id": "42"}
    assert root["metadata"]["default"] == {"cart.items": 3, "tags": ["a", "b"]}
    assert child["metadata"]["default"] == {"card.brand": "visa"}
    assert (root["metadata"]["otel"]["kind"], child["metadata"]["otel"]["kind"]) == ("SERVER", "INTERNAL")
    assert (root["fault"], root["http"]) == (True, {"response": {"status": 500}})
    assert child["fault"] is True
    assert child["cause"]["exceptions"][0]["message"] == "card declined"
    # moto received them in one PutTraceSegments call, in the spans' order.
    assert [[doc["id"] for doc in call] for call in put_calls()] == [[root["id"], child["id"]]]


def test_documents_go_in_calls_of_at_most_fifty(
    moto_url: str, make_exporter: type[XRayExporter], xray_reader: Any, trace_id: int, put_calls: PutCalls
) -> None:
    """120 spans make three PutTraceSegments calls (the daemon's batch size) and all 120 arrive in moto."""
    spans = [
        make_span(
            trace_id=trace_id,
            span_id=i + 1,
            parent_span_id=0xFF,
            name=f"step {i}",
            start_ns=START_NS + i * 1_000_000,
            end_ns=START_NS + i * 1_000_000 + 500_000,
        )
        for i in range(120)
    ]
    exporter = make_exporter(endpoint_url=moto_url)
    assert exporter.send(spans, 20.0) == 0
    calls = put_calls()
    # moto takes any number per call: the 50 is ours (written out, not MAX_DOCUMENTS_PER_CALL).
    assert [len(call) for call in calls] == [50, 50, 20]
    sent_ids = [f"{i + 1:016x}" for i in range(120)]
    assert [doc["id"] for call in calls for doc in call] == sent_ids
    docs = stored_documents(xray_reader, trace_id)
    assert sorted(docs) == sent_ids
    for i, span_id in enumerate(sent_ids):
        doc = docs[span_id]
        assert (doc["trace_id"], doc["type"], doc["parent_id"]) == (
            xray_trace_id(trace_id),
            "subsegment",
            f"{0xFF:016x}",
        )
        assert doc["name"] == f"step {i}"
        assert (doc["start_time"], doc["end_time"]) == (
            (START_NS + i * 1_000_000) / 1e9,
            (START_NS + i * 1_000_000 + 500_000) / 1e9,
        )


def test_the_api_sends_one_document_per_span_even_for_a_tree(
    moto_url: str, make_exporter: type[XRayExporter], xray_reader: Any, trace_id: int, put_calls: PutCalls
) -> None:
    """Through PutTraceSegments nothing is nested: moto stores one document per span, linked by parent_id."""
    exporter = make_exporter(endpoint_url=moto_url)
    spans = [
        make_span(trace_id=trace_id, span_id=3, parent_span_id=2, name="grandchild"),
        make_span(trace_id=trace_id, span_id=2, parent_span_id=1, name="child"),
        make_span(trace_id=trace_id, span_id=1),
    ]
    assert exporter.send(spans, 20.0) == 0
    docs = stored_documents(xray_reader, trace_id)
    assert {doc_id: (doc.get("type"), doc.get("parent_id"), doc["name"]) for doc_id, doc in docs.items()} == {
        f"{3:016x}": ("subsegment", f"{2:016x}", "grandchild"),
        f"{2:016x}": ("subsegment", f"{1:016x}", "child"),
        f"{1:016x}": (None, None, "orders"),
    }
    assert not any("subsegments" in doc for doc in docs.values())
    assert [[doc["id"] for doc in call] for call in put_calls()] == [[f"{3:016x}", f"{2:016x}", f"{1:016x}"]]


def test_unprocessed_documents_are_counted_as_rejected(canned: Canned) -> None:
    """A partial success counts the documents X-Ray refused; the export still succeeds."""
    body = b'{"UnprocessedTraceSegments": [{"Id": "x", "ErrorCode": "InvalidSegment", "Message": "bad"}]}'
    _, exporter = canned(Reply(200, body))
    assert exporter.send([make_span(span_id=1), make_span(span_id=2)], 1.0) == 1
    assert exporter.export([make_span(span_id=1), make_span(span_id=2)]) is ExportResult.SUCCESS
    assert _stats.snapshot()["export_spans_rejected"] == 1


def test_every_document_refused_is_a_bad_request(canned: Canned) -> None:
    """When X-Ray refuses all documents the export fails as BAD_REQUEST (not retried)."""
    body = b'{"UnprocessedTraceSegments": [{"Id": "x", "ErrorCode": "InvalidSegment"}]}'
    _, exporter = canned(Reply(200, body))
    with pytest.raises(ExportError) as caught:
        exporter.send([make_span()], 1.0)
    assert caught.value.error_class == ErrorClass.BAD_REQUEST


@pytest.mark.parametrize(
    ("reply", "error_class", "retry_after"),
    [
        (_error(403, "AccessDeniedException"), ErrorClass.AUTH, None),
        (_error(400, "UnrecognizedClientException"), ErrorClass.AUTH, None),
        (_error(429, "ThrottledException", {"Retry-After": "3"}), ErrorClass.THROTTLED, 3.0),
        (_error(400, "InvalidRequestException"), ErrorClass.BAD_REQUEST, None),
        (_error(500, "InternalFailure"), ErrorClass.SERVER, None),
        (_error(503, "ServiceUnavailable"), ErrorClass.SERVER, None),
    ],
)
def test_http_failures_are_classified(
    reply: Reply, error_class: str, retry_after: float | None, canned: Canned
) -> None:
    """X-Ray's error codes and statuses map to the taxonomy, with Retry-After kept."""
    server, exporter = canned(reply)
    with pytest.raises(ExportError) as caught:
        exporter.send([make_span()], 1.0)
    assert exporter.export([make_span()]) is ExportResult.FAILURE
    assert len(server.requests) == 2  # botocore's own retries are off
    assert caught.value.error_class == error_class
    assert caught.value.retry_after_s == retry_after
    assert _stats.snapshot()["export_errors_" + error_class] == 1


def test_connection_refused_is_a_network_failure(make_exporter: type[XRayExporter]) -> None:
    """Nothing listening: NETWORK."""
    exporter = make_exporter(endpoint_url=f"http://127.0.0.1:{closed_port()}")
    with pytest.raises(ExportError) as caught:
        exporter.send([make_span()], 1.0)
    assert caught.value.error_class == ErrorClass.NETWORK


def test_a_server_that_never_answers_times_out_within_the_budget(make_exporter: type[XRayExporter]) -> None:
    """The flush budget becomes the call's read timeout: a silent server is a TIMEOUT."""
    with SilentServer() as server:
        exporter = make_exporter(endpoint_url=server.url)
        with pytest.raises(ExportError) as caught:
            exporter.send([make_span()], 0.2)
    assert caught.value.error_class == ErrorClass.TIMEOUT


def test_no_time_left_fails_without_calling(canned: Canned) -> None:
    """With the flush budget spent, nothing is sent and the failure is a TIMEOUT."""
    server, exporter = canned()
    with pytest.raises(ExportError) as caught:
        exporter.send([make_span()], 0.0)
    assert server.requests == []
    assert caught.value.error_class == ErrorClass.TIMEOUT


def test_missing_credentials_are_an_auth_failure(
    make_exporter: type[XRayExporter], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No credentials anywhere: AUTH, not retried."""
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with CannedServer() as server:
        with pytest.raises(ExportError) as caught:
            make_exporter(endpoint_url=server.url).send([make_span()], 1.0)
    assert caught.value.error_class == ErrorClass.AUTH
    assert not caught.value.retryable


def test_behind_the_resilience_wrapper_a_failed_upload_goes_out_once_later(
    moto_url: str, make_exporter: type[XRayExporter], xray_reader: Any, trace_id: int
) -> None:
    """The seam: a 503 is carried over by ResilientExporter and reaches moto with the next flush, once."""
    with FaultProxy(moto_url, _error(503, "ServiceUnavailable")) as proxy:
        exporter = make_exporter(endpoint_url=proxy.url, timeout_ms=20_000)
        resilient = ResilientExporter(exporter, options=Options(max_retries=0))
        first = make_span(trace_id=trace_id, span_id=1, parent_span_id=0xFF)
        assert resilient.export([first]) is ExportResult.FAILURE
        second = make_span(trace_id=trace_id, span_id=2, parent_span_id=0xFF)
        assert resilient.export([second]) is ExportResult.SUCCESS
    assert [(exchange.status, exchange.forwarded) for exchange in proxy.exchanges] == [
        (503, False),
        (200, True),
    ]
    sent = json.loads(proxy.exchanges[1].request.body)["TraceSegmentDocuments"]
    assert [json.loads(doc)["id"] for doc in sent] == [f"{1:016x}", f"{2:016x}"]
    assert sorted(stored_documents(xray_reader, trace_id)) == [f"{1:016x}", f"{2:016x}"]
    counters = _stats.snapshot()
    assert (counters["export_errors_server"], counters["export_spans_sent"]) == (1, 2)
