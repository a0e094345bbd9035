"""A local Application Insights ingestion endpoint (``POST /v2.1/track``) that decodes the envelopes.

Bodies are JSON arrays or JSON lines, gzip or not (the Azure SDK sends a
JSON array; other senders use gzip JSON lines). Each call is answered by the
next queued `Answer` (a status with optional headers, or per-item errors for
a 206), else 200 with every item accepted. Binds 127.0.0.1 only.
"""

from __future__ import annotations

import gzip
import json

from .canned_http import LocalServer, Reply, Request

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


class FakeIngestion(LocalServer):
    """Keeps every envelope it accepted, and every call's path and headers."""

    def __init__(self) -> None:
        self.envelopes: list[dict[str, object]] = []
        self.calls: list[tuple[str, dict[str, str]]] = []
        self.answers: list[Answer] = []
        super().__init__()

    def clear(self) -> None:
        """Forget what was received and queued: a server shared by a module starts each test empty."""
        with self._lock:
            self.envelopes.clear()
            self.calls.clear()
            self.answers.clear()

    def answer(self, request: Request) -> Reply:
        """Keep what the next queued `Answer` accepts; reply with ingestion's summary of the items."""
        envelopes = decode_envelopes(request.body)
        with self._lock:
            self.calls.append((request.path, request.headers))
            answer = self.answers.pop(0) if self.answers else Answer()
            refused = {index for index, _ in answer.item_errors}
            if answer.status in (200, 206):
                self.envelopes.extend(e for i, e in enumerate(envelopes) if i not in refused)
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
        return Reply(answer.status, reply, {"Content-Type": "application/json", **answer.headers})

    @property
    def connection_string(self) -> str:
        """A connection string whose IngestionEndpoint is this server."""
        return f"InstrumentationKey={IKEY};IngestionEndpoint=http://127.0.0.1:{self.port}/"

    def by_type(self, base_type: str) -> list[dict[str, object]]:
        """Accepted envelopes whose ``data.baseType`` is `base_type` (RequestData, ...)."""
        return [e for e in self.envelopes if e.get("data", {}).get("baseType") == base_type]  # type: ignore[union-attr]
