"""CloudTraceExporter against a local gRPC TraceService, decoded with google-cloud-trace's types."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator

import grpc
import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud.trace_v2 import Span as CloudSpan
from support.canned_http import closed_port
from support.cloud_trace_server import HANG, FakeCloudTrace, attributes_of
from support.exporter_spans import SPAN_ID, START_NS, TRACE_ID, exception_event, link_to, make_span
from support.made_exporters import made_exporters

from nexs_serverless import _stats
from nexs_serverless.config import ConfigError, from_env
from nexs_serverless.exporters import CloudTraceExporter, ExportResult, create
from nexs_serverless.exporters.cloud_trace import MAX_ATTRIBUTES, MAX_SPANS_PER_CALL
from nexs_serverless.exporters.errors import ErrorClass, ExportError
from nexs_serverless.exporters.resilient import Options, ResilientExporter
from nexs_serverless.model import Event, SpanKind, StatusCode

Make = Callable[..., CloudTraceExporter]


@pytest.fixture
def make_exporter(trace_api: FakeCloudTrace) -> Iterator[Make]:
    """Exporters on a plaintext channel to the local server, with anonymous credentials."""
    build = functools.partial(
        CloudTraceExporter,
        project_id="demo-project",
        endpoint=trace_api.endpoint,
        insecure=True,
        credentials=AnonymousCredentials(),
    )
    with made_exporters(build) as make:
        yield make


def test_spans_arrive_as_cloud_trace_v2_spans(trace_api: FakeCloudTrace, make_exporter: Make) -> None:
    """Name format, ids, display name, times, kind, attributes with console labels, agent and service."""
    span = make_span(
        parent_span_id=0x1234,
        parent_is_remote=True,
        kind=SpanKind.SERVER,
        attributes={"http.request.method": "GET", "http.response.status_code": 200, "ok": True, "ratio": 0.5},
    )
    assert make_exporter().export([span]) is ExportResult.SUCCESS
    [request] = trace_api.requests
    assert request.name == "projects/demo-project"
    [got] = request.spans
    assert got.name == f"projects/demo-project/traces/{TRACE_ID:032x}/spans/{SPAN_ID:016x}"
    assert got.span_id == f"{SPAN_ID:016x}"
    assert got.parent_span_id == f"{0x1234:016x}"
    assert got.same_process_as_parent_span is False
    assert got.display_name.value == "GET /orders"
    assert got.span_kind == CloudSpan.SpanKind.SERVER
    assert got.start_time.timestamp_pb().ToNanoseconds() == START_NS
    assert got.end_time.timestamp_pb().ToNanoseconds() == START_NS + 25_000_000
    assert attributes_of(got) == {
        "/http/method": "GET",
        "/http/status_code": 200,
        "ok": True,
        "ratio": "0.5",
        "service.name": "orders",
        "g.co/agent": "nexs_serverless 0.1.0",
    }


def test_events_links_status_and_stack_trace(trace_api: FakeCloudTrace, make_exporter: Make) -> None:
    """Events become annotations, links links, ERROR a status with code 2, the exception a stack trace."""
    span = make_span(
        events=(Event("cache.miss", START_NS + 5, {"key": "k"}), exception_event(ValueError("bad"))),
        links=(link_to(0xABC, 0xDEF, reason="batch"),),
        status_code=StatusCode.ERROR,
        status_description="bad input",
        dropped_events=2,
    )
    make_exporter().export([span])
    [got] = trace_api.spans()
    assert isinstance(got, CloudSpan)
    events = got.time_events.time_event
    assert [e.annotation.description.value for e in events] == ["cache.miss", "exception"]
    assert events[0].time.timestamp_pb().ToNanoseconds() == START_NS + 5
    assert got.time_events.dropped_annotations_count == 2
    [link] = got.links.link
    assert (link.trace_id, link.span_id) == (f"{0xABC:032x}", f"{0xDEF:016x}")
    assert (got.status.code, got.status.message) == (2, "bad input")
    frames = got.stack_trace.stack_frames.frame
    assert frames[0].function_name.value == "exception_event"
    assert frames[0].file_name.value.endswith("exporter_spans.py")
    assert frames[0].line_number > 0


def test_cloud_trace_limits_are_applied_and_counted(trace_api: FakeCloudTrace, make_exporter: Make) -> None:
    """32 attributes kept (the rest counted dropped); long values cut with the bytes cut counted."""
    attrs = {f"k{i:02d}": i for i in range(40)}
    attrs["k00"] = "x" * 300
    make_exporter().export([make_span(attributes=attrs, dropped_attributes=1)])
    [got] = trace_api.spans()
    assert isinstance(got, CloudSpan)
    assert len(got.attributes.attribute_map) == MAX_ATTRIBUTES
    assert got.attributes.dropped_attributes_count == 40 + 2 - MAX_ATTRIBUTES + 1
    value = got.attributes.attribute_map["k00"].string_value
    assert (len(value.value), value.truncated_byte_count) == (256, 44)


def test_annotations_keep_four_attributes_and_count_the_rest(
    trace_api: FakeCloudTrace, make_exporter: Make
) -> None:
    """The v2 API allows 4 attributes per annotation: an event's others are counted as dropped."""
    event = Event("cache.miss", START_NS + 5, {f"a{i}": i for i in range(10)}, 1)
    make_exporter().export([make_span(events=(event,))])
    [got] = trace_api.spans()
    assert isinstance(got, CloudSpan)
    attributes = got.time_events.time_event[0].annotation.attributes
    assert sorted(attributes.attribute_map) == ["a0", "a1", "a2", "a3"]  # a map: no order on the wire
    assert attributes.dropped_attributes_count == 10 - 4 + 1


