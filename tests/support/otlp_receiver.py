"""A local OTLP/HTTP receiver: decodes with `opentelemetry-proto`, keeps requests, misbehaves on demand.

    with OTLPReceiver() as receiver:
        exporter = OTLPHttpExporter(endpoint=receiver.url)
        receiver.misbehave(Fault.status_code(503, retry_after="1"), Fault.hang())
        ...
        assert [span.name for span in receiver.spans()] == [...]

Each request is answered by the next queued `Fault` (or by `receiver.mode`,
a fault applied to every request while set), else with 200 and an empty
``ExportTraceServiceResponse``. Every request is kept as a `Received` with
its headers, raw body and decoded message; `spans()` returns the spans of
the requests the receiver *accepted* (answered 2xx), so "arrived exactly
once" is a plain comparison. Binds 127.0.0.1 only; ``tls=(cert, key)``
serves https.
"""

from __future__ import annotations

import gzip
import http.server
import socket
import ssl
import struct
import threading
import time
from collections.abc import Iterator
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

__all__ = ["Fault", "OTLPReceiver", "Received", "free_port"]


class Fault:
    """What the receiver does with one request instead of accepting it."""

    def __init__(
        self,
        kind: str,
        *,
        status: int = 200,
        headers: dict[str, str] | None = None,
        body: bytes = b"",
        delay_s: float = 0.0,
    ) -> None:
        self.kind = kind
        self.status = status
        self.headers = headers or {}
        self.body = body
        self.delay_s = delay_s

    def __repr__(self) -> str:
        return f"Fault({self.kind!r}, status={self.status})"

    @classmethod
    def accept(cls) -> Fault:
        """Accept as if nothing were queued: keeps a request's place among the faults that follow."""
        return cls("accept")

    @classmethod
    def status_code(cls, status: int, *, retry_after: str | None = None, body: bytes = b"") -> Fault:
        """Answer with `status` (and a ``Retry-After``)."""
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        return cls("status", status=status, headers=headers, body=body)

    @classmethod
    def hang(cls) -> Fault:
        """Read the request and never answer (until the receiver closes)."""
        return cls("hang")

    @classmethod
    def reset_after_status(cls, status: int = 200) -> Fault:
        """Answer `status` with its headers and 3 of 64 body bytes, then reset the connection (TCP RST).

        The request is taken (a 2xx counts as accepted): only the body is lost.
        """
        return cls("reset_after_status", status=status)

    @classmethod
    def reset_before_status(cls) -> Fault:
        """Send part of a status line, then reset the connection (TCP RST): nothing taken, no answer."""
        return cls("reset_before_status")

    @classmethod
    def garbage(cls) -> Fault:
        """Answer with bytes that are not HTTP, then close."""
        return cls("garbage")

    @classmethod
    def garbage_body(cls) -> Fault:
        """Answer 200 with a body that is not an ``ExportTraceServiceResponse``."""
        return cls("status", status=200, body=b"\xff\xff\xff\xff not protobuf")

    @classmethod
    def close(cls) -> Fault:
        """Close the connection without answering."""
        return cls("close")

    @classmethod
    def accept_then_close(cls) -> Fault:
        """Accept, then close the kept-alive connection without saying so (a stale keep-alive)."""
        return cls("accept_then_close")

    @classmethod
    def slow(cls, delay_s: float) -> Fault:
        """Accept, but answer only after `delay_s`."""
        return cls("slow", delay_s=delay_s)

    @classmethod
    def partial(cls, rejected: int, message: str = "rejected") -> Fault:
        """Accept with ``partial_success`` saying `rejected` spans were refused."""
        response = ExportTraceServiceResponse(
            partial_success=ExportTracePartialSuccess(rejected_spans=rejected, error_message=message)
        )
        return cls("partial", body=response.SerializeToString())


