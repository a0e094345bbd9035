"""Session 11: X-Ray UDP and the OpenTelemetry SDK adapter count each span once (sent, kept or dropped)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from support.export_checks import export_counters, wrap_resilient
from support.otlp_receiver import Fault, OTLPReceiver
from support.spans import make_span
from support.xray_daemon import FakeXRayDaemon, walk

from nexs_serverless.exporters.base import ExportResult
from nexs_serverless.exporters.errors import ErrorClass, ExportError
from nexs_serverless.exporters.otel_sdk import OTelSDKExporter
from nexs_serverless.exporters.xray import XRayExporter
from nexs_serverless.exporters.xray_pack import pack_parts
from nexs_serverless.exporters.xray_segments import SegmentOptions
from nexs_serverless.exporters.xray_udp import HEADER, MAX_DATAGRAM_BYTES, DaemonSender
from nexs_serverless.finished import FinishedSpan

LIMIT = 3000


def _ids(document: bytes) -> list[str]:
    """The span ids in a document and every document nested in it."""
    return sorted(str(doc["id"]) for doc, _ in walk(json.loads(document)))


def _span_ids(spans: Sequence[FinishedSpan]) -> list[str]:
    return sorted(f"{span.span_id:016x}" for span in spans)


def _three_traces() -> list[FinishedSpan]:
    """Three traces of a root and its child each: three documents, one datagram each."""
    spans = []
    for t in range(3):
        spans.append(
            make_span(name=f"child-{t}", trace_id=0x100 + t, span_id=2 * t + 2, parent_span_id=2 * t + 1)
        )
        spans.append(make_span(name=f"root-{t}", trace_id=0x100 + t, span_id=2 * t + 1))
    return spans


# -- xray_pack: the spans each document carries -------------------------------------------------


def test_pack_parts_names_the_spans_of_each_whole_tree_document() -> None:
    """The one-encode path: each document's spans are its tree's, in batch order."""
    spans = _three_traces()
    documents, members, dropped = pack_parts(spans, SegmentOptions(), LIMIT)
    assert dropped == []
    assert [[span.name for span in part] for part in members] == [
        [f"child-{t}", f"root-{t}"] for t in range(3)
    ]
    assert [_ids(document) for document in documents] == [_span_ids(part) for part in members]


def test_pack_parts_names_the_spans_of_split_off_subtrees_and_leaves_out_the_dropped() -> None:
    """A tree too big for one document: every document names exactly the spans in it; drops in none."""
    blob = {"blob": "x" * 1000}
    children = [make_span(name=f"c{i}", span_id=10 + i, parent_span_id=1, attributes=blob) for i in range(6)]
    grandchild = make_span(name="g", span_id=30, parent_span_id=10)
    broken = make_span(name="broken", span_id=40, parent_span_id=1, attributes={"bad": object()})
    spans = [grandchild, *children, broken, make_span(name="root", span_id=1)]
    documents, members, dropped = pack_parts(spans, SegmentOptions(), LIMIT)
    assert len(documents) > 1  # split
    assert [_ids(document) for document in documents] == [_span_ids(part) for part in members]
    carried = [span for part in members for span in part]
    assert [span.name for span in dropped] == ["broken"]
    assert sorted(id(span) for span in [*carried, *dropped]) == sorted(id(span) for span in spans)


# -- DaemonSender: a failure after some datagrams went out ----------------------------------------


@pytest.fixture
def sender(daemon: FakeXRayDaemon) -> Iterator[DaemonSender]:
    """A sender aimed at the fake daemon."""
    made = DaemonSender("127.0.0.1", daemon.port)
    yield made
    made.close()


def _closing_after(sender: DaemonSender, datagrams: list[bytes], count: int) -> Iterator[bytes]:
    """`datagrams`, the sender's socket closed once `count` of them were taken: the next ``sendto`` fails."""
    for i, datagram in enumerate(datagrams):
        if i == count:
            sender.close()
        yield datagram


def test_udp_a_socket_failing_after_a_datagram_names_only_the_unsent_spans_undelivered(
    daemon: FakeXRayDaemon, sender: DaemonSender
) -> None:
    """The first trace arrived; the error names the other two traces' spans, not the first's."""
    documents, members, _ = pack_parts(_three_traces(), SegmentOptions(), LIMIT)
    datagrams = [HEADER + document for document in documents]
    with pytest.raises(ExportError) as caught:
        sender.send(_closing_after(sender, datagrams, 1), members)
    assert caught.value.error_class == ErrorClass.NETWORK
    assert caught.value.undelivered is not None
    assert [span.name for span in caught.value.undelivered] == ["child-1", "root-1", "child-2", "root-2"]
    assert [_ids(datagram.body) for datagram in daemon.receive()] == [_span_ids(members[0])]


