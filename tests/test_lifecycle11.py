"""Exporter lifecycle on reconfiguration, the async handler's flush off the event loop, BaseExceptions."""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

import nexs_serverless
from nexs_serverless import configure, flush, traced_handler, tracer
from nexs_serverless.exporters import InMemoryExporter
from nexs_serverless.exporters.base import ExportResult
from nexs_serverless.exporters.file import FileExporter
from nexs_serverless.exporters.otlp_http import OTLPHttpExporter
from nexs_serverless.flushing import shutdown_flush
from nexs_serverless.model import StatusCode

LONG_MS = 60_000  # budgets no step of these tests comes near: each waits on events, not on time
WAIT_S = 30.0

needs_proc = pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="reads /proc/self/fd")


def _is_open(path: Path) -> bool:
    """Whether this process holds a descriptor on `path`."""
    folder = "/proc/self/fd"
    targets = []
    for fd in os.listdir(folder):
        with contextlib.suppress(OSError):  # closed since the listing
            targets.append(os.readlink(os.path.join(folder, fd)))
    return str(path) in targets


def _span_and_flush(name: str = "work") -> None:
    with tracer.span(name):
        pass
    flush()


# -- 1. replaced exporters are shut down ---------------------------------------------------------


@needs_proc
def test_configure_closes_the_file_of_the_exporter_it_replaces(tmp_path: Path) -> None:
    """A file exporter replaced by `configure(exporters=...)` has its file closed at once."""
    old_path, new_path = tmp_path / "old.jsonl", tmp_path / "new.jsonl"
    configure(exporters=[FileExporter(str(old_path))], environ={})
    _span_and_flush("before")
    assert _is_open(old_path)
    configure(exporters=[FileExporter(str(new_path))], environ={})
    assert not _is_open(old_path)
    _span_and_flush("after")
    assert "after" in new_path.read_text()
    assert "after" not in old_path.read_text()


@needs_proc
def test_exporters_built_from_the_environment_are_shut_down_when_rebuilt(tmp_path: Path) -> None:
    """Reconfiguring from the environment closes what the previous ``OTEL_TRACES_EXPORTER`` opened."""
    old_path, new_path = tmp_path / "old.jsonl", tmp_path / "new.jsonl"
    configure(environ={"OTEL_TRACES_EXPORTER": "file", "NEXS_FILE_PATH": str(old_path)})
    _span_and_flush()
    assert _is_open(old_path)
    configure(environ={"OTEL_TRACES_EXPORTER": "file", "NEXS_FILE_PATH": str(new_path)})
    assert not _is_open(old_path)


def test_an_exporter_passed_again_is_not_shut_down() -> None:
    """The same object passed to `configure` again keeps working; only the one left out is shut down."""
    kept, dropped = InMemoryExporter(), InMemoryExporter()
    configure(exporters=[kept, dropped], environ={})
    _span_and_flush("first")
    configure(exporters=[kept], environ={})
    configure(service_name="renamed", environ={})  # rebuilds our wrappers around `kept`
    _span_and_flush("second")
    assert (kept.is_shutdown, dropped.is_shutdown) == (False, True)
    assert [span.name for span in kept.get_finished_spans()] == ["first", "second"]


def test_exporters_replaced_before_their_first_flush_are_shut_down_too() -> None:
    """An exporter configured and replaced before any flush built it is shut down as well."""
    never_used, current = InMemoryExporter(), InMemoryExporter()
    configure(exporters=[never_used], environ={})
    configure(exporters=[current], environ={})
    assert never_used.is_shutdown is True
    assert current.is_shutdown is False


class _Recording:
    """An exporter that notes what happens to it, and can hold one of its methods until `release` is set."""

    def __init__(self, *, hold: str = "", fail: bool = False) -> None:
        self.log: list[str] = []
        self.entered = threading.Event()  # the held method was entered
        self.release = threading.Event()
        self.hold = hold
        self.fail = fail

    def _step(self, name: str) -> None:
        self.log.append(name)
        if self.hold == name:
            self.entered.set()
            self.release.wait(WAIT_S)
            self.log.append(name + " done")

    def export(self, spans: Sequence[object]) -> ExportResult:
        self._step("export")
        return ExportResult.SUCCESS

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        self._step("force_flush")
        return True

    def shutdown(self) -> None:
        self._step("shutdown")
        if self.fail:
            raise OSError("cannot close")


def _until(condition: Callable[[], bool]) -> bool:
    """Poll `condition` (for a state another thread reaches) for up to `WAIT_S`."""
    for _ in range(int(WAIT_S * 1000)):
        if condition():
            return True
        time.sleep(0.001)
    return False


def _retiring() -> bool:
    return any(thread.name == "nexs-retire-exporters" for thread in threading.enumerate())


