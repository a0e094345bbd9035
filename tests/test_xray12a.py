"""Session 12: X-Ray's OTLP-over-UDP mode names each datagram's spans; datagrams sent before failing count."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import pytest
from support.export_checks import export_counters, wrap_resilient
from support.spans import make_span, make_spans
from support.xray_daemon import Datagram, FakeXRayDaemon

from nexs_serverless import stats
from nexs_serverless.exporters.base import ExportResult
from nexs_serverless.exporters.errors import ErrorClass, ExportError
from nexs_serverless.exporters.xray import XRayExporter
from nexs_serverless.exporters.xray_otlp import encode_datagrams
from nexs_serverless.exporters.xray_udp import DaemonSender
from nexs_serverless.finished import FinishedSpan

# With spans of about 700 bytes, a 2,000-byte datagram carries two: six spans go as three datagrams.
LIMIT = 2000
BLOB = {"blob": "x" * 600}


def _names(datagram: Datagram) -> list[str]:
    """The names of the spans in an OTLP datagram, in its order."""
    _, request = datagram.otlp()
    return [span.name for rs in request.resource_spans for ss in rs.scope_spans for span in ss.spans]


def _received(daemon: FakeXRayDaemon) -> list[list[str]]:
    """The span names of each datagram the daemon got, in arrival order."""
    return [_names(datagram) for datagram in daemon.receive()]


def _datagrams_sent() -> int:
    """The ``xray_datagrams_sent`` counter (0 when never counted)."""
    return int(stats().get("xray_datagrams_sent", 0))


def _uncuttable(name: str = "huge") -> FinishedSpan:
    """A span whose name alone is over the datagram: no value to cut, so it is dropped."""
    return make_span(name=name + "-" + "n" * 3000, span_id=0xDEAD)


class _FailingOnce(DaemonSender):
    """A sender whose first `send` closes its socket after `after` datagrams, so the next ``sendto`` fails."""

    def __init__(self, port: int, after: int) -> None:
        super().__init__("127.0.0.1", port)
        self.after = after
        self.failed = False

    def send(self, datagrams: Iterable[bytes], members: Sequence[Sequence[Any]] | None = None) -> int:
        if not self.failed:
            self.failed = True
            datagrams = self._closing(list(datagrams))
        return super().send(datagrams, members)

    def _closing(self, datagrams: list[bytes]) -> Iterator[bytes]:
        """`datagrams`, the socket closed once `after` of them were taken."""
        for i, datagram in enumerate(datagrams):
            if i == self.after:
                self.close()
            yield datagram


def _exporter(daemon: FakeXRayDaemon, *, mode: str = "otlp", fail_after: int = 1) -> XRayExporter:
    """An exporter aimed at the fake daemon whose first send fails after `fail_after` datagrams."""
    exporter = XRayExporter(mode=mode, daemon_address=daemon.address, max_datagram_bytes=LIMIT)
    exporter._sender = _FailingOnce(daemon.port, fail_after)
    return exporter


# -- xray_otlp: the spans each datagram carries ------------------------------------------------


def test_encode_datagrams_names_the_spans_of_each_datagram_and_none_dropped() -> None:
    """Split, sampled and unsampled, one span cut and one dropped: each datagram's members are its spans."""
    cut = make_span(name="cut", span_id=0xC0, attributes={"body": "b" * 5000})
    unsampled = make_spans(3, "unsampled", trace_flags=0, attributes=BLOB)
    huge = _uncuttable()
    spans = [*make_spans(5, attributes=BLOB), cut, huge, *unsampled]
    datagrams, members, dropped = encode_datagrams(spans, LIMIT)
    assert len(datagrams) > 4  # split, and T1U datagrams after the T1S ones
    assert [_names(Datagram(raw)) for raw in datagrams] == [[span.name for span in part] for part in members]
    assert [Datagram(raw).otlp()[0] for raw in datagrams][-1] == "T1U"
    assert dropped == [huge]
    carried = [span for part in members for span in part]
    assert any(span is cut for span in carried)  # the caller's span, not the cut copy sent
    assert sorted(id(span) for span in [*carried, *dropped]) == sorted(id(span) for span in spans)


def test_encode_datagrams_one_datagram_carries_the_whole_batch() -> None:
    """The usual batch: one datagram, whose members are the batch."""
    spans = make_spans(4)
    datagrams, members, dropped = encode_datagrams(spans)
    assert (len(datagrams), members, dropped) == (1, [spans], [])


# -- XRayExporter in OTLP mode: a socket failing part way --------------------------------------


