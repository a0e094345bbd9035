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
from urllib.parse import urlsplit

from .canned_http import LocalServer, Reply, Request

__all__ = ["Exchange", "FaultProxy"]

_HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length"})
_NOT_RELAYED = _HOP_BY_HOP | {"server", "date"}  # the proxy's own response sets these


class Exchange:
    """One request the proxy received, the status it answered with, and whether the upstream saw it."""

    def __init__(self, request: Request, status: int, forwarded: bool) -> None:
        self.request = request
        self.status = status
        self.forwarded = forwarded


class FaultProxy(LocalServer):
    """Answers the first requests with `faults`, then forwards everything to `upstream`."""

    def __init__(self, upstream: str, *faults: Reply, timeout_s: float = 30.0) -> None:
        parts = urlsplit(upstream)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._timeout_s = timeout_s
        self.faults = list(faults)
        self.exchanges: list[Exchange] = []
        super().__init__()

    def answer(self, request: Request) -> Reply:
        """The next fault, or the upstream's answer; the exchange is kept before it is answered."""
        with self._lock:
            fault = self.faults.pop(0) if self.faults else None
        reply, forwarded = (fault, False) if fault is not None else (self._forward(request), True)
        with self._lock:  # kept before answering: the client may look as soon as it is answered
            self.exchanges.append(Exchange(request, reply.status, forwarded))
        return reply

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
