"""A user's exporter with only ``export(spans)`` cannot hold the flush past its deadline; None is SUCCESS.

Blocking exporters here wait on an Event the test sets: each test asserts that
the flush (or the handler) returned while the export was still blocked, then
releases it and checks what was delivered and counted. The Event's own wait is
bounded (`WAIT_S`) only so that code which does hold the flush fails instead of hanging.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from io import StringIO

import pytest
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from support.polling import wait_for
from support.spans import make_spans

from nexs_serverless import configure, flush, stats, traced_handler, tracer
from nexs_serverless.exporters import ConsoleExporter, ExportResult, InMemoryExporter
from nexs_serverless.exporters.adapt import adapt
from nexs_serverless.exporters.file import FileExporter
from nexs_serverless.exporters.resilient import ResilientExporter
from nexs_serverless.flushing import shutdown_flush
from nexs_serverless.runtime import runtime
from nexs_serverless.testing import LambdaContext

WAIT_S = 10.0  # what a blocked export waits at most: a bound on a hang, never reached when the test passes
# The flush budget of the direct `flush` calls: how long each waits for a blocked export. Generous, so that
# on a busy machine the export is still reached before the deadline (else it is skipped, and kept).
BUDGET_MS = 500
LONG_MS = 30_000  # the budget of flushes whose export answers at once: they return when it has


class _Blocking:
    """Its first export blocks until `release` is set, then reads its spans and answers `first`.

    The names are read after the release, as an exporter that serializes late
    would: by then the flush has returned, and its span records were recycled.
    """

    def __init__(self, first: Callable[[], object] = lambda: ExportResult.SUCCESS) -> None:
        self.first = first
        self.batches: list[list[str]] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        self.returned = threading.Event()

    def export(self, spans: Sequence[object]) -> object:
        if self.entered.is_set():  # a later export: at once
            self.batches.append(sorted(span.name for span in spans))  # type: ignore[attr-defined]
            return ExportResult.SUCCESS
        self.entered.set()
        self.release.wait(WAIT_S)
        self.batches.append(sorted(span.name for span in spans))  # type: ignore[attr-defined]
        self.returned.set()
        return self.first()


def _span(name: str) -> None:
    tracer.span(name).end()


def _blocked_flush(blocking: _Blocking, name: str = "first") -> None:
    """A flush that returns while `blocking`'s export is still blocked (asserted)."""
    _span(name)
    assert flush(BUDGET_MS) == 1
    assert blocking.entered.wait(WAIT_S)
    assert not blocking.returned.is_set()  # the flush did not wait for it


def _late_result(counter: str) -> None:
    """Wait for the overrun export's result to be counted (after it returned, in its thread)."""
    assert wait_for(lambda: counter in stats(), WAIT_S)


# -- the flush waits only until its deadline -------------------------------------------------------


def test_a_blocking_export_does_not_hold_the_handler_past_the_invocation() -> None:
    """The handler returns by the invocation's deadline while the export still blocks; its spans go once."""

    @traced_handler
    def handler(event: dict[str, str], context: object) -> str:
        _span(event["name"])
        return "ok"

    environ = {"NEXS_FLUSH_SAFETY_MARGIN_MS": "1000"}  # a flush budget of what is left of 1.5 s, less 1 s
    configure(exporters=[InMemoryExporter()], environ=environ)
    handler({"name": "warm"}, LambdaContext())  # the first invocation's imports are not taken from the budget
    blocking = _Blocking()
    configure(exporters=[blocking], flush_timeout_ms=60_000, environ=environ)
    assert handler({"name": "one"}, LambdaContext(timeout_ms=1500)) == "ok"
    assert blocking.entered.wait(WAIT_S)
    assert not blocking.returned.is_set()  # the handler returned while the export was blocked
    assert stats()["export_overran"] == 1
    blocking.release.set()
    _late_result("export_spans_delivered_late")
    assert handler({"name": "two"}, LambdaContext(timeout_ms=10_000)) == "ok"
    # Delivered late: not sent again with the next invocation's spans, and not lost.
    assert blocking.batches == [["one", "test-function"], ["test-function", "two"]]
    counters = stats()
    assert counters["export_spans_delivered_late"] == 2
    assert "export_spans_failed_late" not in counters
    assert "spans_dropped_shutdown" not in counters


