"""Session 12 review of the X-Ray segment documents: URLs, queue URLs, exception groups, cutting, segments.

Documents are decoded from what a UDP socket on 127.0.0.1 standing in for the
daemon receives (`support.xray_daemon`), or from what moto in server mode
stored through ``PutTraceSegments``.
"""

from __future__ import annotations

import asyncio
import secrets
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from support.clouds import client
from support.exporter_spans import exception_event_of, make_span
from support.xray_daemon import FakeXRayDaemon, nested, trace_as_lambda
from support.xray_stored import stored_traces

from nexs_serverless import SpanKind, StatusCode, instrumentation, traced_handler
from nexs_serverless.exporters.xray_fit import MARK
from nexs_serverless.exporters.xray_segments import xray_trace_id
from nexs_serverless.exporters.xray_udp import MAX_DATAGRAM_BYTES
from nexs_serverless.model import Resource
from nexs_serverless.testing import LambdaContext, events, reset


def received(daemon: FakeXRayDaemon) -> list[dict[str, Any]]:
    """The documents the daemon got, each within the datagram limit and valid UTF-8 JSON."""
    out = []
    for datagram in daemon.receive():
        assert len(datagram.raw) <= MAX_DATAGRAM_BYTES
        datagram.body.decode("utf-8")
        out.append(datagram.document())
    return out


def only(daemon: FakeXRayDaemon) -> dict[str, Any]:
    """The one document the daemon got."""
    [doc] = received(daemon)
    return doc


# -- http.request.url of a server span built from its parts -------------------------------------


@pytest.mark.parametrize(
    ("attributes", "url"),
    [
        (
            {"url.scheme": "http", "server.address": "localhost", "server.port": 8080},
            "http://localhost:8080/x?q=1",
        ),
        (
            {"url.scheme": "https", "server.address": "example.com", "server.port": 443},
            "https://example.com/x?q=1",
        ),
        (
            {"url.scheme": "http", "server.address": "example.com", "server.port": 80},
            "http://example.com/x?q=1",
        ),
        ({"url.scheme": "https", "server.address": "::1", "server.port": 8443}, "https://[::1]:8443/x?q=1"),
        ({"net.host.name": "svc.local", "net.host.port": 9000}, "https://svc.local:9000/x?q=1"),
        ({"http.host": "example.com:8080"}, "https://example.com:8080/x?q=1"),
    ],
)
def test_a_server_url_built_from_its_parts_keeps_a_port_that_is_not_the_default(
    daemon: FakeXRayDaemon, udp: Any, attributes: dict[str, object], url: str
) -> None:
    """``server.port`` is part of the URL X-Ray shows (before, localhost:8080 read as localhost)."""
    attrs = {"http.request.method": "GET", "url.path": "/x", "url.query": "q=1", **attributes}
    udp().export([make_span(kind=SpanKind.SERVER, attributes=attrs)])
    doc = only(daemon)
    assert doc["http"]["request"]["url"] == url
    assert not {"server.port", "net.host.port"} & set(doc["metadata"].get("default", {}))


