"""OpenTelemetry SDK exporters plug in unchanged and read our spans."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind as OTelKind
from opentelemetry.trace import StatusCode as OTelStatus
from support.exporter_spans import make_span

from nexs_serverless import Link, SpanContext, SpanKind, configure, flush, stats, traced_handler, tracer
from nexs_serverless.exporters import ExportResult
from nexs_serverless.exporters.otel_sdk import OTelSDKExporter, to_readable_span
from nexs_serverless.testing import LambdaContext


def test_sdk_exporter_receives_readable_spans() -> None:
    """An SDK InMemorySpanExporter configured as is gets ReadableSpans with our data."""
    sdk = InMemorySpanExporter()
    configure(exporters=[sdk], environ={"OTEL_SPAN_EVENT_COUNT_LIMIT": "1"})
    with tracer.span("parent", kind=SpanKind.SERVER) as parent:
        with tracer.span(
            "child", attributes={"k": "v", "n": [1, 2]}, links=[Link(SpanContext(7, 8), {"l": 1})]
        ) as child:
            child.add_event("e1", {"x": 1})
            child.add_event("e2")
            child.set_attribute("bad", None)
    flush()
    spans = {s.name: s for s in sdk.get_finished_spans()}
    got = spans["child"]
    assert isinstance(got, ReadableSpan)
    assert got.context.trace_id == child.trace_id
    assert got.context.span_id == child.span_id
    assert got.parent is not None
    assert got.parent.span_id == parent.span_id
    assert spans["parent"].kind is OTelKind.SERVER
    assert got.attributes == {"k": "v", "n": (1, 2)}
    assert got.dropped_attributes == 1
    assert [e.name for e in got.events] == ["e1"]
    assert got.dropped_events == 1
    assert got.links[0].context.trace_id == 7
    assert got.links[0].attributes == {"l": 1}
    assert got.start_time == child.start_ns
    assert got.end_time == child.end_ns
    assert got.instrumentation_scope is not None
    assert got.instrumentation_scope.name == "nexs_serverless"


def test_sdk_otlp_encoder_accepts_converted_spans() -> None:
    """The SDK's own OTLP encoder serialises our converted spans (ids, status, resource)."""
    configure(exporters=[])

    @traced_handler
    def handler(event: object, context: object) -> None:
        raise RuntimeError("x")

    memory = InMemorySpanExporter()
    configure(exporters=[memory])
    try:
        handler({}, LambdaContext())
    except RuntimeError:
        pass
    (span,) = memory.get_finished_spans()
    request = encode_spans([span])
    encoded = request.resource_spans[0].scope_spans[0].spans[0]
    assert encoded.trace_id == span.context.trace_id.to_bytes(16, "big")
    assert encoded.status.code == OTelStatus.ERROR.value
    assert any(kv.key == "faas.trigger" for kv in encoded.attributes)


class _HangingExporter(SpanExporter):
    """An SDK exporter that blocks until released, like one stuck on a dead endpoint."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started = threading.Event()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.started.set()
        self.release.wait(10)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.release.set()


def test_hanging_sdk_exporter_cannot_hold_the_flush_past_its_budget() -> None:
    """The adapter stops waiting at the flush deadline and counts the overrun."""
    hanging = _HangingExporter()
    configure(exporters=[hanging])
    try:
        with tracer.span("s"):
            pass
        assert flush(budget_ms=50) == 1
        assert hanging.started.is_set()
        assert stats()["export_overran"] == 1
    finally:
        hanging.release.set()


def test_to_readable_span_keeps_remote_parent_flag() -> None:
    """A span continuing a remote context converts with parent.is_remote set."""
    with tracer.span("s", parent=SpanContext(1, 2, 1, (("a", "b"),), True)) as span:
        pass
    readable = to_readable_span(span)
    assert isinstance(readable, ReadableSpan)
    assert readable.parent is not None
    assert readable.parent.is_remote
    assert readable.context.trace_state.get("a") == "b"


def test_a_span_the_conversion_fails_on_is_counted_and_the_rest_delivered() -> None:
    """A kind outside OpenTelemetry's range drops that span only, counted, and export does not raise."""
    sdk = InMemorySpanExporter()
    result = OTelSDKExporter(sdk).export([make_span(span_id=1), make_span(span_id=2, kind=7)])
    assert result.name == "SUCCESS"  # a `Dropped` naming the span left out
    assert [span.context.span_id for span in sdk.get_finished_spans()] == [1]
    assert stats()["spans_dropped_serialization"] == 1


def test_no_thread_for_the_export_is_a_failure_not_an_exception(monkeypatch: pytest.MonkeyPatch) -> None:
    """When the worker thread cannot start (process limits), export reports FAILURE instead of raising."""

    def refuse(self: threading.Thread) -> None:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", refuse)
    assert OTelSDKExporter(InMemorySpanExporter()).export([make_span()]) is ExportResult.FAILURE
