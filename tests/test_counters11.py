"""Session 11: each span counts once (sent, rejected, or dropped with its reason), however often retried."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from support.azure_ingestion import FakeIngestion
from support.cloud_trace_server import FakeCloudTrace
from support.export_checks import ScriptedCollector, export_counters, scripted_collector, wrap_resilient
from support.made_exporters import made_exporters
from support.otlp_receiver import Fault, OTLPReceiver
from support.spans import make_span, make_spans
from support.xray_daemon import FakeXRayDaemon

from nexs_serverless.exporters.azure_monitor import AzureMonitorExporter
from nexs_serverless.exporters.base import ExportResult
from nexs_serverless.exporters.cloud_trace import CloudTraceExporter
from nexs_serverless.exporters.file import FileExporter
from nexs_serverless.exporters.otlp_grpc import OTLPGrpcExporter
from nexs_serverless.exporters.otlp_http import OTLPHttpExporter
from nexs_serverless.exporters.xray import XRayExporter

BLOB = {"blob": "x" * 1000}
HUGE = {"blob": "y" * 10_000}  # over LIMIT on its own
LIMIT = 3000
# Keys are never cut: no X-Ray datagram can take these (OTLP mode: attributes; segments: annotations).
UNFITTABLE = {
    "otlp": {f"attribute.{i:05d}." + "k" * 40: "v" * 100 for i in range(2000)},
    "segments": {f"k{i:04d}" + "x" * 60: 1 for i in range(100)},
}


class _Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no text for this value")


def _with_one_huge(count: int = 4) -> list[Any]:
    """`count` spans of about 1 KB, the second replaced by one of 10 KB named "huge"."""
    spans = make_spans(count, attributes=BLOB)
    spans[1] = make_span(name="huge", span_id=99, attributes=HUGE)
    return spans


# -- OTLP/HTTP -------------------------------------------------------------------------------


@pytest.fixture
def http_exporter(receiver: OTLPReceiver) -> Iterator[OTLPHttpExporter]:
    otlp = OTLPHttpExporter(endpoint=receiver.url, timeout_s=5.0, max_request_bytes=LIMIT)
    yield otlp
    otlp.shutdown()


def test_http_span_over_the_request_limit_is_counted_dropped_not_sent(
    receiver: OTLPReceiver, http_exporter: OTLPHttpExporter
) -> None:
    """Three spans arrive and count as sent; the one over the limit counts only as dropped."""
    assert wrap_resilient(http_exporter).export(_with_one_huge()) is ExportResult.SUCCESS
    assert receiver.span_names() == ["span-0", "span-2", "span-3"]
    assert export_counters() == {"export_spans_sent": 3, "spans_dropped_oversize": 1}


def test_http_oversize_drop_is_counted_once_across_retries(
    receiver: OTLPReceiver, http_exporter: OTLPHttpExporter
) -> None:
    """A 503 on the first request: the retry sends the others; the oversized one is not dropped again."""
    receiver.misbehave(Fault.status_code(503))
    assert wrap_resilient(http_exporter).export(_with_one_huge()) is ExportResult.SUCCESS
    assert receiver.span_names() == ["span-0", "span-2", "span-3"]
    assert export_counters() == {
        "export_errors_server": 1,
        "export_retries": 1,
        "export_spans_sent": 3,
        "spans_dropped_oversize": 1,
    }


def test_http_span_refused_alone_with_413_is_counted_dropped_not_sent(
    receiver: OTLPReceiver, otlp_http: OTLPHttpExporter
) -> None:
    """413 on the batch, the first half accepted, 413 on the lone second span: one sent, one dropped."""
    receiver.misbehave(Fault.status_code(413), Fault.accept(), Fault.status_code(413))
    assert wrap_resilient(otlp_http).export(make_spans(2)) is ExportResult.SUCCESS
    assert receiver.span_names() == ["span-0"]
    assert export_counters() == {"export_spans_sent": 1, "spans_dropped_oversize": 1}


def test_http_413_drop_then_a_failed_half_is_counted_once(
    receiver: OTLPReceiver, otlp_http: OTLPHttpExporter
) -> None:
    """413, the lone first span refused again (dropped), 503 on the second half: its retry counts it sent."""
    receiver.misbehave(Fault.status_code(413), Fault.status_code(413), Fault.status_code(503))
    spans = [make_span(name="span-0", span_id=1, attributes=BLOB), make_span(name="span-1", span_id=2)]
    assert wrap_resilient(otlp_http).export(spans) is ExportResult.SUCCESS
    assert receiver.span_names() == ["span-1"]
    assert export_counters() == {
        "export_errors_server": 1,
        "export_retries": 1,
        "export_spans_sent": 1,
        "spans_dropped_oversize": 1,
    }


# -- OTLP/gRPC -------------------------------------------------------------------------------


@pytest.fixture
def collector() -> Iterator[ScriptedCollector]:
    with scripted_collector() as servicer:
        yield servicer


@pytest.mark.parametrize("first_call", [None, grpc.StatusCode.UNAVAILABLE])
def test_grpc_span_over_the_request_limit_is_counted_once_as_dropped(
    collector: ScriptedCollector, first_call: grpc.StatusCode | None
) -> None:
    """Three spans count as sent and the oversized one as dropped, once, with or without a retry."""
    collector.script[:] = [first_call]
    otlp = OTLPGrpcExporter(endpoint=collector.endpoint, max_request_bytes=LIMIT)
    try:
        assert wrap_resilient(otlp).export(_with_one_huge()) is ExportResult.SUCCESS
    finally:
        otlp.shutdown()
    assert collector.names == ["span-0", "span-2", "span-3"]
    retried = {"export_errors_server": 1, "export_retries": 1} if first_call else {}
    assert export_counters() == {**retried, "export_spans_sent": 3, "spans_dropped_oversize": 1}


# -- Cloud Trace ------------------------------------------------------------------------------


def test_cloud_trace_unconvertible_span_is_counted_dropped_not_sent(
    trace_api: FakeCloudTrace, cloud_trace: CloudTraceExporter
) -> None:
    """The span that cannot be converted counts only as a serialization drop; the other as sent."""
    broken = make_span(span_id=1, attributes={"value": _Unprintable()})
    assert wrap_resilient(cloud_trace).export([broken, make_span(span_id=2)]) is ExportResult.SUCCESS
    assert export_counters() == {"export_spans_sent": 1, "spans_dropped_serialization": 1}


def test_cloud_trace_unconvertible_span_is_counted_once_across_retries(
    trace_api: FakeCloudTrace, cloud_trace: CloudTraceExporter
) -> None:
    """Two failed calls and two retries: the unconvertible span is counted once, the other arrives once."""
    trace_api.faults.extend([(grpc.StatusCode.UNAVAILABLE, "down")] * 2)
    broken = make_span(span_id=1, attributes={"value": _Unprintable()})
    assert wrap_resilient(cloud_trace).export([broken, make_span(span_id=2)]) is ExportResult.SUCCESS
    assert [span.span_id for span in trace_api.spans()] == [f"{2:016x}"]  # type: ignore[attr-defined]
    assert export_counters() == {
        "export_errors_server": 2,
        "export_retries": 2,
        "export_spans_sent": 1,
        "spans_dropped_serialization": 1,
    }


# -- X-Ray, Azure Monitor, file ----------------------------------------------------------------


@pytest.mark.parametrize("mode", ["segments", "otlp"])
def test_xray_span_that_cannot_fit_a_datagram_is_counted_dropped_not_sent(
    daemon: FakeXRayDaemon, mode: str
) -> None:
    """One span too big even cut counts only as dropped; the other as sent."""
    build = functools.partial(
        XRayExporter, transport="udp", daemon_address=daemon.address, annotation_keys=("*",), mode=mode
    )
    spans = [make_span(span_id=1, attributes=UNFITTABLE[mode]), make_span(span_id=7)]
    with made_exporters(build) as make:
        assert wrap_resilient(make(max_datagram_bytes=1024)).export(spans) is ExportResult.SUCCESS
    assert len(daemon.receive()) == 1
    assert export_counters() == {"export_spans_sent": 1, "spans_dropped_oversize": 1}


def test_azure_span_the_sdk_cannot_map_is_counted_dropped_not_sent(ingestion: FakeIngestion) -> None:
    """A span of a kind outside OpenTelemetry's counts only as a serialization drop; the other as sent."""
    build = functools.partial(AzureMonitorExporter, connection_string=ingestion.connection_string)
    with made_exporters(build) as make:
        assert (
            wrap_resilient(make()).export([make_span(span_id=1, kind=7), make_span(span_id=2)])
            is ExportResult.SUCCESS
        )
    assert len(ingestion.envelopes) == 1
    assert export_counters() == {"export_spans_sent": 1, "spans_dropped_serialization": 1}


def test_file_line_over_the_file_limit_is_counted_dropped_not_sent(tmp_path: Any) -> None:
    """A span whose line alone is over max_bytes counts only as dropped; the others as sent."""
    path = tmp_path / "spans.jsonl"
    exporter = FileExporter(str(path), max_bytes=4096)
    try:
        assert wrap_resilient(exporter).export(_with_one_huge(3)) is ExportResult.SUCCESS
    finally:
        exporter.shutdown()
    assert len(path.read_bytes().splitlines()) == 2
    assert export_counters() == {"export_spans_sent": 2, "spans_dropped_oversize": 1}