def test_large_batches_are_split_across_calls(trace_api: FakeCloudTrace, make_exporter: Make) -> None:
    """More than 1000 spans take several BatchWriteSpans calls, every span sent once."""
    make_exporter().export([make_span(span_id=i + 1) for i in range(MAX_SPANS_PER_CALL + 5)])
    assert [len(r.spans) for r in trace_api.requests] == [MAX_SPANS_PER_CALL, 5]


def test_the_client_is_built_once_and_reused(
    trace_api: FakeCloudTrace, make_exporter: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Warm exports reuse the same client (and channel)."""
    from google.cloud.trace_v2.services import trace_service

    real_client, real_channel = trace_service.TraceServiceClient, grpc.insecure_channel
    built: list[object] = []
    channels: list[object] = []

    def counting_client(*args: object, **kwargs: object) -> object:
        built.append(real_client(*args, **kwargs))
        return built[-1]

    def counting_channel(target: str) -> object:
        channels.append(real_channel(target))
        return channels[-1]

    monkeypatch.setattr(trace_service, "TraceServiceClient", counting_client)
    monkeypatch.setattr(grpc, "insecure_channel", counting_channel)
    exporter = make_exporter()
    assert exporter.export([make_span()]) is ExportResult.SUCCESS
    assert exporter.export([make_span()]) is ExportResult.SUCCESS
    assert len(built) == 1
    assert len(channels) == 1
    assert exporter._client is not None
    assert exporter._client is built[0]
    assert len(trace_api.requests) == 2


@pytest.mark.parametrize(
    ("code", "error_class"),
    [
        (grpc.StatusCode.UNAUTHENTICATED, ErrorClass.AUTH),
        (grpc.StatusCode.PERMISSION_DENIED, ErrorClass.AUTH),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, ErrorClass.THROTTLED),
        (grpc.StatusCode.UNAVAILABLE, ErrorClass.SERVER),
        (grpc.StatusCode.INTERNAL, ErrorClass.SERVER),
        (grpc.StatusCode.INVALID_ARGUMENT, ErrorClass.BAD_REQUEST),
    ],
)
def test_grpc_failures_are_classified(
    code: grpc.StatusCode, error_class: str, trace_api: FakeCloudTrace, make_exporter: Make
) -> None:
    """Each gRPC status maps to its class; export reports FAILURE and counts it."""
    trace_api.faults.extend([(code, "from the test"), (code, "from the test")])
    exporter = make_exporter()
    with pytest.raises(ExportError) as caught:
        exporter.send([make_span()], 1.0)
    assert caught.value.error_class == error_class
    assert exporter.export([make_span()]) is ExportResult.FAILURE
    assert _stats.snapshot()["export_errors_" + error_class] == 1


def test_a_hanging_server_is_a_timeout_within_the_budget(
    trace_api: FakeCloudTrace, make_exporter: Make
) -> None:
    """The call's deadline is the time left in the flush: a hanging server is a TIMEOUT."""
    trace_api.faults.append(HANG)
    with pytest.raises(ExportError) as caught:
        make_exporter().send([make_span()], 0.2)
    assert caught.value.error_class == ErrorClass.TIMEOUT


def test_an_unreachable_endpoint_is_a_network_failure(make_exporter: Make) -> None:
    """Nothing listening: gRPC's UNAVAILABLE 'failed to connect' is NETWORK."""
    exporter = make_exporter(endpoint=f"127.0.0.1:{closed_port()}")
    with pytest.raises(ExportError) as caught:
        exporter.send([make_span()], 1.0)
    assert caught.value.error_class == ErrorClass.NETWORK


def test_no_time_left_fails_without_calling(trace_api: FakeCloudTrace, make_exporter: Make) -> None:
    """With the budget spent nothing is sent."""
    with pytest.raises(ExportError) as caught:
        make_exporter().send([make_span()], 0.0)
    assert caught.value.error_class == ErrorClass.TIMEOUT
    assert trace_api.requests == []


def test_insecure_needs_an_endpoint() -> None:
    """A plaintext channel to Google's endpoint is refused at configuration time."""
    with pytest.raises(ConfigError):
        CloudTraceExporter(project_id="p", insecure=True)


def test_from_settings_reads_project_endpoint_and_timeout(trace_api: FakeCloudTrace) -> None:
    """OTEL_TRACES_EXPORTER=gcp_trace: GOOGLE_CLOUD_PROJECT and NEXS_GCP_TRACE_* configure it."""
    exporter = create(
        "gcp_trace",
        from_env(
            {
                "GOOGLE_CLOUD_PROJECT": "from-env",
                "NEXS_GCP_TRACE_ENDPOINT": trace_api.endpoint,
                "NEXS_GCP_TRACE_INSECURE": "true",
                "NEXS_GCP_TRACE_TIMEOUT_MS": "2500",
            }
        ),
    )
    assert isinstance(exporter, CloudTraceExporter)
    assert (exporter.project_id, exporter.insecure, exporter.timeout_ms) == ("from-env", True, 2500)
    assert exporter.export([make_span()]) is ExportResult.SUCCESS
    exporter.shutdown()
    assert trace_api.requests[0].name == "projects/from-env"


def test_behind_the_resilience_wrapper_a_failed_batch_goes_out_once_later(
    trace_api: FakeCloudTrace, make_exporter: Make
) -> None:
    """The seam: UNAVAILABLE is carried over by ResilientExporter and sent with the next flush."""
    trace_api.faults.append((grpc.StatusCode.UNAVAILABLE, "down"))
    resilient = ResilientExporter(make_exporter(), options=Options(max_retries=0))
    assert resilient.export([make_span(span_id=1)]) is ExportResult.FAILURE
    assert resilient.export([make_span(span_id=2)]) is ExportResult.SUCCESS
    assert [s.span_id for s in trace_api.spans()] == [f"{1:016x}", f"{2:016x}"]  # type: ignore[attr-defined]