@pytest.mark.parametrize(
    "first",
    [
        lambda: ExportResult.FAILURE,
        lambda: SpanExportResult.FAILURE,
        lambda: _raise(ConnectionError("reset")),
    ],
    ids=["failure", "sdk_failure", "raised"],
)
def test_an_overrun_export_that_fails_late_has_its_spans_sent_again(first: Callable[[], object]) -> None:
    """The overrun batch is kept: when the late result is a failure, the next flush sends it again."""
    blocking = _Blocking(first)
    configure(exporters=[blocking])
    _blocked_flush(blocking)
    blocking.release.set()
    _late_result("export_spans_failed_late")
    _span("second")
    assert flush(LONG_MS) == 1
    assert blocking.batches == [["first"], ["first", "second"]]
    counters = stats()
    assert counters["export_spans_failed_late"] == 1
    assert counters["export_overran"] == 1
    assert "export_spans_delivered_late" not in counters


def test_a_flush_while_an_export_still_runs_starts_no_other_and_keeps_its_spans() -> None:
    """A second flush does not call the exporter again while its export blocks; its spans wait and go once."""
    blocking = _Blocking()
    configure(exporters=[blocking])
    _blocked_flush(blocking)
    _span("second")  # started while the blocked export still holds the first flush's spans
    assert flush(BUDGET_MS) == 1
    assert not blocking.returned.is_set()
    counters = stats()
    assert counters["export_skipped_busy"] == 1
    assert counters["export_overran"] == 1
    blocking.release.set()
    _late_result("export_spans_delivered_late")
    _span("third")
    assert flush(LONG_MS) == 1
    assert blocking.batches == [["first"], ["second", "third"]]


def _waiting_for_the_export(thread: threading.Thread) -> bool:
    """Whether `thread` is inside `ExportWorker.wait` (the exit waiting for an overrun export)."""
    frame = sys._current_frames().get(thread.ident or 0)
    while frame is not None:
        if frame.f_code.co_name == "wait" and frame.f_code.co_filename.endswith("_export_worker.py"):
            return True
        frame = frame.f_back
    return False


def test_the_exit_waits_for_an_overrun_export_and_loses_none_of_its_spans() -> None:
    """The exit's force_flush waits for a still running export: delivered late, none is counted lost."""
    blocking = _Blocking()
    configure(exporters=[blocking])
    _blocked_flush(blocking)
    exit_flush = threading.Thread(target=shutdown_flush, args=(60_000,))
    exit_flush.start()
    try:
        assert wait_for(lambda: _waiting_for_the_export(exit_flush), WAIT_S)
    finally:
        blocking.release.set()
        exit_flush.join(WAIT_S)
    assert not exit_flush.is_alive()
    for wrapped in runtime.exporters():
        wrapped.shutdown()  # type: ignore[attr-defined]
    counters = stats()
    assert counters["export_spans_delivered_late"] == 1
    assert "spans_dropped_shutdown" not in counters
    assert blocking.batches == [["first"]]


# -- what an export returns ------------------------------------------------------------------------


class _Returning:
    """Returns `result` from every export; records what it got."""

    def __init__(self, result: object) -> None:
        self.result = result
        self.batches: list[list[str]] = []

    def export(self, spans: Sequence[object]) -> object:
        self.batches.append([span.name for span in spans])  # type: ignore[attr-defined]
        return self.result


def _warnings(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and text in r.getMessage()]


def test_an_export_returning_none_is_a_success_warned_once(caplog: pytest.LogCaptureFixture) -> None:
    """An `export` without ``return``: its spans are not resent at every flush, the breaker stays closed."""
    forgetful = _Returning(None)
    configure(exporters=[forgetful])
    for name in ("a", "b", "c", "d"):  # one more than the breaker's threshold
        _span(name)
        assert flush(LONG_MS) == 1
    assert forgetful.batches == [["a"], ["b"], ["c"], ["d"]]
    counters = stats()
    assert counters["export_spans_sent"] == 4
    assert not {name for name in counters if name.startswith(("export_errors_", "export_spans_carried"))}
    assert len(_warnings(caplog, "_Returning.export returned None")) == 1


