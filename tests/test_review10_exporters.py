"""Review of the Cloud Trace, Azure Monitor, file, console, SDK-bridge, memory and stats-line exporters.

Each test pins a behaviour the review found missing or wrong, against real local
servers (a gRPC TraceService, an HTTP ingestion endpoint, an HTTP receiver) and
real files, with the fixes in place.
"""

from __future__ import annotations

import functools
import io
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import grpc
import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud.trace_v2 import BatchWriteSpansRequest
from google.cloud.trace_v2 import Span as CloudSpan
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from support.azure_ingestion import IKEY, Answer, FakeIngestion
from support.cloud_trace_server import FakeCloudTrace, attributes_of
from support.exporter_spans import RESOURCE, START_NS, make_span
from support.made_exporters import made_exporters

from nexs_serverless import _stats, configure, flush
from nexs_serverless.config import ConfigError, from_env
from nexs_serverless.exporters import AzureMonitorExporter, CloudTraceExporter, ConsoleExporter, ExportResult
from nexs_serverless.exporters.console import format_trees
from nexs_serverless.exporters.errors import ErrorClass, ExportError
from nexs_serverless.exporters.file import FileExporter
from nexs_serverless.exporters.memory import InMemoryExporter
from nexs_serverless.exporters.otel_sdk import OTelSDKExporter, to_readable_span
from nexs_serverless.exporters.statslog import after_invocation
from nexs_serverless.model import Event, Link, Resource, SpanContext, StatusCode

TESTS = str(Path(__file__).parent)


# -- Cloud Trace ---------------------------------------------------------------------------------------


@pytest.fixture
def cloud_trace(trace_api: FakeCloudTrace) -> Iterator[CloudTraceExporter]:
    """A CloudTraceExporter on a plaintext channel to the local server."""
    exporter = CloudTraceExporter(
        project_id="demo", endpoint=trace_api.endpoint, insecure=True, credentials=AnonymousCredentials()
    )
    yield exporter
    exporter.shutdown()


def _only_span(trace_api: FakeCloudTrace) -> CloudSpan:
    [span] = trace_api.spans()
    assert isinstance(span, CloudSpan)
    return span


def test_cloud_trace_a_lone_surrogate_is_replaced_and_the_batch_arrives(
    trace_api: FakeCloudTrace, cloud_trace: CloudTraceExporter
) -> None:
    """Protobuf refuses lone surrogates: they become '?', the span and its neighbours still go out."""
    odd = make_span(
        span_id=1,
        name="GET /caf\udce9",
        attributes={"file": "r\udcffsum\udcff.pdf", "short": "\udcff"},
        events=(Event("cache.miss\udcff", START_NS, {}),),
        status_code=StatusCode.ERROR,
        status_description="bad \udcff byte",
    )
    assert cloud_trace.export([odd, make_span(span_id=2)]) is ExportResult.SUCCESS
    got = {span.span_id: span for span in trace_api.spans()}  # type: ignore[attr-defined]
    assert len(got) == 2
    span = got[f"{1:016x}"]
    assert span.display_name.value == "GET /caf?"
    assert attributes_of(span)["file"] == "r?sum?.pdf"
    assert attributes_of(span)["short"] == "?"
    assert span.time_events.time_event[0].annotation.description.value == "cache.miss?"
    assert span.status.message == "bad ? byte"
    assert "spans_dropped_serialization" not in _stats.snapshot()


class _Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no text for this value")


def test_cloud_trace_a_span_that_cannot_be_converted_is_dropped_alone(
    trace_api: FakeCloudTrace, cloud_trace: CloudTraceExporter
) -> None:
    """One span failing conversion is counted as a serialization drop; the rest of the batch arrives."""
    broken = make_span(span_id=1, attributes={"value": _Unprintable()})
    assert cloud_trace.export([broken, make_span(span_id=2)]) is ExportResult.SUCCESS
    assert [span.span_id for span in trace_api.spans()] == [f"{2:016x}"]  # type: ignore[attr-defined]
    assert _stats.snapshot()["spans_dropped_serialization"] == 1


