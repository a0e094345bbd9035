"""Session 11: a batch sent as several requests that fails part way is retried, kept or dropped in part."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from support.export_checks import ScriptedCollector, export_counters, scripted_collector, wrap_resilient
from support.otlp_receiver import Fault, OTLPReceiver
from support.spans import make_spans

from nexs_serverless.exporters.base import ExportResult
from nexs_serverless.exporters.errors import ExportError
from nexs_serverless.exporters.otlp_grpc import OTLPGrpcExporter
from nexs_serverless.exporters.otlp_http import OTLPHttpExporter

# Six spans of about 1 KB; under this request limit they go as three requests of two.
LIMIT = 3000
BLOB = {"blob": "x" * 1000}


def _names(count: int, prefix: str = "span") -> list[str]:
    """The names `make_spans(count, prefix)` gives."""
    return [f"{prefix}-{i}" for i in range(count)]


@pytest.fixture
def http_exporter(receiver: OTLPReceiver) -> Iterator[OTLPHttpExporter]:
    otlp = OTLPHttpExporter(endpoint=receiver.url, timeout_s=5.0, max_request_bytes=LIMIT)
    yield otlp
    otlp.shutdown()


@pytest.fixture
def collector() -> Iterator[ScriptedCollector]:
    with scripted_collector() as servicer:
        yield servicer


@pytest.fixture
def grpc_exporter(collector: ScriptedCollector) -> Iterator[OTLPGrpcExporter]:
    otlp = OTLPGrpcExporter(endpoint=collector.endpoint, max_request_bytes=LIMIT)
    yield otlp
    otlp.shutdown()


# -- OTLP/HTTP -------------------------------------------------------------------------------


def test_http_retry_after_a_partial_delivery_sends_only_the_rest(
    receiver: OTLPReceiver, http_exporter: OTLPHttpExporter
) -> None:
    """A 503 on the second of three requests: the retry sends its spans and the third's, none twice."""
    receiver.misbehave(Fault.accept(), Fault.status_code(503))
    assert wrap_resilient(http_exporter).export(make_spans(6, attributes=BLOB)) is ExportResult.SUCCESS
    assert receiver.span_names() == _names(6)
    assert len(receiver.requests) == 4  # accepted, 503, then the last four spans in two requests
    assert export_counters() == {"export_errors_server": 1, "export_retries": 1, "export_spans_sent": 6}


def test_http_bad_request_after_a_partial_delivery_drops_only_the_rest(
    receiver: OTLPReceiver, http_exporter: OTLPHttpExporter
) -> None:
    """A 400 on the second request: the two delivered spans count as sent, only the other four as dropped."""
    receiver.misbehave(Fault.accept(), Fault.status_code(400))
    assert wrap_resilient(http_exporter).export(make_spans(6, attributes=BLOB)) is ExportResult.FAILURE
    assert receiver.span_names() == _names(2)
    assert export_counters() == {
        "export_errors_bad_request": 1,
        "export_spans_sent": 2,
        "spans_dropped_bad_request": 4,
    }


def test_http_partial_success_of_a_delivered_request_is_counted_with_the_failure(
    receiver: OTLPReceiver, http_exporter: OTLPHttpExporter
) -> None:
    """A delivered request's partial_success still counts as rejected when a later request fails."""
    receiver.misbehave(Fault.partial(1), Fault.status_code(400))
    assert wrap_resilient(http_exporter).export(make_spans(6, attributes=BLOB)) is ExportResult.FAILURE
    assert export_counters() == {
        "export_errors_bad_request": 1,
        "export_spans_sent": 1,
        "export_spans_rejected": 1,
        "spans_dropped_bad_request": 4,
    }


def test_http_partial_delivery_carries_over_only_the_rest(
    receiver: OTLPReceiver, http_exporter: OTLPHttpExporter
) -> None:
    """Out of retries after a partial delivery, only the undelivered spans wait for the next flush."""
    wrapped = wrap_resilient(http_exporter, max_retries=0)
    receiver.misbehave(Fault.accept(), Fault.status_code(503))
    assert wrapped.export(make_spans(6, "first", attributes=BLOB)) is ExportResult.FAILURE
    assert len(wrapped.carryover) == 4
    assert wrapped.export(make_spans(1, "second")) is ExportResult.SUCCESS
    assert receiver.span_names() == [*_names(6, "first"), "second-0"]
    assert export_counters() == {
        "export_errors_server": 1,
        "export_spans_carried_over": 4,
        "export_spans_resent": 4,
        "export_spans_sent": 7,
    }


