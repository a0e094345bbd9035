"""Session 12: spans carried over to a later invocation hang under their own invocation's Lambda segment."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import pytest
from support.exporter_spans import TRACE_ID, make_span
from support.xray_daemon import FakeXRayDaemon, nested, walk

from nexs_serverless import stats, traced_handler, tracer
from nexs_serverless.exporters.xray import XRayExporter
from nexs_serverless.exporters.xray_lambda import REMEMBERED, LambdaSegment, remember
from nexs_serverless.exporters.xray_segments import SegmentOptions, to_document, xray_trace_id
from nexs_serverless.exporters.xray_udp import DaemonSender
from nexs_serverless.testing import LambdaContext, reset

LAMBDA_ORIGIN = "AWS::Lambda::Function"
ENVIRON = {
    "AWS_LAMBDA_FUNCTION_NAME": "orders",
    "NEXS_EXPORT_MAX_RETRIES": "0",  # one attempt per flush: a failing flush carries its spans over
    "NEXS_EXPORT_BREAKER_FAILURES": "100",  # never skipped: every flush tries, and reads its header
}


class _Switchable(DaemonSender):
    """A sender to the fake daemon that, while `down`, closes its socket before the first ``sendto``."""

    down = True

    def send(self, datagrams: Iterable[bytes], members: Sequence[Sequence[Any]] | None = None) -> int:
        if self.down:
            datagrams = self._closing(list(datagrams))
        return super().send(datagrams, members)

    def _closing(self, datagrams: list[bytes]) -> Iterator[bytes]:
        self.close()  # `send` holds the socket it opened: its ``sendto`` fails (EBADF)
        yield from datagrams


@pytest.fixture
def sender(daemon: FakeXRayDaemon) -> Iterator[_Switchable]:
    """The tracer configured for a Lambda function exporting to the fake daemon through a sender now down."""
    exporter = XRayExporter(in_lambda=True, transport="udp", daemon_address=daemon.address)
    switchable = exporter._sender = _Switchable("127.0.0.1", daemon.port)
    reset(environ=ENVIRON, exporters=[exporter])
    yield switchable
    exporter.shutdown()


@pytest.fixture
def invoke(monkeypatch: pytest.MonkeyPatch) -> Callable[[int], None]:
    """Runs invocation `i` of a traced handler (a root and one child) under its own ``_X_AMZN_TRACE_ID``."""

    @traced_handler
    def handler(event: dict[str, object], context: object) -> dict[str, bool]:
        with tracer.span("work"):
            return {"ok": True}

    def run(i: int) -> None:
        monkeypatch.setenv(
            "_X_AMZN_TRACE_ID", f"Root={xray_trace_id(TRACE_ID + i)};Parent={_parent(i)};Sampled=1"
        )
        assert handler({}, LambdaContext(function_name="orders")) == {"ok": True}

    return run


def _parent(i: int) -> str:
    """Lambda's function segment id in invocation `i`'s header."""
    return f"{0xA0 + i:016x}"


def _tops_by_trace(daemon: FakeXRayDaemon) -> dict[int, dict[str, Any]]:
    """The one top-level document of each invocation's trace (its root, with the child nested)."""
    tops: dict[int, dict[str, Any]] = {}
    for datagram in daemon.receive():
        doc = datagram.document()
        trace = int(str(doc["trace_id"]).replace("-", "")[1:], 16)
        assert trace not in tops, "one document per invocation"
        tops[trace] = doc
    return tops


def _lambda_claims(top: dict[str, Any]) -> int:
    """How many documents of `top`'s tree claim to be the Lambda function (origin AWS::Lambda::Function)."""
    return sum(1 for doc, _ in walk(top) if doc.get("origin") == LAMBDA_ORIGIN)