def test_cloud_trace_agent_and_service_survive_the_32_attribute_cap(
    trace_api: FakeCloudTrace, cloud_trace: CloudTraceExporter
) -> None:
    """With 40 attributes, g.co/agent and service.name are still sent; the cut falls on the span's own."""
    cloud_trace.export([make_span(attributes={f"k{i:02d}": i for i in range(40)})])
    span = _only_span(trace_api)
    attributes = attributes_of(span)
    assert len(attributes) == 32
    assert attributes["g.co/agent"] == "nexs_serverless 0.1.0"
    assert attributes["service.name"] == "orders"
    assert span.attributes.dropped_attributes_count == 40 - 30


def test_cloud_trace_keys_that_collide_once_cut_or_mapped_are_counted_dropped(
    trace_api: FakeCloudTrace, cloud_trace: CloudTraceExporter
) -> None:
    """Two keys equal in their first 128 bytes, or two names for one label: the first kept, one counted."""
    prefix = "k" * 128
    attrs = {
        prefix + "a": "first",
        prefix + "b": "second",
        "http.method": "GET",
        "http.request.method": "PUT",
    }
    cloud_trace.export([make_span(attributes=attrs)])
    span = _only_span(trace_api)
    attributes = attributes_of(span)
    assert attributes[prefix] == "first"
    assert attributes["/http/method"] == "GET"
    assert span.attributes.dropped_attributes_count == 2


def _raise_chained() -> None:
    try:
        {}["missing"]
    except KeyError as exc:
        raise ValueError("could not load the order") from exc


def test_cloud_trace_stack_of_a_chained_exception_is_the_raised_ones(
    trace_api: FakeCloudTrace, cloud_trace: CloudTraceExporter
) -> None:
    """With ``raise ... from``, the span's stack is the raised exception's, not its cause's frames too."""
    try:
        _raise_chained()
    except ValueError as caught:
        import traceback

        text = "".join(traceback.format_exception(type(caught), caught, caught.__traceback__))
    assert text.count("Traceback (most recent call last):") == 2
    event = Event("exception", START_NS, {"exception.stacktrace": text})
    cloud_trace.export([make_span(events=(event,))])
    frames = _only_span(trace_api).stack_trace.stack_frames.frame
    names = [frame.function_name.value for frame in frames]
    assert names == ["_raise_chained", "test_cloud_trace_stack_of_a_chained_exception_is_the_raised_ones"]


def test_cloud_trace_frame_file_names_are_cut_at_256_bytes(
    trace_api: FakeCloudTrace, cloud_trace: CloudTraceExporter
) -> None:
    """StackFrame.file_name holds 256 bytes (function names 1024): longer paths are cut and counted."""
    path = "/var/task/" + "d/" * 200 + "handler.py"
    text = f'Traceback (most recent call last):\n  File "{path}", line 7, in handler\nValueError: x\n'
    cloud_trace.export([make_span(events=(Event("exception", START_NS, {"exception.stacktrace": text}),))])
    [frame] = _only_span(trace_api).stack_trace.stack_frames.frame
    assert len(frame.file_name.value) == 256
    assert frame.file_name.truncated_byte_count == len(path) - 256
    assert frame.line_number == 7


class _SlowCloudTrace(FakeCloudTrace):
    """A TraceService that takes `delay_s` to answer each call."""

    delay_s = 0.3

    def _batch_write_spans(self, request: BatchWriteSpansRequest, context: grpc.ServicerContext) -> None:
        time.sleep(self.delay_s)
        super()._batch_write_spans(request, context)