def test_a_replaced_exporter_is_shut_down_only_after_the_flush_using_it_ends() -> None:
    """`configure` during a flush on another thread: the shutdown comes after that export, not during it."""
    busy = _Recording(hold="export")
    configure(exporters=[busy], flush_timeout_ms=LONG_MS, environ={})
    with tracer.span("in flight"):
        pass
    _reconfigure_while(busy, threading.Thread(target=flush, args=(LONG_MS,)))
    assert busy.log == ["export", "export done", "shutdown"]


def test_a_replaced_exporter_is_shut_down_only_after_the_exit_flush_drains_it() -> None:
    """`configure` during `shutdown_flush`'s force_flush: the shutdown waits for the force_flush to end."""
    busy = _Recording(hold="force_flush")
    configure(exporters=[busy], flush_timeout_ms=LONG_MS, environ={})
    _reconfigure_while(busy, threading.Thread(target=shutdown_flush, args=(LONG_MS,)))
    assert busy.log == ["force_flush", "force_flush done", "shutdown"]


def _reconfigure_while(busy: _Recording, using: threading.Thread) -> None:
    """Start `using`; while it is held inside `busy`, replace `busy` from another thread; then release it."""
    using.start()
    assert busy.entered.wait(WAIT_S)
    reconfiguring = threading.Thread(
        target=configure, kwargs={"exporters": [InMemoryExporter()], "environ": {}}
    )
    try:
        reconfiguring.start()
        assert _until(lambda: _retiring() or "shutdown" in busy.log)
        assert "shutdown" not in busy.log  # not shut down while in use
    finally:
        busy.release.set()
        using.join(WAIT_S)
        reconfiguring.join(WAIT_S)


def test_a_tenant_router_is_shut_down_through_its_parts_except_one_passed_again() -> None:
    """A replaced `TenantRouter` shuts down its tenants' and default exporters, but not one passed again."""
    from nexs_serverless.tenancy import TenantRouter

    kept, tenant, default = _Recording(), _Recording(), _Recording()
    configure(exporters=[TenantRouter({"acme": [tenant, kept]}, default=[default])], environ={})
    _span_and_flush()
    configure(exporters=[kept], environ={})
    assert "shutdown" in tenant.log
    assert "shutdown" in default.log
    assert "shutdown" not in kept.log


def test_a_failing_shutdown_does_not_reach_configure_nor_skip_the_others() -> None:
    """A shutdown that raises is reported and counted; the other replaced exporters are still shut down."""
    broken, fine = _Recording(fail=True), _Recording()
    configure(exporters=[broken, fine], environ={})
    _span_and_flush()
    configure(exporters=[], environ={})
    assert broken.log == fine.log == ["export", "shutdown"]
    assert nexs_serverless.stats()["internal_errors"] == 1


def test_a_shutdown_that_hangs_holds_configure_no_longer_than_the_flush_budget() -> None:
    """`configure` returns while a replaced exporter's shutdown still hangs; it finishes in the background."""
    hanging = _Recording(hold="shutdown")
    configure(exporters=[hanging], flush_timeout_ms=1, environ={})
    try:
        configure(exporters=[], environ={})
        assert nexs_serverless.stats()["exporters_shutdown_overran"] == 1
        assert hanging.entered.wait(WAIT_S)
    finally:
        hanging.release.set()


# -- 2. an async handler's flush does not block the event loop -----------------------------------


class _HeldReceiver:
    """An HTTP endpoint on 127.0.0.1 that answers each POST only once `release` is set."""

    def __init__(self) -> None:
        self.held = threading.Event()
        self.release = threading.Event()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.held.set()
                receiver.release.wait(WAIT_S)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1/traces"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(WAIT_S)


@pytest.fixture
def held_receiver() -> Iterator[_HeldReceiver]:
    """A receiver that holds every export until the test releases it."""
    receiver = _HeldReceiver()
    yield receiver
    receiver.close()


def test_an_async_handlers_flush_lets_other_coroutines_run(held_receiver: _HeldReceiver) -> None:
    """While the return flush waits on a slow back end, other coroutines run; the result comes after it."""
    configure(exporters=[OTLPHttpExporter(endpoint=held_receiver.url)], flush_timeout_ms=LONG_MS, environ={})

    @traced_handler(name="root")
    async def handler(event: dict[str, Any], context: object) -> dict[str, int]:
        return {"status": 1}

    async def main() -> tuple[bool, dict[str, int], float]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        ticking = asyncio.create_task(ticker())
        call = asyncio.create_task(handler({}, None))
        assert await asyncio.to_thread(held_receiver.held.wait, WAIT_S)  # the export reached the back end
        seen = ticks
        while ticks < seen + 100:
            await asyncio.sleep(0)
        still_flushing = not call.done()
        held_receiver.release.set()
        result = await call
        sent = nexs_serverless.stats().get("export_spans_sent", 0)  # as the awaitable returns
        ticking.cancel()
        return still_flushing, result, sent

    still_flushing, result, sent = asyncio.run(main())
    assert still_flushing is True  # the ticker ran while the flush was held
    assert result == {"status": 1}
    assert sent == 1  # the back end's answer had arrived: the flush was over before the result


