"""A UDP socket on 127.0.0.1 standing in for the X-Ray daemon, decoders for what it receives, and
the tracer set up as in a Lambda function sending to it.

Loopback UDP delivers during ``sendto``: once an export returns, every
datagram it sent is already in this socket's buffer (sized large enough for
the tests' batches), so `receive` reads them without waiting or threads.
"""

from __future__ import annotations

import base64
import json
import socket
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from nexs_serverless.testing import reset

if TYPE_CHECKING:
    import pytest

__all__ = ["HEADER", "LAMBDA_HEADER", "Datagram", "FakeXRayDaemon", "nested", "trace_as_lambda", "walk"]

HEADER = {"format": "json", "version": 1}
LAMBDA_HEADER = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=0102030405060708;Sampled=1"


class Datagram:
    """One datagram split into its header line and its body."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        header, _, self.body = raw.partition(b"\n")
        self.header = json.loads(header)

    def document(self) -> dict[str, object]:
        """The body as a segment document."""
        doc: dict[str, object] = json.loads(self.body)
        return doc

    def otlp(self) -> tuple[str, ExportTraceServiceRequest]:
        """The ``T1S``/``T1U`` prefix and the decoded OTLP request."""
        prefix = self.body[:3].decode()
        request = ExportTraceServiceRequest()
        request.ParseFromString(base64.b64decode(self.body[3:], validate=True))
        return prefix, request


def walk(
    doc: dict[str, object], parent: dict[str, object] | None = None
) -> Iterator[tuple[dict[str, object], dict[str, object] | None]]:
    """Every document of `doc`'s tree (depth first, through ``subsegments``) with the one enclosing it."""
    yield doc, parent
    for child in nested(doc):
        yield from walk(child, doc)


def nested(doc: dict[str, object]) -> list[dict[str, Any]]:
    """The documents embedded in `doc` (its ``subsegments``), [] when none."""
    children: list[dict[str, Any]] = doc.get("subsegments", [])  # type: ignore[assignment]
    return children


class FakeXRayDaemon:
    """Receives datagrams on a random port of 127.0.0.1."""

    def __init__(self) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 1024 * 1024)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.setblocking(False)
        self.port: int = self._socket.getsockname()[1]
        self.buffer_bytes: int = self._socket.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)

    @property
    def address(self) -> str:
        """``127.0.0.1:<port>``, an ``AWS_XRAY_DAEMON_ADDRESS`` value."""
        return f"127.0.0.1:{self.port}"

    def receive(self) -> list[Datagram]:
        """Every datagram waiting in the buffer, in arrival order."""
        out: list[Datagram] = []
        while True:
            try:
                raw = self._socket.recv(70_000)
            except BlockingIOError:
                return out
            out.append(Datagram(raw))

    def close(self) -> None:
        """Close the socket."""
        self._socket.close()

    def __enter__(self) -> FakeXRayDaemon:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def trace_as_lambda(daemon: FakeXRayDaemon, monkeypatch: pytest.MonkeyPatch) -> None:
    """The tracer as in the ``orders`` function invoked under `LAMBDA_HEADER`, exporting to `daemon`.

    ``xray-lambda`` propagation: each invocation's root is a subsegment of the
    function segment Lambda made (``Parent=0102030405060708``).
    """
    monkeypatch.setenv("_X_AMZN_TRACE_ID", LAMBDA_HEADER)
    reset(
        environ={
            "OTEL_TRACES_EXPORTER": "xray",
            "OTEL_PROPAGATORS": "xray-lambda",
            "AWS_LAMBDA_FUNCTION_NAME": "orders",
            "AWS_XRAY_DAEMON_ADDRESS": daemon.address,
        }
    )