def test_cloud_trace_calls_of_one_send_share_its_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch split across several calls stays within the time given to send, not that time per call."""
    from nexs_serverless.exporters import cloud_trace

    monkeypatch.setattr(cloud_trace, "MAX_SPANS_PER_CALL", 2)  # 3 calls for 5 spans, each 0.3 s
    with _SlowCloudTrace() as slow:
        exporter = CloudTraceExporter(
            project_id="demo", endpoint=slow.endpoint, insecure=True, credentials=AnonymousCredentials()
        )
        exporter.send([make_span()], 2.0)  # connect first: the budget is about the calls
        with pytest.raises(ExportError) as caught:
            exporter.send([make_span(span_id=i + 1) for i in range(5)], 0.5)
        exporter.shutdown()
    # The third call had no time left (3 x 0.3 s > 0.5 s): given 0.5 s each, all three succeeded.
    assert caught.value.error_class == ErrorClass.TIMEOUT


# -- Azure Monitor ---------------------------------------------------------------------------------------


@pytest.fixture
def make_azure(ingestion: FakeIngestion) -> Iterator[Callable[..., AzureMonitorExporter]]:
    """AzureMonitorExporters pointed at the local endpoint, shut down after the test."""
    build = functools.partial(AzureMonitorExporter, connection_string=ingestion.connection_string)
    with made_exporters(build) as make:
        yield make


def _ids(envelopes: list[dict[str, object]]) -> list[str]:
    return [envelope["data"]["baseData"]["id"] for envelope in envelopes]  # type: ignore[index]


def test_azure_a_span_the_sdk_cannot_map_is_dropped_alone(
    ingestion: FakeIngestion, make_azure: Callable[..., AzureMonitorExporter]
) -> None:
    """A span the conversion fails on (a kind outside OpenTelemetry's) is counted; its batch arrives."""
    exporter = make_azure()
    assert exporter.export([make_span(span_id=1, kind=7), make_span(span_id=2)]) is ExportResult.SUCCESS
    assert _ids(ingestion.envelopes) == [f"{2:016x}"]
    assert _stats.snapshot()["spans_dropped_serialization"] == 1


def test_azure_a_redirect_between_ingestion_hosts_is_followed_and_kept(
    ingestion: FakeIngestion, make_azure: Callable[..., AzureMonitorExporter], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 308 to another Azure Monitor ingestion host is followed, as the SDK's export() does, and kept.

    The local endpoint stands in for both hosts as an HTTP proxy, so the request line names the host.
    """
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{ingestion.port}")
    for name in ("NO_PROXY", "no_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    exporter = make_azure(
        connection_string=f"InstrumentationKey={IKEY};"
        "IngestionEndpoint=http://westeurope-5.in.applicationinsights.azure.com/"
    )
    moved = "http://westeurope-1.in.applicationinsights.azure.com"
    ingestion.answers.append(Answer(308, {"Location": moved + "/v2.1/track"}))
    assert exporter.export([make_span(span_id=1)]) is ExportResult.SUCCESS
    assert exporter.export([make_span(span_id=2)]) is ExportResult.SUCCESS
    hosts = [headers["host"] for _, headers in ingestion.calls]
    assert hosts == [
        "westeurope-5.in.applicationinsights.azure.com",
        "westeurope-1.in.applicationinsights.azure.com",
        "westeurope-1.in.applicationinsights.azure.com",
    ]
    assert _ids(ingestion.envelopes) == [f"{1:016x}", f"{2:016x}"]
    assert _stats.snapshot()["export_redirects_followed"] == 1


def test_azure_a_redirect_to_a_foreign_host_is_not_followed(
    ingestion: FakeIngestion, make_azure: Callable[..., AzureMonitorExporter]
) -> None:
    """A Location outside Azure Monitor's domains is refused (BAD_REQUEST), nothing sent there."""
    ingestion.answers.append(Answer(307, {"Location": "http://collector.example.com/v2.1/track"}))
    with pytest.raises(ExportError) as caught:
        make_azure().send([make_span()], 2.0)
    assert caught.value.error_class == ErrorClass.BAD_REQUEST
    assert len(ingestion.calls) == 1


def test_azure_items_refused_for_quota_are_counted_not_retried(
    ingestion: FakeIngestion, make_azure: Callable[..., AzureMonitorExporter]
) -> None:
    """A 206 refusing every item with 439 (quota spent for a long while) counts them; no retry, as the SDK."""
    ingestion.answers.append(Answer(206, item_errors=[(0, 439), (1, 439)]))
    assert make_azure().send([make_span(span_id=1), make_span(span_id=2)], 2.0) == 2


def test_azure_items_refused_with_a_retryable_status_go_to_offline_storage_when_on(
    ingestion: FakeIngestion, make_azure: Callable[..., AzureMonitorExporter], tmp_path: Path
) -> None:
    """With offline storage on, a 206's retryable refusals are stored and re-sent, not counted rejected."""
    exporter = make_azure(offline_storage=True, storage_directory=str(tmp_path))
    exporter.prepare().storage._lease_period = 0  # the SDK waits 60 s before re-sending; not here
    ingestion.answers.append(Answer(206, item_errors=[(0, 503)]))
    assert exporter.send([make_span(span_id=1), make_span(span_id=2)], 2.0) == 0
    assert _stats.snapshot()["spans_stored_offline"] == 1
    assert _ids(ingestion.envelopes) == [f"{2:016x}"]
    assert exporter.send([make_span(span_id=3)], 2.0) == 0  # a success drains the storage
    assert sorted(_ids(ingestion.envelopes)) == [f"{i:016x}" for i in (1, 2, 3)]


# -- File --------------------------------------------------------------------------------------------------


@pytest.fixture
def make_file() -> Iterator[Callable[..., FileExporter]]:
    """FileExporters closed after the test."""

    def build(path: Path, **kwargs: object) -> FileExporter:
        return FileExporter(str(path), **kwargs)  # type: ignore[arg-type]

    with made_exporters(build) as make:
        yield make


def _file_lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_bytes().decode("utf-8").splitlines()]


# Runs in a fresh interpreter: RLIMIT_FSIZE makes the kernel stop a write part way (EFBIG), as a
# filling disk does; SIGXFSZ is ignored so the write fails instead of killing the process.
_PARTIAL_WRITE_SCRIPT = """
import json, os, resource, signal, sys
sys.path.insert(0, sys.argv[2])
from support.exporter_spans import make_span
from nexs_serverless.exporters.file import FileExporter

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
path = sys.argv[1]
exporter = FileExporter(path)
first = exporter.export([make_span(span_id=1)]).name
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (os.path.getsize(path) + 100, hard))
cut = exporter.export([make_span(span_id=2, attributes={"pad": "x" * 400})]).name
resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
after = exporter.export([make_span(span_id=3)]).name
exporter.shutdown()
print(json.dumps([first, cut, after]))
"""


def test_file_a_write_stopped_part_way_leaves_no_half_line(tmp_path: Path) -> None:
    """A write the disk stops part way is cut back: the next line starts on a line of its own."""
    path = tmp_path / "spans.jsonl"
    done = subprocess.run(
        [sys.executable, "-c", _PARTIAL_WRITE_SCRIPT, str(path), TESTS],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == ["SUCCESS", "FAILURE", "SUCCESS"]
    assert [line["spanId"] for line in _file_lines(path)] == [f"{1:016x}", f"{3:016x}"]


def test_file_a_full_disk_is_a_retryable_failure_never_an_exception(
    make_file: Callable[..., FileExporter],
) -> None:
    """ENOSPC (here /dev/full) is a classified SERVER error from send, a FAILURE from export."""
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    exporter = make_file(Path("/dev/full"))
    with pytest.raises(ExportError) as caught:
        exporter.send([make_span()], 1.0)
    assert caught.value.error_class == ErrorClass.SERVER
    assert exporter.export([make_span()]) is ExportResult.FAILURE
    assert _stats.snapshot()["export_errors_server"] == 1


def test_file_deleted_behind_the_exporter_is_created_again(
    tmp_path: Path, make_file: Callable[..., FileExporter]
) -> None:
    """``rm spans.jsonl`` while the exporter holds it open: the next export writes a new file at the path."""
    path = tmp_path / "spans.jsonl"
    exporter = make_file(path)
    exporter.export([make_span(span_id=1)])
    path.unlink()
    exporter.export([make_span(span_id=2)])
    assert [line["spanId"] for line in _file_lines(path)] == [f"{2:016x}"]


def test_file_two_writers_on_one_path_keep_the_bound_and_whole_lines(
    tmp_path: Path, make_file: Callable[..., FileExporter]
) -> None:
    """Two exporters on one path (one rotating under the other): every file within max_bytes, no line lost."""
    path = tmp_path / "spans.jsonl"
    first, second = make_file(path, max_bytes=4096, backups=20), make_file(path, max_bytes=4096, backups=20)
    for index in range(60):
        (first if index % 2 else second).export([make_span(span_id=index + 1, attributes={"pad": "x" * 150})])
    files = [path, *sorted(tmp_path.glob("spans.jsonl.*"))]
    assert all(file.stat().st_size <= 4096 for file in files)
    ids = sorted(int(str(line["spanId"]), 16) for file in files for line in _file_lines(file))
    assert ids == list(range(1, 61))


def test_file_exports_from_many_threads_are_whole_lines(
    tmp_path: Path, make_file: Callable[..., FileExporter]
) -> None:
    """Eight threads exporting at once through one exporter: every line parses, none lost, bound kept."""
    path = tmp_path / "spans.jsonl"
    exporter = make_file(path, max_bytes=64 * 1024, backups=50)

    def work(thread: int) -> None:
        for index in range(50):
            exporter.export([make_span(span_id=thread * 1000 + index + 1, attributes={"pad": "y" * 100})])

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    files = [path, *tmp_path.glob("spans.jsonl.*")]
    lines = [line for file in files for line in _file_lines(file)]
    assert len(lines) == 400
    assert all(file.stat().st_size <= 64 * 1024 for file in files)


def test_file_surrogates_are_written_as_valid_utf8(
    tmp_path: Path, make_file: Callable[..., FileExporter]
) -> None:
    """Lone surrogates in names and values become '?': the line is valid UTF-8 JSON."""
    path = tmp_path / "spans.jsonl"
    make_file(path).export([make_span(name="caf\udce9", attributes={"path": "/tmp/\udcff"})])
    [line] = _file_lines(path)
    assert line["name"] == "caf?"
    assert line["attributes"] == [{"key": "path", "value": {"stringValue": "/tmp/?"}}]


# -- Console -----------------------------------------------------------------------------------------------


def test_console_a_trace_nested_thousands_deep_is_printed() -> None:
    """A deep recursion's 1,500 nested spans print (it raised RecursionError and failed the batch)."""
    spans = [make_span(span_id=i + 1, parent_span_id=i, start_ns=START_NS + i) for i in range(1500)]
    stream = io.StringIO()
    assert ConsoleExporter(stream=stream).export(spans) is ExportResult.SUCCESS
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1 + 1500
    assert lines[-1].startswith(" " * 4 * 1499 + "└── ")


def test_console_spans_whose_parents_form_a_cycle_are_still_printed() -> None:
    """Spans no root reaches (parents in a cycle, a span its own parent) are printed, each once."""
    spans = [
        make_span(span_id=1, parent_span_id=2, name="a", start_ns=START_NS),
        make_span(span_id=2, parent_span_id=1, name="b", start_ns=START_NS + 1),
        make_span(span_id=3, parent_span_id=3, name="self", start_ns=START_NS + 2),
    ]
    lines = format_trees(spans).splitlines()
    assert lines[1:] == ["├── a 25.00 ms", "│   └── b 25.00 ms", "└── self 25.00 ms"]


def test_console_duplicate_span_ids_print_every_span_once() -> None:
    """Two spans sharing an id (a re-sent span): both printed, their child once, under the first."""
    spans = [
        make_span(span_id=1, name="first", start_ns=START_NS),
        make_span(span_id=1, name="again", start_ns=START_NS + 1),
        make_span(span_id=2, parent_span_id=1, name="child", start_ns=START_NS + 2),
    ]
    assert format_trees(spans).splitlines()[1:] == [
        "├── first 25.00 ms",
        "│   └── child 25.00 ms",
        "└── again 25.00 ms",
    ]


@pytest.mark.parametrize("verbose", [False, True])
def test_console_control_characters_are_escaped(verbose: bool) -> None:
    """Newlines, ANSI escapes and bidi overrides from names, values and status stay visible escapes."""
    span = make_span(
        name="GET /\x1b[2Jorders\n",
        attributes={"user_agent.original": "curl\r\nInjected: yes", "k\x07": "\u202egnp.exe"},
        events=(Event("retry\x1b]0;title\x07", START_NS, {}),),
        status_code=StatusCode.ERROR,
        status_description="line one\nline two",
    )
    text = format_trees([span], verbose=verbose)
    assert text.count("\n") == 2  # the trace line and the span line
    assert "\x1b" not in text
    assert "\u202e" not in text
    for shown in ("GET /\\x1b[2Jorders\\n", "curl\\r\\nInjected: yes", "k\\x07=", "\\u202egnp.exe"):
        assert shown in text
    assert "line one\\nline two" in text
    assert "event:retry\\x1b]0;title\\x07" in text


def test_console_long_names_and_descriptions_are_shortened_unless_verbose() -> None:
    """A 10,000-character name or status description is shortened; verbose prints it whole."""
    span = make_span(name="n" * 10_000, status_code=StatusCode.ERROR, status_description="d" * 10_000)
    line = format_trees([span]).splitlines()[1]
    assert len(line) < 400
    assert "n" * 119 + "…" in line
    assert "d" * 119 + "…" in line
    assert "d" * 10_000 in format_trees([span], verbose=True)


def test_console_a_closed_stream_is_a_failure_not_an_exception() -> None:
    """Writing to a closed stream reports FAILURE and counts an internal error; nothing is raised."""
    stream = io.StringIO()
    stream.close()
    assert ConsoleExporter(stream=stream).export([make_span()]) is ExportResult.FAILURE
    assert _stats.snapshot()["internal_errors"] == 1


# -- OpenTelemetry SDK bridge ----------------------------------------------------------------------------


def test_sdk_bridge_event_and_link_dropped_counts_and_link_remoteness_reach_the_wire() -> None:
    """Events' and links' dropped counts and each link's own remote flag survive, as the SDK encodes them."""
    span = make_span(
        events=(Event("e", START_NS, {"a": 1}, 3),),
        links=(
            Link(SpanContext(0xA, 0xB, 1, (), False), {"b": 2}, 4),
            Link(SpanContext(0xC, 0xD, 1, (), True), {}),
        ),
    )
    readable = to_readable_span(span)
    assert isinstance(readable, ReadableSpan)
    encoded = encode_spans([readable]).resource_spans[0].scope_spans[0].spans[0]
    assert encoded.events[0].dropped_attributes_count == 3
    assert encoded.links[0].dropped_attributes_count == 4
    assert [link.flags & 0x300 for link in encoded.links] == [0x100, 0x300]  # HAS_IS_REMOTE, IS_REMOTE


def test_sdk_bridge_spans_of_a_batch_share_one_sdk_resource() -> None:
    """Spans with the same resource convert to one SDK Resource (built once per batch, not per span)."""
    first, second = (to_readable_span(make_span(span_id=n, resource=RESOURCE)) for n in (1, 2))
    assert isinstance(first, ReadableSpan)
    assert isinstance(second, ReadableSpan)
    assert first.resource is second.resource
    assert first.resource.attributes["service.name"] == "orders"
    other = to_readable_span(make_span(resource=Resource({"service.name": "billing"})))
    assert isinstance(other, ReadableSpan)
    assert other.resource.attributes["service.name"] == "billing"


class _HangingExporter(SpanExporter):
    """An SDK exporter stuck on a dead endpoint until released."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.calls = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.calls += 1
        self.release.wait(10)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.release.set()


def test_sdk_bridge_a_hung_exporter_holds_one_thread_not_one_per_flush() -> None:
    """While an overrun export still runs, later flushes start no new thread: FAILURE, counted as busy."""
    hanging = _HangingExporter()
    configure(exporters=[hanging])
    try:
        for _ in range(4):
            from nexs_serverless import tracer

            with tracer.span("s"):
                pass
            flush(budget_ms=30)
        workers = [t for t in threading.enumerate() if t.name == "nexs-otel-export"]
        assert len(workers) == 1
        assert hanging.calls == 1
        counters = _stats.snapshot()
        assert counters["export_overran"] == 1
        assert counters["export_skipped_busy"] >= 1
    finally:
        hanging.release.set()


# Runs in a fresh interpreter: OpenTelemetry's global provider can be set once per process.
_FEEDBACK_SCRIPT = """
import json, sys, urllib.request
sys.path.insert(0, sys.argv[1])
from opentelemetry.instrumentation.urllib import URLLibInstrumentor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from support.canned_http import CannedServer
import nexs_serverless.otel
from nexs_serverless import configure, flush, tracer

class Posting(SpanExporter):
    def __init__(self, url):
        self.url, self.batches = url, []
    def export(self, spans):
        self.batches.append([span.name for span in spans])
        request = urllib.request.Request(self.url, data=b"spans", method="POST")
        urllib.request.urlopen(request, timeout=2).read()
        return SpanExportResult.SUCCESS
    def shutdown(self):
        pass

with CannedServer() as receiver:
    nexs_serverless.otel.install()
    URLLibInstrumentor().instrument()
    exporter = Posting(receiver.url + "/v1/traces")
    configure(exporters=[exporter])
    with tracer.span("work"):
        pass
    for _ in range(3):
        flush()
    print(json.dumps({"batches": exporter.batches, "posts": len(receiver.requests)}))
"""


def test_sdk_bridge_the_exporters_own_http_call_is_not_traced() -> None:
    """An SDK exporter's POST, seen by an OpenTelemetry instrumentation, makes no span for the next flush."""
    done = subprocess.run(
        [sys.executable, "-c", _FEEDBACK_SCRIPT, TESTS],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"batches": [["work"]], "posts": 1}


class _BrokenExporter(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        raise RuntimeError("flush failed")

    def shutdown(self) -> None:
        raise RuntimeError("shutdown failed")


def test_sdk_bridge_force_flush_and_shutdown_errors_are_reported_not_raised() -> None:
    """The SDK exporter's force_flush and shutdown raising: False and nothing, each counted."""
    bridge = OTelSDKExporter(_BrokenExporter())
    assert bridge.force_flush(100) is False
    bridge.shutdown()
    assert _stats.snapshot()["internal_errors"] == 2


@pytest.mark.parametrize("timeout_ms", [0, -5, 1.5, True])
def test_sdk_bridge_a_bad_timeout_fails_at_configuration(timeout_ms: object) -> None:
    """timeout_ms must be an integer >= 1, checked when the bridge is built."""
    with pytest.raises(ConfigError, match="timeout_ms"):
        OTelSDKExporter(InMemorySpanExporter(), timeout_ms=timeout_ms)  # type: ignore[arg-type]


def test_sdk_bridge_status_description_goes_with_error_only(caplog: pytest.LogCaptureFixture) -> None:
    """The description is passed for ERROR only, so the SDK has nothing to warn about and drop."""
    error = to_readable_span(make_span(status_code=StatusCode.ERROR, status_description="boom"))
    ok = to_readable_span(make_span(status_code=StatusCode.OK, status_description="fine"))
    assert isinstance(error, ReadableSpan)
    assert isinstance(ok, ReadableSpan)
    assert error.status.description == "boom"
    assert ok.status.description is None
    assert not [
        record for record in caplog.records if "description should only be set" in record.getMessage()
    ]


# -- In-memory exporter and the stats line ---------------------------------------------------------------


@pytest.mark.parametrize("max_spans", [-1, 2.5, "10"])
def test_in_memory_max_spans_is_checked(max_spans: object) -> None:
    """A negative or non-integer max_spans is a ConfigError, not a silently empty exporter."""
    with pytest.raises(ConfigError, match="max_spans"):
        InMemoryExporter(max_spans=max_spans)  # type: ignore[arg-type]


def test_in_memory_max_spans_zero_keeps_nothing_and_none_keeps_everything() -> None:
    """max_spans=0 keeps no span; None keeps every one."""
    none_kept, all_kept = InMemoryExporter(max_spans=0), InMemoryExporter(max_spans=None)
    spans = [make_span(span_id=n + 1) for n in range(5)]
    none_kept.export(spans)
    all_kept.export(spans)
    assert (len(none_kept.spans), len(all_kept.spans)) == (0, 5)


def test_stats_line_is_written_once_per_n_invocations_from_many_threads(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Concurrent invocations (8 threads x 250) with NEXS_STATS_LOG_EVERY=10 write exactly 200 lines."""
    settings = from_env({"NEXS_STATS_LOG_EVERY": "10"})
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)

    def work() -> None:
        for _ in range(250):
            after_invocation(settings)

    try:
        threads = [threading.Thread(target=work) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    lines = [json.loads(line)["nexs_stats"] for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 200
    assert sorted(line["invocations"] for line in lines) == list(range(10, 2001, 10))
