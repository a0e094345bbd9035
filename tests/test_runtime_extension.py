"""After-response flush: the internal extension against the Runtime API emulator, in process."""

from __future__ import annotations

import http.client
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.fresh_python import run_python
from support.runtime_api import RuntimeAPI

from nexs_serverless import extension, stats, traced_handler, tracer
from nexs_serverless.exporters import InMemoryExporter
from nexs_serverless.testing import LambdaContext, reset

ROOT = Path(__file__).resolve().parent.parent


pytestmark = pytest.mark.usefixtures("fresh_extension")


@pytest.fixture
def api() -> Iterator[RuntimeAPI]:
    """A Runtime API emulator with the Extensions API."""
    with RuntimeAPI() as emulator:
        yield emulator


def _configure(api: RuntimeAPI | None, memory: InMemoryExporter, **env: str) -> None:
    environ = {"NEXS_FLUSH_MODE": "after_response", **env}
    if api is not None:
        environ["AWS_LAMBDA_RUNTIME_API"] = api.address
    reset(environ=environ, exporters=[memory])


def _event(request_id: str, *, deadline_in_s: float = 30.0) -> dict[str, object]:
    return {
        "eventType": "INVOKE",
        "requestId": request_id,
        "deadlineMs": int((time.time() + deadline_in_s) * 1000),
    }


def _stop(ext: extension.Extension, api: RuntimeAPI) -> None:
    api.close()
    assert ext.thread is not None
    ext.thread.join(5)


def test_decorating_registers_for_invoke_only_before_the_first_next(api: RuntimeAPI) -> None:
    """@traced_handler in after_response mode registers an INVOKE-only extension and asks for its event."""
    memory = InMemoryExporter()
    _configure(api, memory)

    @traced_handler
    def handler(event: object, context: object) -> str:
        return "ok"

    (registration,) = api.registrations
    assert (registration.name, registration.events) == ("nexs-serverless", ["INVOKE"])
    ext = extension.active()
    assert ext is not None
    assert ext.identifier == registration.identifier
    deadline = time.monotonic() + 5
    while not api.seq_of("extension next") and time.monotonic() < deadline:
        time.sleep(0.005)
    assert api.seq_of("extension next")
    _stop(ext, api)


def test_start_registers_once(api: RuntimeAPI) -> None:
    """Several decorated handlers share one extension."""
    _configure(api, InMemoryExporter())
    assert extension.start()
    assert extension.start()
    assert len(api.registrations) == 1
    ext = extension.active()
    assert ext is not None
    _stop(ext, api)


def test_importing_the_package_registers_nothing(api: RuntimeAPI) -> None:
    """Plain `import nexs_serverless` with the mode on neither loads the extension nor registers."""
    env = {"NEXS_FLUSH_MODE": "after_response", "AWS_LAMBDA_RUNTIME_API": api.address}
    code = "import sys, nexs_serverless; print('nexs_serverless.extension' in sys.modules)"
    result = run_python(code, env=env)
    assert result.stdout.strip() == "False"
    assert api.registrations == []


def test_finish_hands_over_instead_of_flushing(api: RuntimeAPI) -> None:
    """With the extension running, the handler's return exports nothing; serving the INVOKE does."""
    memory = InMemoryExporter()
    _configure(api, memory)

    @traced_handler
    def handler(event: object, context: object) -> str:
        with tracer.span("work"):
            return "ok"

    ext = extension.active()
    assert ext is not None
    assert handler({}, LambdaContext(aws_request_id="r-1")) == "ok"
    assert memory.get_finished_spans() == []
    ext.serve(_event("r-1"))
    assert sorted(s.name for s in memory.get_finished_spans()) == ["test-function", "work"]
    assert stats()["flushes_after_response"] == 1
    _stop(ext, api)


def test_serve_waits_for_its_own_invocation(api: RuntimeAPI) -> None:
    """A hand-over for another request does not release the wait; its own one does."""
    memory = InMemoryExporter()
    _configure(api, memory)
    assert extension.start()
    ext = extension.active()
    assert ext is not None
    ext.hand_over("someone-else")
    tracer.span("mine").end()
    served = threading.Thread(target=ext.serve, args=(_event("mine-1"),))
    served.start()
    served.join(0.05)
    assert served.is_alive()
    assert memory.get_finished_spans() == []
    ext.hand_over("mine-1")
    served.join(5)
    assert not served.is_alive()
    assert [s.name for s in memory.get_finished_spans()] == ["mine"]
    _stop(ext, api)


def test_anonymous_hand_over_releases_the_pending_invocation(api: RuntimeAPI) -> None:
    """A hand-over without a request id (a failed begin) still ends the wait."""
    memory = InMemoryExporter()
    _configure(api, memory)
    assert extension.start()
    ext = extension.active()
    assert ext is not None
    ext.hand_over(None)
    ext.serve(_event("any"))
    assert stats().get("extension_handover_missed", 0) == 0
    _stop(ext, api)


