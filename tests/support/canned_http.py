"""Local HTTP servers that answer with what a test sets, or never answer at all.

`CannedServer` answers every request with the queued `Reply` (the last one
repeats) and keeps the requests (path, headers, body, decoded when gzip);
`SilentServer` accepts connections and never reads or answers, the "slow
back end" that makes a client time out. Both bind 127.0.0.1 only.
"""

from __future__ import annotations

import gzip
import http.server
import socket
import threading
from typing import TypeVar

__all__ = ["CannedServer", "LocalServer", "Reply", "Request", "SilentServer", "closed_port"]


class Reply:
    """An HTTP answer: status, headers, body."""

    def __init__(self, status: int = 200, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.body = body
        self.headers = headers or {}


class Request:
    """A request the server received (body un-gzipped when it was gzip)."""

    def __init__(self, method: str, path: str, headers: dict[str, str], body: bytes) -> None:
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body


_Server = TypeVar("_Server", bound="LocalServer")


class LocalServer:
    """A threaded HTTP server on a free port of 127.0.0.1 that hands each POST to `answer`.

    The plumbing `CannedServer`, `fault_proxy.FaultProxy` and `azure_ingestion.FakeIngestion` share.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                headers = {k.lower(): v for k, v in self.headers.items()}
                reply = server.answer(Request("POST", self.path, headers, self.rfile.read(length)))
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            def log_message(self, format: str, *args: object) -> None:
                return

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port: int = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def answer(self, request: Request) -> Reply:
        """The reply to `request` (called on the server's threads)."""
        raise NotImplementedError

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        """Stop serving."""
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def __enter__(self: _Server) -> _Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class CannedServer(LocalServer):
    """Answers requests with queued replies on a random port of 127.0.0.1."""

    def __init__(self, *replies: Reply) -> None:
        self.replies = list(replies) or [Reply()]
        self.requests: list[Request] = []
        super().__init__()

    def answer(self, request: Request) -> Reply:
        """Keep the request (its body un-gzipped) and pop the next reply (the last one repeats)."""
        body = request.body
        if request.headers.get("content-encoding") == "gzip" or body[:2] == b"\x1f\x8b":
            request = Request(request.method, request.path, request.headers, gzip.decompress(body))
        with self._lock:
            self.requests.append(request)
            return self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]


class SilentServer:
    """Listens on 127.0.0.1 and never accepts, reads or answers: clients connect, then time out."""

    def __init__(self) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(16)
        self.port: int = self._socket.getsockname()[1]

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        """Stop listening."""
        self._socket.close()

    def __enter__(self) -> SilentServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on (connections are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