class Received:
    """One request as the receiver saw it."""

    def __init__(self, path: str, headers: dict[str, str], body: bytes, fault: Fault | None) -> None:
        self.arrived_at = time.monotonic()  # for ordering checks against other local servers
        self.path = path
        self.headers = headers
        self.body = body
        self.fault = fault
        self.accepted = False
        data = gzip.decompress(body) if headers.get("content-encoding") == "gzip" else body
        self.data = data
        self.request = ExportTraceServiceRequest.FromString(data)

    def spans(self) -> list[Any]:
        """Every span of the request, in order."""
        return [
            span
            for resource_spans in self.request.resource_spans
            for scope_spans in resource_spans.scope_spans
            for span in scope_spans.spans
        ]


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read `receiver.requests`, not stderr."""

    def do_POST(self) -> None:
        receiver = self.server.receiver
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        headers = {name.lower(): value for name, value in self.headers.items()}
        fault = receiver._next_fault()
        received = Received(self.path, headers, body, fault)
        receiver._keep(received)
        kind = fault.kind if fault is not None else "accept"
        if kind == "hang":
            receiver._closing.wait()
            self.close_connection = True
            return
        if kind == "close":
            self.close_connection = True
            return
        if kind == "garbage":
            self.wfile.write(b"\x00\x01 this is not HTTP \xff\r\n\r\n")
            self.wfile.flush()
            self.close_connection = True
            return
        if kind in ("reset_after_status", "reset_before_status"):
            assert fault is not None
            if kind == "reset_after_status":
                received.accepted = 200 <= fault.status < 300
                self.wfile.write(b"HTTP/1.1 %d Cut\r\nContent-Length: 64\r\n\r\nabc" % fault.status)
            else:
                self.wfile.write(b"HTTP/1.1 2")
            self.wfile.flush()
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            return
        if kind == "slow" and fault is not None and receiver._closing.wait(fault.delay_s):
            self.close_connection = True
            return
        status = fault.status if fault is not None and kind == "status" else 200
        reply = fault.body if fault is not None else b""
        if 200 <= status < 300:
            received.accepted = True
        self.send_response(status)
        for name, value in (fault.headers if fault is not None else {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)
        if kind == "accept_then_close":
            self.close_connection = True


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    receiver: OTLPReceiver


class OTLPReceiver:
    """An OTLP/HTTP endpoint on 127.0.0.1 (a free port) served from a background thread.

    Args:
        tls: ``(certificate_file, key_file)`` to serve https.
    """

    def __init__(self, *, tls: tuple[str, str] | None = None) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._closing = threading.Event()
        self.requests: list[Received] = []
        self.mode: Fault | None = None
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.receiver = self
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.port: int = self._server.server_address[1]
        scheme = "https" if tls is not None else "http"
        self.endpoint = f"{scheme}://127.0.0.1:{self.port}"
        self.url = self.endpoint + "/v1/traces"
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.02,), name="otlp-receiver", daemon=True
        )
        self._thread.start()

    def __enter__(self) -> OTLPReceiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def misbehave(self, *faults: Fault) -> None:
        """Answer the next requests with `faults`, in order."""
        with self._lock:
            self._faults.extend(faults)

    def spans(self) -> list[Any]:
        """Spans of every accepted request, in arrival order."""
        with self._lock:
            requests = list(self.requests)
        return [span for request in requests if request.accepted for span in request.spans()]

    def span_names(self) -> list[str]:
        """Names of `spans()`."""
        return [span.name for span in self.spans()]

    def wait_for_requests(self, count: int, timeout_s: float = 5.0) -> bool:
        """Wait until `count` requests have arrived (for fire-and-forget senders)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.requests) >= count:
                    return True
            time.sleep(0.005)
        return False

    def close(self) -> None:
        """Release hanging handlers and stop serving."""
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __iter__(self) -> Iterator[Received]:
        with self._lock:
            return iter(list(self.requests))

    def _next_fault(self) -> Fault | None:
        with self._lock:
            if self._faults:
                return self._faults.pop(0)
            return self.mode

    def _keep(self, received: Received) -> None:
        with self._lock:
            self.requests.append(received)


def free_port() -> int:
    """A TCP port on 127.0.0.1 with nothing listening (connection refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