def test_none_is_a_success_for_an_exporter_wrapped_directly_too() -> None:
    """`ResilientExporter` around an `export`-only exporter, without `adapt`: None is SUCCESS there too."""
    forgetful = _Returning(None)
    wrapped = ResilientExporter(forgetful)
    assert wrapped.export(make_spans(2)) is ExportResult.SUCCESS
    assert wrapped.export(make_spans(1, "next")) is ExportResult.SUCCESS
    assert forgetful.batches == [["span-0", "span-1"], ["next-0"]]
    assert "export_spans_carried_over" not in stats()


@pytest.mark.parametrize(
    ("result", "kept"),
    [
        (ExportResult.SUCCESS, False),
        (ExportResult.FAILURE, True),
        (SpanExportResult.SUCCESS, False),
        (SpanExportResult.FAILURE, True),
    ],
)
def test_export_results_keep_their_meaning(result: object, kept: bool) -> None:
    """Our `ExportResult` and OpenTelemetry's `SpanExportResult` mean what they say, through the worker."""
    configure(exporters=[_Returning(result)])
    _span("only")
    flush(LONG_MS)
    assert ("export_spans_carried_over" in stats()) is kept


def _raise(exc: Exception) -> object:
    raise exc


def test_an_error_raised_in_time_is_classified_as_before() -> None:
    """An exception from the export's thread reaches the wrapper: classified (network), its spans kept."""
    failing = _Blocking(lambda: _raise(ConnectionError("refused")))
    failing.release.set()  # no blocking: it fails at once
    configure(exporters=[failing])
    _span("first")
    flush(LONG_MS)
    _span("second")
    flush(LONG_MS)
    assert failing.batches == [["first"], ["first", "second"]]
    counters = stats()
    assert counters["export_errors_network"] == 1
    assert "export_overran" not in counters


# -- who pays a thread -----------------------------------------------------------------------------


class _Sending:
    """A user's exporter with the `send` seam: it takes a timeout, so it is called directly."""

    def send(self, spans: Sequence[object], timeout_s: float) -> int:
        return 0

    def export(self, spans: Sequence[object]) -> ExportResult:
        return ExportResult.SUCCESS


def test_only_export_only_exporters_of_unknown_classes_get_a_worker(tmp_path: object) -> None:
    """Console, in-memory and file exporters (ours), a `send` one and an SDK one are called directly."""
    direct = [
        ConsoleExporter(stream=StringIO()),
        InMemoryExporter(),
        FileExporter(f"{tmp_path}/spans.jsonl"),
        _Sending(),
        InMemorySpanExporter(),  # behind the SDK adapter, which has its own worker
    ]
    for exporter in direct:
        assert adapt(exporter)._worker is None, exporter  # type: ignore[attr-defined]
    assert adapt(_Returning(None))._worker is not None  # type: ignore[attr-defined]


COLD_INVOCATION = """
import json, sys
from io import StringIO
from nexs_serverless import configure, traced_handler
from nexs_serverless.exporters import ConsoleExporter, InMemoryExporter
from nexs_serverless.exporters.file import FileExporter
from nexs_serverless.testing import LambdaContext

memory = InMemoryExporter()
configure(exporters=[ConsoleExporter(stream=StringIO()), memory, FileExporter(sys.argv[1])])

@traced_handler
def handler(event, context):
    return "ok"

handler({}, LambdaContext(timeout_ms=10_000))
print(json.dumps({
    "worker_loaded": "nexs_serverless.exporters._export_worker" in sys.modules,
    "exported": [s.name for s in memory.get_finished_spans()],
}))
"""


def test_a_cold_invocation_with_our_exporters_loads_no_worker(tmp_path: object) -> None:
    """A fresh process exporting to console, memory and file never loads the worker module."""
    done = subprocess.run(
        [sys.executable, "-c", COLD_INVOCATION, f"{tmp_path}/spans.jsonl"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["exported"] == ["test-function"]
    assert report["worker_loaded"] is False
