"""Session 12: Cloud Trace converts each span once per export, however often the resilience layer retries."""

from __future__ import annotations

from collections import Counter
from typing import Any

import grpc
import pytest
from support.cloud_trace_server import FakeCloudTrace
from support.export_checks import export_counters
from support.exporter_spans import make_span

from nexs_serverless.exporters import cloud_trace as cloud_trace_module
from nexs_serverless.exporters._cloud_trace_span import to_span_pb
from nexs_serverless.exporters.base import ExportResult
from nexs_serverless.exporters.cloud_trace import MAX_SPANS_PER_CALL, CloudTraceExporter
from nexs_serverless.exporters.errors import ErrorClass, ExportError
from nexs_serverless.exporters.resilient import Options, ResilientExporter

DOWN = (grpc.StatusCode.UNAVAILABLE, "down")


class _Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no text for this value")


@pytest.fixture
def conversions(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The span ids the exporter converts, in order (the real conversion still runs)."""
    converted: list[int] = []

    def counting(span: Any, project: str) -> Any:
        converted.append(span.span_id)
        return to_span_pb(span, project)

    monkeypatch.setattr(cloud_trace_module, "to_span_pb", counting)
    return converted


def _resilient(exporter: CloudTraceExporter, *, max_retries: int = 2) -> ResilientExporter:
    """`exporter` behind retries without backoff, in one request per send (up to 5000 spans)."""
    options = Options(max_retries=max_retries, backoff_s=0.0, max_batch_spans=5000, timeout_s=30.0)
    return ResilientExporter(exporter, options=options, sleep=lambda _: None)


def _received(trace_api: FakeCloudTrace) -> Counter[str]:
    return Counter(span.span_id for span in trace_api.spans())  # type: ignore[attr-defined]


def test_retries_of_a_failed_call_convert_each_span_once(
    trace_api: FakeCloudTrace, cloud_trace: CloudTraceExporter, conversions: list[int]
) -> None:
    """Two UNAVAILABLE answers and two retries: three conversions for three spans, each arriving once."""
    trace_api.faults.extend([DOWN, DOWN])
    spans = [make_span(span_id=i) for i in (1, 2, 3)]
    assert _resilient(cloud_trace).export(spans) is ExportResult.SUCCESS
    assert conversions == [1, 2, 3]
    assert _received(trace_api) == {f"{i:016x}": 1 for i in (1, 2, 3)}
    assert export_counters() == {"export_errors_server": 2, "export_retries": 2, "export_spans_sent": 3}


def test_a_retry_after_a_failed_later_call_converts_only_once(
    trace_api: FakeCloudTrace, cloud_trace: CloudTraceExporter, conversions: list[int]
) -> None:
    """Over 1000 spans, the second call fails: its retry reuses the converted spans it sends again."""
    trace_api.faults.extend([None, DOWN])  # type: ignore[list-item]
    count = MAX_SPANS_PER_CALL + 5
    spans = [make_span(span_id=i + 1) for i in range(count)]
    assert _resilient(cloud_trace).export(spans) is ExportResult.SUCCESS
    assert sorted(conversions) == list(range(1, count + 1))
    assert [len(request.spans) for request in trace_api.requests] == [MAX_SPANS_PER_CALL, 5]
    assert set(_received(trace_api).values()) == {1}
    assert len(_received(trace_api)) == count
    assert export_counters() == {"export_errors_server": 1, "export_retries": 1, "export_spans_sent": count}


def test_an_unconvertible_span_is_tried_and_counted_once_across_retries(
    trace_api: FakeCloudTrace, cloud_trace: CloudTraceExporter, conversions: list[int]
) -> None:
    """The broken span's conversion runs once and counts one serialization drop; the others convert once."""
    trace_api.faults.extend([DOWN, DOWN])
    broken = make_span(span_id=1, attributes={"value": _Unprintable()})
    spans = [broken, make_span(span_id=2), make_span(span_id=3)]
    assert _resilient(cloud_trace).export(spans) is ExportResult.SUCCESS
    assert conversions == [1, 2, 3]
    assert _received(trace_api) == {f"{2:016x}": 1, f"{3:016x}": 1}
    assert export_counters() == {
        "export_errors_server": 2,
        "export_retries": 2,
        "export_spans_sent": 2,
        "spans_dropped_serialization": 1,
    }


def test_a_failed_send_names_all_its_spans_and_sending_those_converts_nothing(
    trace_api: FakeCloudTrace, cloud_trace: CloudTraceExporter, conversions: list[int]
) -> None:
    """The seam itself: a call that fails hands back every span, and `send` of that list only writes."""
    trace_api.faults.append(DOWN)
    spans = [make_span(span_id=i) for i in (1, 2)]
    with pytest.raises(ExportError) as raised:
        cloud_trace.send(spans, 5.0)
    undelivered = raised.value.undelivered
    assert raised.value.error_class == ErrorClass.SERVER
    assert undelivered is not None
    assert undelivered == spans
    assert cloud_trace.send(undelivered, 5.0) == 0
    assert conversions == [1, 2]
    assert _received(trace_api) == {f"{1:016x}": 1, f"{2:016x}": 1}