def test_sam_local_requests_keep_their_port_end_to_end(
    daemon: FakeXRayDaemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An API Gateway event whose Host names a port (``sam local start-api``): the URL keeps it."""
    reset(environ={"OTEL_TRACES_EXPORTER": "xray", "AWS_XRAY_DAEMON_ADDRESS": daemon.address})

    @traced_handler
    def handler(event: dict[str, object], context: object) -> dict[str, object]:
        return {"statusCode": 200}

    event = events.api_gateway_v2(
        path="/orders", headers={"host": "127.0.0.1:3000", "x-forwarded-proto": "http"}
    )
    handler(event, LambdaContext())
    doc = only(daemon)
    assert doc["http"]["request"]["url"].partition("?")[0] == "http://127.0.0.1:3000/orders"


# -- aws.queue_url of an SQS call ----------------------------------------------------------------


@pytest.fixture
def instrumented_sdk(aws_test_credentials: None) -> Iterator[None]:
    """botocore instrumented for the test, restored afterwards."""
    instrumentation.instrument("botocore")
    yield
    instrumentation.uninstrument("botocore")


def test_an_sqs_call_through_the_instrumented_sdk_records_its_queue_url(
    daemon: FakeXRayDaemon, moto_url: str, instrumented_sdk: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """End to end against moto: the SendMessage subsegment's ``aws.queue_url`` is the queue's URL.

    The instrumentation writes ``aws.sqs.queue.url`` (the semantic conventions' name); before,
    only ``aws.sqs.queue_url``, a name nothing writes, was read.
    """
    sqs = client("sqs", moto_url)
    url = sqs.create_queue(QueueName="orders-xray")["QueueUrl"]
    trace_as_lambda(daemon, monkeypatch)

    @traced_handler
    def handler(event: dict[str, object], context: object) -> dict[str, object]:
        sqs.send_message(QueueUrl=url, MessageBody="hello")
        return {"ok": True}

    handler({}, LambdaContext())
    root = only(daemon)
    assert (root["type"], root["parent_id"]) == ("subsegment", "0102030405060708")
    [send] = nested(root)
    assert (send["name"], send["namespace"]) == ("SQS", "aws")
    assert send["aws"]["operation"] == "SendMessage"
    assert send["aws"]["queue_url"] == url
    assert "aws.sqs.queue.url" not in send["metadata"].get("default", {})


# -- cause: exception groups ---------------------------------------------------------------------

needs_task_groups = pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.TaskGroup is 3.11+")


async def _fail(number: int) -> None:
    raise ValueError(number)


async def _gather() -> None:
    async with asyncio.TaskGroup() as group:
        group.create_task(_fail(1))
        group.create_task(_fail(2))


def _task_group_error() -> BaseException:
    """The ExceptionGroup an ``asyncio.TaskGroup`` raises when its tasks fail."""
    try:
        asyncio.run(_gather())
    except BaseException as exc:
        return exc
    raise AssertionError("unreachable")


def _wrapped_group_error() -> BaseException:
    """A RuntimeError raised ``from`` a TaskGroup's ExceptionGroup."""
    try:
        try:
            asyncio.run(_gather())
        except BaseException as group:  # ExceptionGroup (3.11+)
            raise RuntimeError("checkout failed") from group
    except RuntimeError as exc:
        return exc
    raise AssertionError("unreachable")


def _labels(exception: dict[str, Any]) -> list[str]:
    return [frame["label"] for frame in exception.get("stack", ())]


@needs_task_groups
def test_an_exception_group_keeps_its_own_frames_and_not_its_sub_exceptions(
    daemon: FakeXRayDaemon, udp: Any
) -> None:
    """A TaskGroup's ExceptionGroup prints its frames after "  | ": they were all lost before."""
    exc = _task_group_error()
    udp().export([make_span(status_code=StatusCode.ERROR, events=(exception_event_of(exc),))])
    [group] = only(daemon)["cause"]["exceptions"]
    assert group["type"] == "ExceptionGroup"
    assert "_gather" in _labels(group)
    assert "_task_group_error" in _labels(group)
    assert "_fail" not in _labels(group)  # a sub-exception's frame, not the group's


@needs_task_groups
def test_an_exception_group_as_a_cause_is_named_and_keeps_its_frames(
    daemon: FakeXRayDaemon, udp: Any
) -> None:
    """``raise ... from group``: the chained entry is the group (type from its own line) with its frames."""
    exc = _wrapped_group_error()
    udp().export([make_span(status_code=StatusCode.ERROR, events=(exception_event_of(exc),))])
    outer, group = only(daemon)["cause"]["exceptions"]
    assert (outer["type"], outer["cause"]) == ("RuntimeError", group["id"])
    assert group["type"] == "ExceptionGroup"
    assert group["message"].startswith("unhandled errors in a TaskGroup")
    assert "_gather" in _labels(group)
    assert "_fail" not in _labels(group)


# -- cutting a document to 64 KB -------------------------------------------------------------------


def test_a_huge_user_is_cut_not_the_span_dropped(daemon: FakeXRayDaemon, udp: Any) -> None:
    """``user`` (``enduser.id``) was the one value never cut: the whole segment was lost for it."""
    span = make_span(kind=SpanKind.SERVER, attributes={"enduser.id": "u" * 70_000})
    udp().export([span])
    doc = only(daemon)
    assert doc["id"] == f"{span.span_id:016x}"
    assert doc["trace_id"] == xray_trace_id(span.trace_id)
    assert doc["user"].startswith("uuuu")
    assert doc["user"].endswith(MARK)
    assert "user" in doc["metadata"]["nexs"]["truncated"]


def test_a_huge_service_version_is_cut_not_the_span_dropped(daemon: FakeXRayDaemon, udp: Any) -> None:
    """``service.version`` on a segment: cut like any other value, the segment still arrives."""
    resource = Resource({"service.name": "orders", "service.version": "v" * 70_000})
    udp().export([make_span(kind=SpanKind.SERVER, resource=resource)])
    doc = only(daemon)
    assert doc["service"]["version"].endswith(MARK)
    assert "service/version" in doc["metadata"]["nexs"]["truncated"]


def test_an_attribute_key_longer_than_a_datagram_does_not_cost_the_span(
    daemon: FakeXRayDaemon, udp: Any
) -> None:
    """The mark names a cut value by its path, cut too: a 70,000-character key no longer outgrows it."""
    udp().export([make_span(attributes={"k" * 70_000: "v" * 100})])
    doc = only(daemon)
    *listed, last = doc["metadata"]["nexs"]["truncated"]
    assert last == "metadata"  # the metadata went, the span did not
    assert listed
    assert all(len(path) < 300 for path in listed)


# -- segments: account, namespace -----------------------------------------------------------------------


def test_a_segment_records_the_account_running_it_and_a_subsegment_does_not(
    daemon: FakeXRayDaemon, udp: Any
) -> None:
    """``cloud.account.id`` (the invocation span's, or the resource's) is the segment's ``aws.account_id``."""
    root = make_span(span_id=1, kind=SpanKind.SERVER, attributes={"cloud.account.id": "123456789012"})
    child = make_span(span_id=2, parent_span_id=1, attributes={"cloud.account.id": "123456789012"})
    resource = Resource({"service.name": "jobs", "cloud.account.id": "210987654321"})
    other = make_span(trace_id=0x1234, span_id=3, resource=resource)
    udp().export([child, root, other])
    docs = {doc["id"]: doc for doc in received(daemon)}
    segment = docs[f"{1:016x}"]
    assert segment["aws"]["account_id"] == "123456789012"
    assert "cloud.account.id" not in segment["metadata"].get("default", {})
    [sub] = nested(segment)
    assert "account_id" not in sub.get("aws", {})
    assert docs[f"{3:016x}"]["aws"]["account_id"] == "210987654321"


def test_a_database_root_span_is_a_segment_without_a_namespace(daemon: FakeXRayDaemon, udp: Any) -> None:
    """``namespace`` belongs to subsegments: a root with ``db.system`` is the service, not a call it made."""
    attrs = {"db.system": "postgresql", "db.statement": "SELECT 1"}
    udp().export(
        [make_span(span_id=1, attributes=attrs), make_span(span_id=2, parent_span_id=1, attributes=attrs)]
    )
    root = only(daemon)
    assert "namespace" not in root
    assert "type" not in root
    [call] = nested(root)
    assert call["namespace"] == "remote"


# -- the API transport: moto stores what it is sent -----------------------------------------------------


def stored(moto_url: str, trace_id: int) -> dict[str, dict[str, Any]]:
    """The documents moto stored for `trace_id`, by id."""
    return {doc["id"]: doc for docs in stored_traces(moto_url, trace_id) for doc in docs}


@needs_task_groups
def test_api_documents_with_a_huge_user_and_an_exception_group_are_stored(
    moto_url: str, xray_api: Any
) -> None:
    """Through PutTraceSegments: the cut segment and the group's frames reach X-Ray (moto)."""
    trace_id = (int(time.time()) << 96) | secrets.randbits(96)
    spans = [
        make_span(
            trace_id=trace_id, span_id=1, kind=SpanKind.SERVER, attributes={"enduser.id": "u" * 70_000}
        ),
        make_span(
            trace_id=trace_id,
            span_id=2,
            parent_span_id=1,
            status_code=StatusCode.ERROR,
            events=(exception_event_of(_task_group_error()),),
        ),
    ]
    assert xray_api(endpoint_url=moto_url).send(spans, 20.0) == 0
    docs = stored(moto_url, trace_id)
    assert sorted(docs) == [f"{1:016x}", f"{2:016x}"]
    assert docs[f"{1:016x}"]["user"].endswith(MARK)
    [group] = docs[f"{2:016x}"]["cause"]["exceptions"]
    assert "_gather" in _labels(group)