def test_otlp_failure_after_a_datagram_names_only_the_unsent_spans_and_counts_the_sent_one(
    daemon: FakeXRayDaemon,
) -> None:
    """The first datagram went out: the error names the other four spans; one datagram counts sent."""
    exporter = _exporter(daemon)
    try:
        with pytest.raises(ExportError) as caught:
            exporter.send(make_spans(6, attributes=BLOB), 1.0)
    finally:
        exporter.shutdown()
    assert caught.value.error_class == ErrorClass.NETWORK
    assert [span.name for span in caught.value.undelivered or ()] == [f"span-{i}" for i in range(2, 6)]
    assert _received(daemon) == [["span-0", "span-1"]]
    assert _datagrams_sent() == 1


def test_otlp_retry_after_a_partial_send_sends_each_span_once(daemon: FakeXRayDaemon) -> None:
    """The socket fails after two of three datagrams: the retry sends only the third's spans."""
    exporter = _exporter(daemon, fail_after=2)
    try:
        assert wrap_resilient(exporter).export(make_spans(6, attributes=BLOB)) is ExportResult.SUCCESS
    finally:
        exporter.shutdown()
    assert _received(daemon) == [["span-0", "span-1"], ["span-2", "span-3"], ["span-4", "span-5"]]
    assert _datagrams_sent() == 3
    assert export_counters() == {"export_errors_network": 1, "export_retries": 1, "export_spans_sent": 6}


def test_otlp_out_of_retries_carries_over_only_the_unsent_spans(daemon: FakeXRayDaemon) -> None:
    """No retry left: the four unsent spans wait for the next flush, which sends them once."""
    exporter = _exporter(daemon)
    wrapped = wrap_resilient(exporter, max_retries=0)
    try:
        assert wrapped.export(make_spans(6, attributes=BLOB)) is ExportResult.FAILURE
        assert len(wrapped.carryover) == 4
        assert wrapped.export(make_spans(1, "next")) is ExportResult.SUCCESS
    finally:
        exporter.shutdown()
    received = [name for names in _received(daemon) for name in names]
    assert received == [*(f"span-{i}" for i in range(6)), "next-0"]
    assert _datagrams_sent() == 4  # one before the failure, three in the next flush
    assert export_counters() == {
        "export_errors_network": 1,
        "export_spans_carried_over": 4,
        "export_spans_resent": 4,
        "export_spans_sent": 7,
    }


def test_otlp_partial_send_after_a_dropped_span_drops_it_once(daemon: FakeXRayDaemon) -> None:
    """A span too big for any datagram is dropped once; the retry sends only what did not go out."""
    exporter = _exporter(daemon)
    spans = make_spans(4, attributes=BLOB)
    spans.insert(2, _uncuttable())
    try:
        assert wrap_resilient(exporter).export(spans) is ExportResult.SUCCESS
    finally:
        exporter.shutdown()
    received = _received(daemon)
    assert [name for names in received for name in names] == [f"span-{i}" for i in range(4)]
    assert _datagrams_sent() == len(received)
    assert export_counters() == {
        "export_errors_network": 1,
        "export_retries": 1,
        "export_spans_sent": 4,
        "spans_dropped_oversize": 1,
    }


# -- xray_datagrams_sent in segment mode ----------------------------------------------------------


def _three_traces() -> list[FinishedSpan]:
    """Three one-span traces: three documents, one datagram each."""
    return [make_span(name=f"root-{t}", trace_id=0x100 + t, span_id=t + 1) for t in range(3)]


def test_segments_failure_after_a_datagram_counts_the_one_sent(daemon: FakeXRayDaemon) -> None:
    """Segment documents: the datagram that went out before the failure is counted."""
    exporter = _exporter(daemon, mode="segments")
    try:
        with pytest.raises(ExportError):
            exporter.send(_three_traces(), 1.0)
    finally:
        exporter.shutdown()
    assert len(daemon.receive()) == 1
    assert _datagrams_sent() == 1


def test_failure_on_the_first_datagram_counts_none_and_the_retry_sends_all(daemon: FakeXRayDaemon) -> None:
    """Nothing went out: no datagram counts, and the retry sends the whole batch once."""
    exporter = _exporter(daemon, fail_after=0)
    try:
        with pytest.raises(ExportError) as caught:
            exporter.send(make_spans(6, attributes=BLOB), 1.0)
        assert (caught.value.undelivered, _datagrams_sent(), daemon.receive()) == (None, 0, [])
        assert exporter.send(make_spans(6, attributes=BLOB), 1.0) == 0
    finally:
        exporter.shutdown()
    assert [name for names in _received(daemon) for name in names] == [f"span-{i}" for i in range(6)]
    assert _datagrams_sent() == 3
