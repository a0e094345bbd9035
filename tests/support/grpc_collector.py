"""An OTLP/gRPC collector on 127.0.0.1: a stock grpcio TraceService built from opentelemetry-proto.

`Collector` keeps every request it accepts and every call's metadata; each
entry of its `script` answers one call instead of plain success:

- a ``grpc.StatusCode``: that code, message "failed on purpose";
- a ``google.rpc.status_pb2.Status``: that status with its details
  (``RetryInfo``...), as ``grpc-status-details-bin``;
- a `Partial`: accepted, with a partial success naming rejected spans;
- `HANG`: held until `release` is set (at most 5 s), then CANCELLED.

`serve` runs any TraceService servicer (the accounting tests' own
`export_checks.ScriptedCollector` too) on a free plaintext port.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import grpc
from google.rpc import status_pb2
from grpc_status import rpc_status
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

__all__ = ["HANG", "Collector", "Partial", "serve"]

HANG = "hang"


@dataclass(frozen=True)
class Partial:
    """Accept the call, answering that `rejected` of its spans were refused, for `message`."""

    rejected: int
    message: str


class Collector(trace_service_pb2_grpc.TraceServiceServicer):
    """Keeps each request it accepts and each call's metadata; `script` answers the next calls."""

    def __init__(self) -> None:
        self.requests: list[trace_service_pb2.ExportTraceServiceRequest] = []
        self.metadata: list[dict[str, str]] = []
        self.calls = 0
        self.script: list[Any] = []
        self.release = threading.Event()
        self.lock = threading.Lock()

    def Export(self, request: Any, context: grpc.ServicerContext) -> Any:
        with self.lock:
            self.calls += 1
            self.metadata.append({k: v for k, v in context.invocation_metadata() if isinstance(v, str)})
            action = self.script.pop(0) if self.script else None
        if action == HANG:
            self.release.wait(5)
            context.abort(grpc.StatusCode.CANCELLED, "released")
        if isinstance(action, status_pb2.Status):
            context.abort_with_status(rpc_status.to_status(action))
        if isinstance(action, grpc.StatusCode):
            context.abort(action, "failed on purpose")
        with self.lock:
            self.requests.append(request)
        if isinstance(action, Partial):
            return trace_service_pb2.ExportTraceServiceResponse(
                partial_success=trace_service_pb2.ExportTracePartialSuccess(
                    rejected_spans=action.rejected, error_message=action.message
                )
            )
        return trace_service_pb2.ExportTraceServiceResponse()

    def names(self) -> list[str]:
        """The names of the spans accepted, in arrival order."""
        with self.lock:
            return [
                s.name
                for r in self.requests
                for rs in r.resource_spans
                for ss in rs.scope_spans
                for s in ss.spans
            ]


@contextmanager
def serve(servicer: trace_service_pb2_grpc.TraceServiceServicer, *, max_workers: int = 4) -> Iterator[str]:
    """`servicer` on a free plaintext port of 127.0.0.1 for the block; yields its ``http://`` endpoint.

    The server keeps grpc's default options, so its receive limit is the
    4 MiB a stock collector has.
    """
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=max_workers))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop(None)
