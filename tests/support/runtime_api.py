"""A Lambda Runtime API emulator on 127.0.0.1, and a runner for functions under `awslambdaric`.

The emulator speaks what a Python function's process uses of the Lambda service:

- the runtime protocol (2018-06-01): ``GET /runtime/invocation/next`` answered
  with the event and the ``Lambda-Runtime-Aws-Request-Id``, ``-Deadline-Ms``,
  ``-Invoked-Function-Arn`` and ``-Trace-Id`` headers; ``POST .../response``,
  ``POST .../error`` (with the ``Lambda-Runtime-Function-Error-Type`` header) and
  ``POST /runtime/init/error``, all recorded for the test to compare;
- the extensions protocol (2020-01-01): ``POST /extension/register`` (accepted
  only before the runtime's first ``next``, INVOKE only, as for an internal
  extension) and ``GET /extension/event/next`` answered with INVOKE events.

It keeps Lambda's lifecycle rule: an invocation starts only when the runtime and
every registered extension are waiting in ``next``, i.e. after the previous
invoke phase has ended, so a test sees exactly when the extension let go.

`FunctionProcess` starts a function the way the managed Python runtime does: an
optional ``AWS_LAMBDA_EXEC_WRAPPER`` script, then a bootstrap that reads
``_HANDLER`` and runs `awslambdaric` against the emulator.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

__all__ = ["BOOTSTRAP", "OPT_VARIABLE", "FunctionProcess", "Invocation", "RuntimeAPI"]

FUNCTION_NAME = "nexs-test-function"
REGION = "us-east-1"
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:123456789012:function:{FUNCTION_NAME}"
_POLL_S = 0.02  # the server and waiters re-check for close() this often; not a timing assumption

# What /var/runtime/bootstrap.py does in the managed Python runtime: import the runtime
# interface client, then (when PYTHONPATH is unset) put the layers' folders on the path, then
# the task root before them, and run the client on the handler named by _HANDLER. The layers'
# folders join the path after the interpreter's start-up and the client's imports, as on
# Lambda, so their import misses are not charged to a layer. `OPT_VARIABLE` says where the
# test's /opt is (Lambda's is /opt itself).
OPT_VARIABLE = "NEXS_TEST_OPT"
BOOTSTRAP = (
    "import os, sys\n"
    "from awslambdaric.__main__ import main\n"
    f"opt = os.environ.get({OPT_VARIABLE!r})\n"
    "if opt and 'PYTHONPATH' not in os.environ:\n"
    "    version = '%d.%d' % sys.version_info[:2]\n"
    "    sys.path.insert(0, opt + '/python')\n"
    "    sys.path.insert(0, opt + '/python/lib/python' + version + '/site-packages')\n"
    "sys.path.insert(0, os.environ['LAMBDA_TASK_ROOT'])\n"
    "main([sys.argv[0], os.environ['_HANDLER']])\n"
)


@dataclass
class Invocation:
    """One invocation: what was sent to the runtime and what it posted back."""

    request_id: str
    payload: bytes
    trace_id: str | None
    deadline_ms: int
    response: bytes | None = None
    content_type: str | None = None
    error: dict[str, Any] | None = None
    error_type: str | None = None
    xray_error_cause: str | None = None
    posted_seq: int = 0
    posted_at: float = 0.0  # time.monotonic() when the outcome arrived (benchmarks)
    finished: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def timed_out(self) -> bool:
        """Neither a response nor an error was posted before the deadline."""
        return not self.finished.is_set()

    def json(self) -> Any:
        """The response payload decoded as JSON."""
        assert self.response is not None, f"no response posted (error: {self.error})"
        return json.loads(self.response)


@dataclass
class Registration:
    """An extension registered through ``/extension/register``."""

    name: str
    identifier: str
    events: list[str]
    seq: int


class RuntimeAPI:
    """The emulator; use as a context manager, hand `address` to the function process.

    Args:
        extensions_api: serve the 2020-01-01 extension endpoints (False: 404, as
            an environment without the Extensions API would).
    """

    def __init__(self, *, extensions_api: bool = True) -> None:
        self.extensions_api = extensions_api
        self.failing_extension_nexts = 0  # answer that many extension nexts with a 500 first
        self.invocations: list[Invocation] = []
        self.registrations: list[Registration] = []
        self.init_error: dict[str, Any] | None = None
        self.init_error_type: str | None = None
        self.log: list[tuple[int, str]] = []  # (sequence, what happened), in order
        self._seq = itertools.count(1)
        self._cond = threading.Condition()
        self._queue: deque[Invocation] = deque()
        self._runtime_waiting = False
        self._runtime_called_next = False
        self._runtime_delivery: Invocation | None = None
        self._ext_waiting: set[str] = set()
        self._ext_delivery: dict[str, Invocation] = {}
        self._closed = False
        self._server = _QuietServer(("127.0.0.1", 0), _handler_class(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(_POLL_S,), daemon=True)

    @property
    def address(self) -> str:
        """``host:port``, the value of ``AWS_LAMBDA_RUNTIME_API``."""
        host, port = self._server.server_address[:2]
        return f"{host}:{port}"

    def __enter__(self) -> RuntimeAPI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop serving; requests still waiting in ``next`` are answered with 500."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._server.shutdown()
        self._server.server_close()

    # -- what tests call -------------------------------------------------------------------

    def invoke(self, event: object, *, trace_id: str | None = None, timeout_ms: int = 30_000) -> Invocation:
        """Queue an invocation and wait until the runtime posts its outcome or its deadline passes."""
        inv = self.submit(event, trace_id=trace_id, timeout_ms=timeout_ms)
        inv.finished.wait(max(0.0, inv.deadline_ms / 1000.0 - time.time()))
        return inv

    def submit(self, event: object, *, trace_id: str | None = None, timeout_ms: int = 30_000) -> Invocation:
        """Queue an invocation without waiting for it."""
        payload = event if isinstance(event, bytes) else json.dumps(event).encode()
        inv = Invocation(str(uuid.uuid4()), payload, trace_id, int(time.time() * 1000) + timeout_ms)
        with self._cond:
            self.invocations.append(inv)
            self._queue.append(inv)
            self._dispatch()
        return inv

    def wait_idle(self, timeout_s: float = 30.0) -> bool:
        """Wait until the runtime and every extension are back in ``next`` (the invoke phase ended)."""
        with self._cond:
            return self._cond.wait_for(self._idle, timeout_s)

    def wait_init_error(self, timeout_s: float = 30.0) -> bool:
        """Wait until the runtime reports an init error."""
        with self._cond:
            return self._cond.wait_for(lambda: self.init_error is not None, timeout_s)

    def seq_of(self, what: str) -> list[int]:
        """Sequence numbers of the log entries starting with `what`."""
        return [seq for seq, entry in self.log if entry.startswith(what)]

    # -- lifecycle, under self._cond -------------------------------------------------------

    def _record(self, what: str) -> int:
        seq = next(self._seq)
        self.log.append((seq, what))
        return seq

    def _idle(self) -> bool:
        waiting_for_all = self._ext_waiting >= {r.identifier for r in self.registrations}
        return self._runtime_waiting and waiting_for_all and not self._queue

    def _dispatch(self) -> None:
        if not self._queue or not self._runtime_waiting:
            return
        if not self._ext_waiting >= {r.identifier for r in self.registrations}:
            return  # an extension is still working on the previous invocation
        inv = self._queue.popleft()
        self._record(f"invoke {inv.request_id}")
        self._runtime_waiting = False
        self._runtime_delivery = inv
        for identifier in self._ext_waiting:
            self._ext_delivery[identifier] = inv
        self._ext_waiting.clear()
        self._cond.notify_all()

    def _runtime_next(self) -> Invocation | None:
        with self._cond:
            self._runtime_called_next = True
            self._runtime_waiting = True
            self._record("runtime next")
            self._dispatch()
            self._cond.notify_all()
            while self._runtime_delivery is None and not self._closed:
                self._cond.wait(_POLL_S)
            inv, self._runtime_delivery = self._runtime_delivery, None
            return inv

    def _extension_next(self, identifier: str) -> Invocation | None:
        with self._cond:
            self._ext_waiting.add(identifier)
            self._record(f"extension next {identifier}")
            self._dispatch()
            self._cond.notify_all()
            while identifier not in self._ext_delivery and not self._closed:
                self._cond.wait(_POLL_S)
            return self._ext_delivery.pop(identifier, None)

    def _register(self, name: str, events: list[str]) -> tuple[int, dict[str, Any], str | None]:
        with self._cond:
            if self._runtime_called_next:
                return 403, {"errorType": "Extension.InvalidState", "errorMessage": "init is over"}, None
            if set(events) - {"INVOKE"} or not events:
                return 400, {"errorType": "Extension.InvalidEvent", "errorMessage": repr(events)}, None
            identifier = str(uuid.uuid4())
            seq = self._record(f"register {name}")
            self.registrations.append(Registration(name, identifier, events, seq))
            body = {"functionName": FUNCTION_NAME, "functionVersion": "$LATEST", "handler": "handler"}
            return 200, body, identifier

    def _post(self, request_id: str, kind: str, body: bytes, headers: dict[str, str]) -> bool:
        with self._cond:
            inv = next((i for i in self.invocations if i.request_id == request_id), None)
            if inv is None or inv.finished.is_set():
                return False
            inv.posted_at = time.monotonic()
            inv.posted_seq = self._record(f"{kind} {request_id}")
            if kind == "response":
                inv.response = body
                inv.content_type = headers.get("content-type")
            else:
                inv.error = json.loads(body) if body else {}
                inv.error_type = headers.get("lambda-runtime-function-error-type")
                inv.xray_error_cause = headers.get("lambda-runtime-function-xray-error-cause")
            inv.finished.set()
            self._cond.notify_all()
            return True

    def _init_error(self, body: bytes, headers: dict[str, str]) -> None:
        with self._cond:
            self._record("init error")
            self.init_error = json.loads(body) if body else {}
            self.init_error_type = headers.get("lambda-runtime-function-error-type")
            self._cond.notify_all()


class _QuietServer(ThreadingHTTPServer):
    """A function process killed mid-request is normal here: no traceback on stderr."""

    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


def _handler_class(api: RuntimeAPI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the test reads `api.log` instead."""

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                out = b""
                while True:
                    size = int(self.rfile.readline().split(b";")[0], 16)
                    if size == 0:
                        self.rfile.readline()
                        return out
                    out += self.rfile.read(size)
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _send(self, status: int, body: object = b"", headers: dict[str, str] | None = None) -> None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _lower_headers(self) -> dict[str, str]:
            return {k.lower(): v for k, v in self.headers.items()}

        def do_GET(self) -> None:
            if self.path == "/2018-06-01/runtime/invocation/next":
                inv = api._runtime_next()
                if inv is None:
                    self._send(500, {"errorType": "Emulator.Closed"})
                    return
                headers = {
                    "Lambda-Runtime-Aws-Request-Id": inv.request_id,
                    "Lambda-Runtime-Deadline-Ms": str(inv.deadline_ms),
                    "Lambda-Runtime-Invoked-Function-Arn": FUNCTION_ARN,
                }
                if inv.trace_id:
                    headers["Lambda-Runtime-Trace-Id"] = inv.trace_id
                self._send(200, inv.payload, headers)
            elif self.path == "/2020-01-01/extension/event/next" and api.extensions_api:
                identifier = self.headers.get("Lambda-Extension-Identifier", "")
                if identifier not in {r.identifier for r in api.registrations}:
                    self._send(403, {"errorType": "Extension.Unknown"})
                    return
                if api.failing_extension_nexts > 0:  # a transient failure a test asked for
                    api.failing_extension_nexts -= 1
                    self._send(500, {"errorType": "Emulator.TransientFailure"})
                    return
                inv = api._extension_next(identifier)
                if inv is None:
                    self._send(500, {"errorType": "Emulator.Closed"})
                    return
                event = {
                    "eventType": "INVOKE",
                    "deadlineMs": inv.deadline_ms,
                    "requestId": inv.request_id,
                    "invokedFunctionArn": FUNCTION_ARN,
                    "tracing": {"type": "X-Amzn-Trace-Id", "value": inv.trace_id or ""},
                }
                self._send(200, event, {"Lambda-Extension-Event-Identifier": str(uuid.uuid4())})
            else:
                self._send(404, {"errorType": "NotFound", "errorMessage": self.path})

        def do_POST(self) -> None:
            body = self._body()
            parts = self.path.strip("/").split("/")
            if self.path == "/2018-06-01/runtime/init/error":
                api._init_error(body, self._lower_headers())
                self._send(202, {"status": "OK"})
            elif len(parts) == 5 and parts[:3] == ["2018-06-01", "runtime", "invocation"]:
                if parts[4] not in ("response", "error"):
                    self._send(404, {"errorType": "NotFound"})
                elif api._post(parts[3], parts[4], body, self._lower_headers()):
                    self._send(202, {"status": "OK"})
                else:
                    self._send(400, {"errorType": "InvalidRequestID"})
            elif self.path == "/2020-01-01/extension/register" and api.extensions_api:
                events = json.loads(body or b"{}").get("events", [])
                name = self.headers.get("Lambda-Extension-Name", "")
                status, answer, identifier = api._register(name, events)
                headers = {"Lambda-Extension-Identifier": identifier} if identifier else {}
                self._send(status, answer, headers)
            else:
                self._send(404, {"errorType": "NotFound", "errorMessage": self.path})

    return Handler