def test_missing_hand_over_ends_at_the_deadline(api: RuntimeAPI) -> None:
    """No hand-over (the runtime failed before the handler): flush anyway once the deadline is near."""
    memory = InMemoryExporter()
    _configure(api, memory)
    assert extension.start()
    ext = extension.active()
    assert ext is not None
    tracer.span("orphan").end()
    ext.serve(_event("lost", deadline_in_s=-1.0))
    assert stats()["extension_handover_missed"] == 1
    assert stats()["flushes_after_response"] == 1
    _stop(ext, api)


def test_broken_api_stops_the_loop_and_returns_to_flush_on_return(api: RuntimeAPI) -> None:
    """When event/next fails, the extension stops and the wrapper flushes on return again."""
    memory = InMemoryExporter()
    _configure(api, memory)

    @traced_handler
    def handler(event: object, context: object) -> str:
        return "ok"

    ext = extension.active()
    assert ext is not None
    _stop(ext, api)
    assert not ext.running
    assert extension.active() is None
    assert stats()["extension_stopped"] == 1
    handler({}, LambdaContext())
    assert len(memory.get_finished_spans()) == 1


def test_without_the_api_the_mode_falls_back_to_flush_on_return(caplog: pytest.LogCaptureFixture) -> None:
    """Not on Lambda: one warning, and the spans are exported when the handler returns."""
    memory = InMemoryExporter()
    _configure(None, memory)
    with caplog.at_level(logging.WARNING, logger="nexs_serverless"):

        @traced_handler
        def handler(event: object, context: object) -> str:
            return "ok"

        handler({}, LambdaContext())
        handler({}, LambdaContext())
    assert len(memory.get_finished_spans()) == 2
    assert stats()["extension_unavailable"] == 1
    warnings = [r.getMessage() for r in caplog.records if "after_response" in r.getMessage()]
    assert len(warnings) == 1
    assert "AWS_LAMBDA_RUNTIME_API is not set" in warnings[0]


def test_api_without_extensions_falls_back() -> None:
    """A Runtime API without the extension endpoints (404) means flush on return."""
    with RuntimeAPI(extensions_api=False) as api:
        memory = InMemoryExporter()
        _configure(api, memory)
        assert not extension.start()
        assert not extension.hand_over("r")


def test_registration_after_init_is_refused_and_falls_back(api: RuntimeAPI) -> None:
    """Once the runtime has asked for its first invocation, registering fails (403): flush on return."""
    host, port = api.address.split(":")
    runtime_side = http.client.HTTPConnection(host, int(port), timeout=10)
    waiting = threading.Thread(target=_runtime_next, args=(runtime_side,), daemon=True)
    waiting.start()
    deadline = time.monotonic() + 5
    while not api.seq_of("runtime next") and time.monotonic() < deadline:
        time.sleep(0.005)
    _configure(api, InMemoryExporter())
    assert not extension.start()
    assert api.registrations == []
    api.close()
    waiting.join(5)
    runtime_side.close()


def _runtime_next(connection: http.client.HTTPConnection) -> None:
    connection.request("GET", "/2018-06-01/runtime/invocation/next")
    connection.getresponse().read()


def test_malformed_api_address_falls_back() -> None:
    """AWS_LAMBDA_RUNTIME_API that is not host:port is reported and ignored."""
    _configure(None, InMemoryExporter(), AWS_LAMBDA_RUNTIME_API="not an address:port")
    assert not extension.start()


def test_sigterm_handler_flushes_then_defers_to_the_previous_one(api: RuntimeAPI) -> None:
    """SIGTERM exports what ended since the last flush, then calls the handler installed before."""
    calls: list[int] = []
    signal.signal(signal.SIGTERM, lambda signum, frame: calls.append(signum))
    memory = InMemoryExporter()
    _configure(api, memory)
    assert extension.start()
    tracer.span("left-behind").end()
    os.kill(os.getpid(), signal.SIGTERM)
    assert calls == [signal.SIGTERM]
    assert [s.name for s in memory.get_finished_spans()] == ["left-behind"]
    assert stats()["sigterm_flushes"] == 1
    ext = extension.active()
    assert ext is not None
    _stop(ext, api)