def test_carried_over_spans_hang_under_their_own_invocations_function_segment(
    daemon: FakeXRayDaemon, sender: _Switchable, invoke: Callable[[int], None]
) -> None:
    """The first flush fails; the second sends both invocations, each under its own Lambda segment."""
    invoke(1)
    assert daemon.receive() == []
    sender.down = False
    invoke(2)
    counters = stats()
    assert (counters["export_spans_carried_over"], counters["export_spans_resent"]) == (2, 2)
    tops = _tops_by_trace(daemon)
    assert sorted(tops) == [TRACE_ID + 1, TRACE_ID + 2]
    for i in (1, 2):
        top = tops[TRACE_ID + i]
        assert (top["type"], top["parent_id"]) == ("subsegment", _parent(i))
        assert [child["name"] for child in nested(top)] == ["work"]
        assert _lambda_claims(top) == 0  # Lambda's own function segment stays the only one


def test_the_last_remembered_invocations_are_placed_and_an_older_one_claims_no_function_segment(
    daemon: FakeXRayDaemon, sender: _Switchable, invoke: Callable[[int], None]
) -> None:
    """REMEMBERED + 1 invocations sent at once: the newest keep their Lambda parent, the forgotten first
    is a segment linked to its Lambda parent without Lambda's origin (no second function segment)."""
    for i in range(1, REMEMBERED + 1):
        invoke(i)
    assert daemon.receive() == []
    sender.down = False
    invoke(REMEMBERED + 1)
    tops = _tops_by_trace(daemon)
    assert sorted(tops) == [TRACE_ID + i for i in range(1, REMEMBERED + 2)]
    for i in range(2, REMEMBERED + 2):
        assert (tops[TRACE_ID + i]["type"], tops[TRACE_ID + i]["parent_id"]) == ("subsegment", _parent(i))
    forgotten = tops[TRACE_ID + 1]
    assert "type" not in forgotten
    assert (forgotten["parent_id"], forgotten["name"]) == (_parent(1), "orders")
    assert [child["name"] for child in nested(forgotten)] == ["work"]
    assert [_lambda_claims(top) for top in tops.values()] == [0] * (REMEMBERED + 1)


def test_a_root_of_a_remembered_unsampled_invocation_stays_the_function_segment() -> None:
    """Sampled=0: Lambda recorded no function segment, so the carried root is one (with the origin)."""
    unsampled = LambdaSegment(TRACE_ID, _parent(1), sampled=False)
    options = SegmentOptions(in_lambda=True, lambda_segments=remember({}, unsampled))
    doc = to_document(make_span(parent_span_id=0xA1, parent_is_remote=True), options)
    assert "type" not in doc
    assert (doc["origin"], doc["parent_id"]) == (LAMBDA_ORIGIN, _parent(1))


def test_in_lambda_a_root_of_a_trace_no_invocation_named_is_a_segment_without_lambdas_origin() -> None:
    """A trace in no remembered header may have Lambda's function segment: the root must not claim it."""
    options = SegmentOptions(
        in_lambda=True, lambda_segment=LambdaSegment(TRACE_ID + 1, _parent(2), sampled=True)
    )
    doc = to_document(make_span(parent_span_id=0xCD, parent_is_remote=True), options)
    assert "type" not in doc
    assert "origin" not in doc
    assert (doc["name"], doc["parent_id"]) == ("orders", f"{0xCD:016x}")


def test_remember_keeps_the_newest_segments_and_leaves_the_given_ones_alone() -> None:
    """Oldest dropped past the limit, a repeated trace moved to the newest, the argument unchanged."""
    segments: dict[int, LambdaSegment] = {}
    for i in range(REMEMBERED + 2):
        previous = segments
        segments = remember(previous, LambdaSegment(TRACE_ID + i, _parent(i), sampled=True))
        assert len(previous) == min(i, REMEMBERED)  # not changed by the call
    assert list(segments) == [TRACE_ID + i for i in range(2, REMEMBERED + 2)]
    again = remember(segments, LambdaSegment(TRACE_ID + 2, _parent(99), sampled=True))
    assert list(again) == [*(TRACE_ID + i for i in range(3, REMEMBERED + 2)), TRACE_ID + 2]
    assert again[TRACE_ID + 2].parent_id == _parent(99)
    assert segments[TRACE_ID + 2].parent_id == _parent(2)