class FunctionProcess:
    """A function process as Lambda starts it: [exec wrapper] python bootstrap, with Lambda's variables.

    Args:
        api: the emulator it talks to.
        handler: the function's handler setting (``_HANDLER``), e.g. ``app.handler``.
        task_root: the function's code (``LAMBDA_TASK_ROOT``).
        opt: an unpacked layer (``/opt``): ``opt/python`` goes on the path as the runtime puts it
            there (`BOOTSTRAP`); None runs without a layer.
        wrapper: an ``AWS_LAMBDA_EXEC_WRAPPER`` script to start the runtime through.
        env: extra environment variables (the function's configuration).
        log_path: where the process's stdout and stderr go.
    """

    def __init__(
        self,
        api: RuntimeAPI,
        *,
        handler: str,
        task_root: Path,
        log_path: Path,
        opt: Path | None = None,
        wrapper: Path | None = None,
        env: dict[str, str] | None = None,
        python: str = sys.executable,
    ) -> None:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "NEXS_", "AWS_", "_X_"))}
        base.pop("PYTHONPATH", None)
        base.pop(OPT_VARIABLE, None)
        if opt is not None:
            base[OPT_VARIABLE] = str(opt)
        base.update(
            {
                "AWS_LAMBDA_RUNTIME_API": api.address,
                "_HANDLER": handler,
                "LAMBDA_TASK_ROOT": str(task_root),
                "PYTHONDONTWRITEBYTECODE": "1",  # /opt and /var/task are read-only on Lambda
                "AWS_LAMBDA_FUNCTION_NAME": FUNCTION_NAME,
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
                "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{FUNCTION_NAME}",
                "AWS_LAMBDA_LOG_STREAM_NAME": "2026/11/28/[$LATEST]0123456789abcdef",
                "AWS_REGION": REGION,
                "AWS_DEFAULT_REGION": REGION,
                # awslambdaric polls `next` from a thread on 3.12+ runtimes, so SIGTERM reaches Python.
                "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
                # Lambda hands the execution role's credentials over in the environment, so boto3
                # never asks the instance metadata service (which would make a network attempt).
                "AWS_ACCESS_KEY_ID": "ASIAEXAMPLEEXAMPLE00",
                "AWS_SECRET_ACCESS_KEY": "example/secret/access/key/for/tests00000",
                "AWS_SESSION_TOKEN": "example-session-token",
            }
        )
        base.update(env or {})
        self.env = base
        self.command = [python, "-c", BOOTSTRAP]
        if wrapper is not None:
            self.command = [str(wrapper), *self.command]
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> FunctionProcess:
        if self.process is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()

    def start(self) -> None:
        """Start the process (its init runs until its first ``next``)."""
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                self.command,
                env=self.env,
                cwd=self.env["LAMBDA_TASK_ROOT"],
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def terminate(self, timeout_s: float = 10.0) -> int:
        """Send SIGTERM (Lambda's shutdown) and wait for the exit status."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout_s)

    def kill(self) -> None:
        """SIGKILL, as Lambda does after a timeout or when the shutdown window ends."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def output(self) -> str:
        """Everything the process wrote so far."""
        return self.log_path.read_text(errors="replace")