def test_ignored_sigterm_stays_ignored() -> None:
    """With SIGTERM ignored before us, each SIGTERM flushes and the process lives on, handler kept."""
    code = (
        "import os, signal\n"
        "from nexs_serverless import extension, stats, tracer\n"
        "from nexs_serverless.testing import reset\n"
        "reset(environ={'OTEL_TRACES_EXPORTER': 'console'})\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "extension._install_sigterm_handler()\n"
        "ours = signal.getsignal(signal.SIGTERM)\n"
        "tracer.span('first-words').end()\n"
        "os.kill(os.getpid(), signal.SIGTERM)\n"
        "tracer.span('second-words').end()\n"
        "os.kill(os.getpid(), signal.SIGTERM)\n"  # a reset to SIG_DFL by the first one would end us here
        "print('still alive', stats()['sigterm_flushes'], signal.getsignal(signal.SIGTERM) is ours)\n"
    )
    result = run_python(code, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "first-words" in result.stdout
    assert "second-words" in result.stdout
    assert "still alive 2 True" in result.stdout


def test_default_sigterm_still_terminates_the_process(tmp_path: Path) -> None:
    """With the default handler before ours, the process ends by SIGTERM after the flush."""
    code = (
        "import os, signal\n"
        "from nexs_serverless import extension, tracer\n"
        "from nexs_serverless.testing import reset\n"
        "reset(environ={'OTEL_TRACES_EXPORTER': 'console'})\n"
        "extension._install_sigterm_handler()\n"
        "tracer.span('last-words').end()\n"
        "os.kill(os.getpid(), signal.SIGTERM)\n"
        "print('still alive')\n"
    )
    result = run_python(code, check=False)
    assert result.returncode == -signal.SIGTERM
    assert "last-words" in result.stdout
    assert "still alive" not in result.stdout


def test_decorating_outside_the_main_thread_skips_the_sigterm_handler(
    api: RuntimeAPI, caplog: pytest.LogCaptureFixture
) -> None:
    """signal handlers belong to the main thread: elsewhere the extension runs without one."""
    before = signal.getsignal(signal.SIGTERM)
    _configure(api, InMemoryExporter())
    results: list[bool] = []
    with caplog.at_level(logging.WARNING, logger="nexs_serverless"):
        worker = threading.Thread(target=lambda: results.append(extension.start()))
        worker.start()
        worker.join(5)
    assert results == [True]
    assert signal.getsignal(signal.SIGTERM) is before
    assert any("outside the main thread" in r.getMessage() for r in caplog.records)
    ext = extension.active()
    assert ext is not None
    _stop(ext, api)


class _FailingExtension(extension.Extension):
    """An extension whose serving step breaks (to pin that the loop survives it)."""

    __slots__ = ()

    def serve(self, event: dict[str, object], **kwargs: object) -> None:
        raise RuntimeError("serving broke")


def test_a_failure_while_serving_does_not_stop_the_loop(api: RuntimeAPI) -> None:
    """Lambda waits for the extension's next on every invocation: after a failure it still asks for one."""
    _configure(api, InMemoryExporter())
    connection = extension.connect(api.address)
    ext = _FailingExtension(connection, extension.register(connection))
    ext.launch()
    host, port = api.address.split(":")
    runtime_side = http.client.HTTPConnection(host, int(port), timeout=10)
    api.submit({})
    taking = threading.Thread(target=_runtime_next, args=(runtime_side,), daemon=True)
    taking.start()
    identifier = ext.identifier
    deadline = time.monotonic() + 5
    while len(api.seq_of(f"extension next {identifier}")) < 2 and time.monotonic() < deadline:
        time.sleep(0.005)
    assert len(api.seq_of(f"extension next {identifier}")) == 2
    assert ext.running
    assert stats()["internal_errors"] >= 1
    _stop(ext, api)
    taking.join(5)
    runtime_side.close()


def test_a_nested_traced_handler_leaves_the_hand_over_to_the_outer_one(api: RuntimeAPI) -> None:
    """A decorated handler called from inside another (same request id) does not hand over.

    Before, the inner one's hand-over released the extension's wait while the outer
    handler still ran: the flush took only the inner root, and the outer's own
    hand-over stayed queued (its root waited for a later invocation).
    """
    memory = InMemoryExporter()
    _configure(api, memory)

    @traced_handler(name="inner")
    def inner(event: object, context: object) -> int:
        return 1

    @traced_handler(name="outer")
    def outer(event: object, context: object) -> int:
        inner(event, context)
        return 2

    ext = extension.active()
    assert ext is not None
    assert outer({}, LambdaContext(aws_request_id="r-1")) == 2
    assert memory.get_finished_spans() == []
    ext.serve(_event("r-1"))
    assert sorted(s.name for s in memory.get_finished_spans()) == ["inner", "outer"]
    assert list(ext._handed) == []  # nothing left to release a later invocation early
    _stop(ext, api)


def test_the_decorators_flush_budget_applies_after_the_response(api: RuntimeAPI) -> None:
    """``@traced_handler(flush_timeout_ms=...)`` bounds the extension's flush as it bounds a flush on
    return (before, the extension used NEXS_FLUSH_TIMEOUT_MS whatever the decorator said)."""
    from nexs_serverless.context import remaining_export_s

    allowed_s: list[float] = []

    class Measuring(InMemoryExporter):
        def export(self, spans: Any) -> Any:
            allowed_s.append(remaining_export_s(60.0))  # the flush's deadline, as exporters see it
            return super().export(spans)

    _configure(api, Measuring())

    @traced_handler(flush_timeout_ms=100)
    def handler(event: object, context: object) -> str:
        return "ok"

    ext = extension.active()
    assert ext is not None
    assert handler({}, LambdaContext(aws_request_id="r-1")) == "ok"
    ext.serve(_event("r-1"))
    (allowed,) = allowed_s
    assert 0 < allowed <= 0.1  # not NEXS_FLUSH_TIMEOUT_MS's 1 s
    _stop(ext, api)