def test_udp_a_datagram_over_the_limit_after_others_names_its_spans_and_the_later_ones(
    daemon: FakeXRayDaemon, sender: DaemonSender
) -> None:
    """BAD_REQUEST for the oversized second datagram: its spans and the third's are undelivered."""
    first, second, third = (make_span(name=name, span_id=i + 1) for i, name in enumerate("abc"))
    datagrams = [HEADER + b"{}", b"x" * (MAX_DATAGRAM_BYTES + 1), HEADER + b"{}"]
    with pytest.raises(ExportError) as caught:
        sender.send(datagrams, [[first], [second], [third]])
    assert caught.value.error_class == ErrorClass.BAD_REQUEST
    assert caught.value.undelivered == [second, third]
    assert len(daemon.receive()) == 1


def test_udp_a_failure_before_any_datagram_went_out_leaves_the_whole_batch_to_retry(
    daemon: FakeXRayDaemon, sender: DaemonSender
) -> None:
    """Nothing arrived: `undelivered` stays unset, so the whole batch is retried, kept or dropped."""
    documents, members, _ = pack_parts(_three_traces(), SegmentOptions(), LIMIT)
    sender.open()
    with pytest.raises(ExportError) as caught:
        sender.send(_closing_after(sender, [HEADER + document for document in documents], 0), members)
    assert caught.value.undelivered is None
    assert daemon.receive() == []


# -- OTelSDKExporter behind the resilience wrapper ------------------------------------------------


def _with_unconvertible() -> list[FinishedSpan]:
    """Spans "a" and "c", and between them one whose kind is outside OpenTelemetry's range."""
    return [
        make_span(name="a", span_id=1),
        make_span(name="bad", span_id=2, kind=7),
        make_span(name="c", span_id=3),
    ]


def test_sdk_span_the_adapter_cannot_convert_is_counted_dropped_not_sent() -> None:
    """Two spans reach the SDK exporter and count as sent; the third counts only as dropped."""
    sdk = InMemorySpanExporter()
    assert wrap_resilient(OTelSDKExporter(sdk)).export(_with_unconvertible()).name == "SUCCESS"
    assert [span.name for span in sdk.get_finished_spans()] == ["a", "c"]
    assert export_counters() == {"export_spans_sent": 2, "spans_dropped_serialization": 1}


def test_sdk_failed_export_keeps_only_the_converted_spans_and_counts_the_drop_once() -> None:
    """A refused SDK export keeps "a" and "c" (not the dropped one) for the next flush, which sends them."""
    with OTLPReceiver() as receiver:
        sdk = OTLPSpanExporter(endpoint=receiver.url, timeout=5)
        wrapped = wrap_resilient(OTelSDKExporter(sdk))
        receiver.misbehave(Fault.status_code(400))  # not retried by the SDK: one FAILURE
        assert wrapped.export(_with_unconvertible()) is ExportResult.FAILURE
        assert export_counters() == {
            "export_errors_unknown": 1,
            "export_spans_carried_over": 2,
            "spans_dropped_serialization": 1,
        }
        assert wrapped.export([make_span(name="d", span_id=4)]) is ExportResult.SUCCESS
        assert receiver.span_names() == ["a", "c", "d"]
        counters: dict[str, Any] = export_counters()
        wrapped.shutdown()
    assert counters == {
        "export_errors_unknown": 1,
        "export_spans_carried_over": 2,
        "export_spans_resent": 2,
        "export_spans_sent": 3,
        "spans_dropped_serialization": 1,
    }


# -- XRayExporter over UDP behind the resilience wrapper (needs the xray.py change) ---------------


class _FailingOnce(DaemonSender):
    """A real sender whose first `send` loses its socket after the first datagram."""

    failed = False

    def send(self, datagrams: Iterable[bytes], members: Sequence[Sequence[Any]] | None = None) -> int:
        if not self.failed:
            self.failed = True
            datagrams = _closing_after(self, list(datagrams), 1)
        return super().send(datagrams, members)


def test_xray_udp_retry_sends_only_the_datagrams_that_did_not_go_out(daemon: FakeXRayDaemon) -> None:
    """The socket fails after the first datagram: the retry sends the other two; each span counts once."""
    exporter = XRayExporter(daemon_address=daemon.address)
    exporter._sender = _FailingOnce("127.0.0.1", daemon.port)
    try:
        assert wrap_resilient(exporter).export(_three_traces()) is ExportResult.SUCCESS
    finally:
        exporter.shutdown()
    trees = [[2 * t + 1, 2 * t + 2] for t in range(3)]
    assert [_ids(datagram.body) for datagram in daemon.receive()] == [
        [f"{i:016x}" for i in ids] for ids in trees
    ]
    assert export_counters() == {"export_errors_network": 1, "export_retries": 1, "export_spans_sent": 6}
