"""A local Application Insights ingestion endpoint (``POST /v2.1/track``) that decodes the envelopes.

Bodies are JSON arrays or JSON lines, gzip or not (the Azure SDK sends a
JSON array; other senders use gzip JSON lines). Each call is answered by the
next queued `Answer` (a status with optional headers, or per-item errors for
a 206), else 200 with every item accepted. Binds 127.0.0.1 only.
"""

from __future__ import annotations

import gzip
import http.server
import json
import threading

__all__ = ["Answer", "FakeIngestion", "decode_envelopes"]

IKEY = "00000000-0000-0000-0000-000000000001"


class Answer:
    """How to answer one call: a status and headers, or item errors (index, status) for a 206."""

    def __init__(
        self,
        status: int = 200,
        headers: dict[str, str] | None = None,
        item_errors: list[tuple[int, int]] | None = None,
    ) -> None:
        self.status = status
        self.headers = headers or {}
        self.item_errors = item_errors or []


def decode_envelopes(body: bytes) -> list[dict[str, object]]:
    """Envelopes from a JSON array or JSON lines body, gzip or not."""
    if body[:2] == b"\x1f\x8b":
        body = gzip.decompress(body)
    text = body.decode("utf-8").strip()
    if text.startswith("["):
        envelopes: list[dict[str, object]] = json.loads(text)
        return envelopes
    return [json.loads(line) for line in text.splitlines() if line.strip()]


class FakeIngestion:
    """Keeps every envelope it accepted, and every call's path and headers."""

    def __init__(self) -> None:
        self.envelopes: list[dict[str, object]] = []
        self.calls: list[tuple[str, dict[str, str]]] = []
        self.answers: list[Answer] = []
        self._lock = threading.Lock()
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                envelopes = decode_envelopes(body)
                with fake._lock:
                    fake.calls.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                    answer = fake.answers.pop(0) if fake.answers else Answer()
                    refused = {index for index, _ in answer.item_errors}
                    if answer.status in (200, 206):
                        fake.envelopes.extend(e for i, e in enumerate(envelopes) if i not in refused)
                reply = json.dumps(
                    {
                        "itemsReceived": len(envelopes),
                        "itemsAccepted": len(envelopes) - len(refused),
                        "errors": [
                            {"index": index, "statusCode": status, "message": "refused by the test"}
                            for index, status in answer.item_errors
                        ],
                    }
                ).encode()
                self.send_response(answer.status)
                self.send_header("Content-Type", "application/json")
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: object) -> None:
                return

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port: int = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    @property
    def connection_string(self) -> str:
        """A connection string whose IngestionEndpoint is this server."""
        return f"InstrumentationKey={IKEY};IngestionEndpoint=http://127.0.0.1:{self.port}/"

    def by_type(self, base_type: str) -> list[dict[str, object]]:
        """Accepted envelopes whose ``data.baseType`` is `base_type` (RequestData, ...)."""
        return [e for e in self.envelopes if e.get("data", {}).get("baseType") == base_type]  # type: ignore[union-attr]

    def close(self) -> None:
        """Stop serving."""
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def __enter__(self) -> FakeIngestion:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