def test_http_carried_spans_delivered_in_part_are_counted_once(
    receiver: OTLPReceiver, http_exporter: OTLPHttpExporter
) -> None:
    """Carried spans delivered before a failure count as resent; the rest go back without counting twice."""
    wrapped = wrap_resilient(http_exporter, max_retries=0)
    receiver.misbehave(Fault.status_code(503))
    assert wrapped.export(make_spans(6, "first", attributes=BLOB)) is ExportResult.FAILURE
    receiver.misbehave(Fault.accept(), Fault.status_code(503))
    assert wrapped.export(make_spans(1, "second")) is ExportResult.FAILURE
    assert len(wrapped.carryover) == 5  # first-2 .. first-5 and second-0
    assert wrapped.export([]) is ExportResult.SUCCESS
    assert receiver.span_names() == [*_names(6, "first"), "second-0"]
    assert export_counters() == {
        "export_errors_server": 2,
        "export_spans_carried_over": 7,  # six first, then second-0: none twice
        "export_spans_resent": 7,  # two in the failed flush, five in the last
        "export_spans_sent": 7,
    }


def test_http_413_halves_then_a_failed_half_resends_only_that_half(
    receiver: OTLPReceiver, otlp_http: OTLPHttpExporter
) -> None:
    """After a 413, the first half is accepted and the second gets a 503: the retry sends only the second."""
    receiver.misbehave(Fault.status_code(413), Fault.accept(), Fault.status_code(503))
    assert wrap_resilient(otlp_http).export(make_spans(8, attributes=BLOB)) is ExportResult.SUCCESS
    assert receiver.span_names() == _names(8)
    assert export_counters() == {"export_errors_server": 1, "export_retries": 1, "export_spans_sent": 8}


# -- OTLP/gRPC -------------------------------------------------------------------------------


def test_grpc_retry_after_a_partial_delivery_sends_only_the_rest(
    collector: ScriptedCollector, grpc_exporter: OTLPGrpcExporter
) -> None:
    """UNAVAILABLE on the second of three calls: the retry sends its spans and the third's, none twice."""
    collector.script[:] = [None, grpc.StatusCode.UNAVAILABLE]
    assert wrap_resilient(grpc_exporter).export(make_spans(6, attributes=BLOB)) is ExportResult.SUCCESS
    assert collector.names == _names(6)
    assert collector.calls == 4
    assert export_counters() == {"export_errors_server": 1, "export_retries": 1, "export_spans_sent": 6}


def test_grpc_invalid_argument_after_a_partial_delivery_drops_only_the_rest(
    collector: ScriptedCollector, grpc_exporter: OTLPGrpcExporter
) -> None:
    """INVALID_ARGUMENT on the second call: two spans count as sent, only the other four as dropped."""
    collector.script[:] = [None, grpc.StatusCode.INVALID_ARGUMENT]
    assert wrap_resilient(grpc_exporter).export(make_spans(6, attributes=BLOB)) is ExportResult.FAILURE
    assert collector.names == _names(2)
    assert export_counters() == {
        "export_errors_bad_request": 1,
        "export_spans_sent": 2,
        "spans_dropped_bad_request": 4,
    }


def test_grpc_failed_first_call_reports_nothing_delivered(
    collector: ScriptedCollector, grpc_exporter: OTLPGrpcExporter
) -> None:
    """When the first call fails, nothing got through: the error names no undelivered part."""
    collector.script[:] = [grpc.StatusCode.INVALID_ARGUMENT]
    with pytest.raises(ExportError) as caught:
        grpc_exporter.send(make_spans(6, attributes=BLOB), 5.0)
    assert caught.value.undelivered is None
    assert collector.calls == 1


def test_grpc_failed_later_call_names_its_spans_and_the_later_ones(
    collector: ScriptedCollector, grpc_exporter: OTLPGrpcExporter
) -> None:
    """A failure on the second call names the last four spans, in order, as undelivered."""
    collector.script[:] = [None, grpc.StatusCode.UNAVAILABLE]
    with pytest.raises(ExportError) as caught:
        grpc_exporter.send(make_spans(6, attributes=BLOB), 5.0)
    assert [span.name for span in caught.value.undelivered or ()] == _names(6)[2:]
    assert collector.calls == 2
