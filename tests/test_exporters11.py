"""Exporter leftovers: an overrun SDK export is delivered once; Cloud Trace retries only undelivered calls."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from support.cloud_trace_server import FakeCloudTrace
from support.exporter_spans import make_span
from support.otlp_receiver import Fault, OTLPReceiver

from nexs_serverless import configure, flush, stats, tracer
from nexs_serverless.exporters import CloudTraceExporter
from nexs_serverless.exporters.cloud_trace import MAX_SPANS_PER_CALL
from nexs_serverless.exporters.errors import ErrorClass, ExportError
from nexs_serverless.exporters.resilient import Options, ResilientExporter
from nexs_serverless.testing import reset

# A flush that must overrun gets a short budget; every other flush a generous one, so that
# only the export held on purpose can reach a deadline, however loaded the machine.
_OVERRUN_MS = 500
_AMPLE_MS = 60_000


def _finish_overrun_exports() -> None:
    """Wait for the SDK bridge's background export threads (no clock involved)."""
    for thread in threading.enumerate():
        if thread.name == "nexs-otel-export":
            thread.join(60)
            assert not thread.is_alive(), "an overrun SDK export never finished"


def _span(name: str) -> None:
    with tracer.span(name):
        pass


@pytest.fixture
def bridge_loaded() -> None:
    """One flush through the SDK bridge first, so that a short budget is spent exporting, not loading.

    A flush's budget starts before its first-use work: building the stages and
    exporters, loading the bridge's modules (under pytest, each compiled by the
    assertion rewriter on first import, since this package provides a plugin).
    On a loaded machine, under coverage, that took more than the 500 ms of an
    overrun flush: the resilience layer then rightly made no attempt
    (``export_deadline_reached``), and nothing overran. After this flush, less
    than a millisecond of work stands before the export.
    """
    sdk = InMemorySpanExporter()
    configure(exporters=[sdk])
    _span("warm-up")
    flush(budget_ms=_AMPLE_MS)
    assert [span.name for span in sdk.get_finished_spans()] == ["warm-up"]
    reset()  # counters and spans as the autouse fixture left them; the modules stay loaded


class _GatedReceiver(OTLPReceiver):
    """An OTLP/HTTP receiver that holds its answer to the first request until `gate` is set.

    The flush's deadline passes while the SDK exporter waits, however slow the
    machine: an overrun without a stopwatch.
    """

    def __init__(self, first_answer: Fault | None = None) -> None:
        super().__init__()
        self.gate = threading.Event()
        self._first_answer = first_answer
        self._held = False

    def _next_fault(self) -> Fault | None:
        if self._held:
            return super()._next_fault()
        self._held = True
        self.gate.wait(60)
        return self._first_answer

    def close(self) -> None:
        self.gate.set()
        super().close()


def _overrun_then_flush(receiver: _GatedReceiver) -> None:
    """Flush "first" into the held request (an overrun), release it, then flush "second"."""
    configure(exporters=[OTLPSpanExporter(endpoint=receiver.url)])
    _span("first")
    flush(budget_ms=_OVERRUN_MS)
    assert stats()["export_overran"] == 1
    receiver.gate.set()
    _finish_overrun_exports()
    _span("second")
    flush(budget_ms=_AMPLE_MS)


@pytest.mark.usefixtures("bridge_loaded")
def test_sdk_bridge_an_overrun_export_that_succeeds_late_is_not_sent_again() -> None:
    """The real OTLP SDK exporter answered after the flush deadline: the next flush does not send it twice."""
    receiver = _GatedReceiver()
    with receiver:
        _overrun_then_flush(receiver)
        assert receiver.span_names() == ["first", "second"]
    counters = stats()
    assert counters["export_spans_delivered_late"] == 1
    assert counters["export_spans_sent"] == 2  # each span counted once, as it arrived once


@pytest.mark.usefixtures("bridge_loaded")
def test_sdk_bridge_an_overrun_export_that_fails_late_is_sent_again() -> None:
    """The overrun export refused after the deadline: its spans go with the next flush, counted as such."""
    receiver = _GatedReceiver(Fault.status_code(400))
    with receiver:
        _overrun_then_flush(receiver)
        assert receiver.span_names() == ["first", "second"]
    counters = stats()
    assert counters["export_spans_failed_late"] == 1
    assert "export_spans_delivered_late" not in counters


class _Scripted(SpanExporter):
    """An SDK exporter whose exports numbered in `held` wait for `gate`; the others answer from `results`."""

    def __init__(self, *results: SpanExportResult, held: tuple[int, ...] = (1,)) -> None:
        self.gate = threading.Event()
        self.calls: list[list[str]] = []
        self.results = list(results)
        self.held = held

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.calls.append([span.name for span in spans])
        if len(self.calls) in self.held:
            self.gate.wait(60)
            return SpanExportResult.SUCCESS
        return self.results.pop(0) if self.results else SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.gate.set()


