"""A trace back end that misbehaves on cue: an OTLP/HTTP endpoint on 127.0.0.1.

``behave("503", "ok")`` answers the next requests in that order, then keeps
answering like the last one. Behaviours: ``ok`` (accept), ``503`` (server
error), ``429`` (throttled, ``Retry-After: 1``), ``hang`` (read the request,
never answer). Accepted spans are decoded with ``opentelemetry-proto`` and
kept by span id, so a span delivered twice would show.
"""

from __future__ import annotations

import http.server
import threading
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest


class FlakyBackend:
    """The endpoint; `url` is what ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` should say."""

    def __init__(self) -> None:
        self.requests = 0
        self.span_ids: list[bytes] = []
        self._script: list[str] = ["ok"]
        self._lock = threading.Lock()
        self._closing = threading.Event()
        backend = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                behaviour = backend._next()
                if behaviour == "hang":
                    backend._closing.wait()
                    self.close_connection = True
                    return
                if behaviour == "ok":
                    backend._accept(body)
                status = {"ok": 200, "503": 503, "429": 429}[behaviour]
                self.send_response(status)
                if behaviour == "429":
                    self.send_header("Retry-After", "1")
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: run.py prints what matters."""

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1/traces"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def behave(self, *script: str) -> None:
        """Answer the next requests with `script`, then keep answering like its last entry."""
        with self._lock:
            self._script = list(script)

    def close(self) -> None:
        """Release hanging requests and stop serving."""
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()

    def _next(self) -> str:
        with self._lock:
            self.requests += 1
            return self._script.pop(0) if len(self._script) > 1 else self._script[0]

    def _accept(self, body: bytes) -> None:
        request = ExportTraceServiceRequest.FromString(body)
        with self._lock:
            for resource_spans in request.resource_spans:
                for scope_spans in resource_spans.scope_spans:
                    self.span_ids.extend(span.span_id for span in scope_spans.spans)
