"""A reverse proxy in front of a real local server that answers the first requests with injected faults.

`FaultProxy(upstream, *faults)` binds 127.0.0.1 on a free port. The first
``len(faults)`` requests get those canned `Reply`s and never reach the
upstream; every later request is forwarded to it unchanged (path, headers,
body) and its answer relayed. Each exchange is kept (the request, the status
answered, whether it was forwarded), so a test can inject a failure and still
read what the real server (moto) stored from the requests that got through.
"""

from __future__ import annotations

import http.client
import http.server
import threading
from urllib.parse import urlsplit

from .canned_http import Reply, Request

__all__ = ["Exchange", "FaultProxy"]

_HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length"})
_NOT_RELAYED = _HOP_BY_HOP | {"server", "date"}  # the proxy's own response sets these


class Exchange:
    """One request the proxy received, the status it answered with, and whether the upstream saw it."""

    def __init__(self, request: Request, status: int, forwarded: bool) -> None:
        self.request = request
        self.status = status
        self.forwarded = forwarded


class FaultProxy:
    """Answers the first requests with `faults`, then forwards everything to `upstream`."""

    def __init__(self, upstream: str, *faults: Reply, timeout_s: float = 30.0) -> None:
        parts = urlsplit(upstream)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._timeout_s = timeout_s
        self.faults = list(faults)
        self.exchanges: list[Exchange] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                headers = {k.lower(): v for k, v in self.headers.items()}
                request = Request("POST", self.path, headers, self.rfile.read(length))
                reply, forwarded = proxy._answer(request)
                with proxy._lock:  # kept before answering: the client may look as soon as it is answered
                    proxy.exchanges.append(Exchange(request, reply.status, forwarded))
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

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    def _answer(self, request: Request) -> tuple[Reply, bool]:
        with self._lock:
            fault = self.faults.pop(0) if self.faults else None
        if fault is not None:
            return fault, False
        return self._forward(request), True

    def _forward(self, request: Request) -> Reply:
        connection = http.client.HTTPConnection(*self._upstream, timeout=self._timeout_s)
        try:
            headers = {k: v for k, v in request.headers.items() if k not in _HOP_BY_HOP}
            connection.request(request.method, request.path, body=request.body, headers=headers)
            response = connection.getresponse()
            body = response.read()
            kept = {k: v for k, v in response.getheaders() if k.lower() not in _NOT_RELAYED}
            return Reply(response.status, body, kept)
        finally:
            connection.close()

    def close(self) -> None:
        """Stop serving."""
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