def test_a_cancel_landing_in_the_flush_does_not_change_the_handlers_result(
    held_receiver: _HeldReceiver,
) -> None:
    """A task cancelled (a ``wait_for`` timeout, a task group) while its finished handler's spans are
    being flushed still returns the handler's result: without the tracer there was no await to cancel."""
    configure(exporters=[OTLPHttpExporter(endpoint=held_receiver.url)], flush_timeout_ms=LONG_MS, environ={})

    @traced_handler(name="root")
    async def handler(event: dict[str, Any], context: object) -> dict[str, int]:
        return {"status": 1}

    async def main() -> dict[str, int]:
        call = asyncio.create_task(handler({}, None))
        assert await asyncio.to_thread(held_receiver.held.wait, WAIT_S)  # the handler returned; flushing
        call.cancel()
        await asyncio.sleep(0)  # the cancel reaches the wrapper's await
        held_receiver.release.set()
        return await call

    assert asyncio.run(main()) == {"status": 1}
    assert nexs_serverless.stats()["flush_cancel_held"] == 1


def test_an_async_handlers_exception_passes_through_after_the_flush(exporter: InMemoryExporter) -> None:
    """The handler's own exception object reaches the caller, and its root span was exported first."""
    error = ValueError("bad input")

    @traced_handler(name="root")
    async def handler(event: dict[str, Any], context: object) -> None:
        raise error

    async def main() -> tuple[BaseException, list[str]]:
        try:
            await handler({}, None)
        except ValueError as exc:
            return exc, [span.name for span in exporter.get_finished_spans()]
        raise AssertionError("no exception")

    raised, exported = asyncio.run(main())
    assert raised is error
    assert exported == ["root"]


def test_an_async_handler_driven_without_an_event_loop_still_flushes(exporter: InMemoryExporter) -> None:
    """A coroutine stepped by hand (no asyncio loop) returns its value and flushes in place."""

    @traced_handler(name="root")
    async def handler(event: dict[str, Any], context: object) -> str:
        return "done"

    coroutine = handler({}, None)
    with pytest.raises(StopIteration) as stop:
        coroutine.send(None)
    assert stop.value.value == "done"
    assert [span.name for span in exporter.get_finished_spans()] == ["root"]


# -- 3. BaseExceptions: recorded as errors, propagated unchanged, flushed -------------------------


def test_system_exit_propagates_unchanged_and_its_root_is_flushed(exporter: InMemoryExporter) -> None:
    """``sys.exit()`` in a handler ends the Lambda runtime: the same SystemExit leaves, the root is ERROR."""
    stop = SystemExit(3)

    @traced_handler(name="root")
    def handler(event: dict[str, Any], context: object) -> None:
        raise stop

    with pytest.raises(SystemExit) as raised:
        handler({}, None)
    assert raised.value is stop
    (root,) = exporter.get_finished_spans()
    assert root.status_code == StatusCode.ERROR
    assert [event.name for event in root.events] == ["exception"]


def test_a_cancelled_async_handler_propagates_and_flushes(exporter: InMemoryExporter) -> None:
    """Cancelling the task running an async handler raises CancelledError to it, after its root is flushed."""
    entered = asyncio.Event()

    @traced_handler(name="root")
    async def handler(event: dict[str, Any], context: object) -> None:
        entered.set()
        await asyncio.Event().wait()

    async def main() -> list[str]:
        task = asyncio.create_task(handler({}, None))
        await entered.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return [span.name for span in exporter.get_finished_spans()]

    assert asyncio.run(main()) == ["root"]
    (root,) = exporter.get_finished_spans()
    assert root.status_code == StatusCode.ERROR


def test_an_async_handler_closed_unfinished_flushes_without_awaiting(exporter: InMemoryExporter) -> None:
    """`coroutine.close()` on a handler suspended under a running loop flushes in place, without awaiting."""

    @traced_handler(name="root")
    async def handler(event: dict[str, Any], context: object) -> None:
        await asyncio.sleep(0)

    async def main() -> None:
        coroutine = handler({}, None)
        coroutine.send(None)  # suspended inside the handler
        coroutine.close()

    asyncio.run(main())
    assert [span.name for span in exporter.get_finished_spans()] == ["root"]
