"""What the export-accounting tests share: a scripted gRPC collector, the resilience wrapper, counters."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from nexs_serverless import stats
from nexs_serverless.exporters.resilient import Options, ResilientExporter

from .grpc_collector import serve

__all__ = ["ScriptedCollector", "export_counters", "scripted_collector", "wrap_resilient"]


class ScriptedCollector(trace_service_pb2_grpc.TraceServiceServicer):
    """A stock grpcio TraceService: keeps the span names it accepts; `script` answers the next calls."""

    def __init__(self) -> None:
        self.endpoint = ""
        self.names: list[str] = []
        self.calls = 0
        self.script: list[grpc.StatusCode | None] = []
        self.lock = threading.Lock()

    def Export(self, request: Any, context: grpc.ServicerContext) -> Any:
        with self.lock:
            self.calls += 1
            code = self.script.pop(0) if self.script else None
        if code is not None:
            context.abort(code, "failed on purpose")
        with self.lock:
            self.names.extend(
                span.name for rs in request.resource_spans for ss in rs.scope_spans for span in ss.spans
            )
        return trace_service_pb2.ExportTraceServiceResponse()


@contextmanager
def scripted_collector() -> Iterator[ScriptedCollector]:
    """A `ScriptedCollector` served on 127.0.0.1 for the block."""
    servicer = ScriptedCollector()
    with serve(servicer, max_workers=2) as endpoint:
        servicer.endpoint = endpoint
        yield servicer


def wrap_resilient(
    inner: object, *, max_retries: int = 2, sleep: Callable[[float], None] = lambda _: None
) -> ResilientExporter:
    """`inner` behind retries without backoff (and the carry-over); waits go to `sleep`, not the clock."""
    options = Options(max_retries=max_retries, backoff_s=0.0, timeout_s=30.0)
    return ResilientExporter(inner, options=options, sleep=sleep)


def export_counters() -> dict[str, int]:
    """The export and drop counters that are not 0."""
    prefixes = ("export_errors_", "export_retries", "export_spans_", "spans_dropped_")
    return {key: value for key, value in stats().items() if key.startswith(prefixes) and value}