@pytest.mark.usefixtures("bridge_loaded")
def test_sdk_bridge_spans_delivered_late_stay_out_while_they_keep_coming_back() -> None:
    """The export after a late success fails: the late-delivered spans, carried once more, stay left out."""
    sdk = _Scripted(SpanExportResult.FAILURE)
    configure(exporters=[sdk])
    try:
        _span("a")
        flush(budget_ms=_OVERRUN_MS)  # overruns: "a" is carried over
        sdk.gate.set()
        _finish_overrun_exports()  # "a" delivered after all
        _span("b")
        flush(budget_ms=_AMPLE_MS)  # "a" left out; "b" fails: both carried again
        _span("c")
        flush(budget_ms=_AMPLE_MS)
    finally:
        sdk.gate.set()
    assert sdk.calls == [["a"], ["b"], ["b", "c"]]


@pytest.mark.usefixtures("bridge_loaded")
def test_sdk_bridge_a_flush_while_the_overrun_export_runs_waits_for_its_result() -> None:
    """A flush during the overrun starts nothing; the next sends the rest, not the late-delivered spans."""
    sdk = _Scripted()
    configure(exporters=[sdk])
    try:
        _span("a")
        flush(budget_ms=_OVERRUN_MS)
        _span("b")
        flush(budget_ms=_AMPLE_MS)  # "a" still being exported: skipped at once, "a" and "b" carried
        assert stats()["export_skipped_busy"] == 1
        sdk.gate.set()
        _finish_overrun_exports()
        _span("c")
        flush(budget_ms=_AMPLE_MS)
    finally:
        sdk.gate.set()
    assert sdk.calls == [["a"], ["b", "c"]]


@pytest.mark.usefixtures("bridge_loaded")
def test_sdk_bridge_two_overruns_in_a_row_deliver_each_span_once() -> None:
    """The export after a late success overruns too: when all comes back, both late batches stay out."""
    sdk = _Scripted(held=(1, 2))
    configure(exporters=[sdk])
    try:
        _span("a")
        flush(budget_ms=_OVERRUN_MS)  # overruns: "a" carried
        sdk.gate.set()
        _finish_overrun_exports()  # "a" delivered after all
        sdk.gate.clear()
        _span("b")
        flush(budget_ms=_OVERRUN_MS)  # "a" left out, "b" overruns: the caller keeps "a" and "b"
        sdk.gate.set()
        _finish_overrun_exports()  # "b" delivered after all
        _span("c")
        flush(budget_ms=_AMPLE_MS)
    finally:
        sdk.gate.set()
    assert sdk.calls == [["a"], ["b"], ["c"]]
    assert stats()["export_spans_delivered_late"] == 2


def _batch() -> list[object]:
    return [make_span(span_id=index + 1) for index in range(MAX_SPANS_PER_CALL + 5)]


def test_cloud_trace_a_failed_later_call_names_only_its_spans_undelivered(
    trace_api: FakeCloudTrace, cloud_trace: CloudTraceExporter
) -> None:
    """The second BatchWriteSpans call fails: the error says only its spans are still to send."""
    trace_api.faults.extend([None, (grpc.StatusCode.UNAVAILABLE, "down")])  # type: ignore[list-item]
    spans = _batch()
    with pytest.raises(ExportError) as raised:
        cloud_trace.send(spans, 5.0)  # type: ignore[arg-type]
    assert raised.value.error_class == ErrorClass.SERVER
    assert raised.value.undelivered == spans[MAX_SPANS_PER_CALL:]
    assert len(trace_api.spans()) == MAX_SPANS_PER_CALL


def test_cloud_trace_a_retry_after_a_failed_later_call_sends_each_span_once(
    trace_api: FakeCloudTrace, cloud_trace: CloudTraceExporter
) -> None:
    """Behind the resilience layer a retry writes only the undelivered spans: each arrives and counts once."""
    trace_api.faults.extend([None, (grpc.StatusCode.UNAVAILABLE, "down")])  # type: ignore[list-item]
    resilient = ResilientExporter(
        cloud_trace, options=Options(max_batch_spans=5000, max_retries=1, backoff_s=0.0), sleep=lambda _: None
    )
    resilient.export(_batch())  # type: ignore[arg-type]
    assert [len(request.spans) for request in trace_api.requests] == [MAX_SPANS_PER_CALL, 5]
    assert len({span.span_id for span in trace_api.spans()}) == MAX_SPANS_PER_CALL + 5  # type: ignore[attr-defined]
    assert stats()["export_spans_sent"] == MAX_SPANS_PER_CALL + 5
