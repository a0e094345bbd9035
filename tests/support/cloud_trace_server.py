"""A local gRPC server answering ``google.devtools.cloudtrace.v2.TraceService/BatchWriteSpans``.

Requests are decoded with google-cloud-trace's own types and kept. The next
queued fault (a gRPC status code, or "hang" until the test ends) answers one
call instead of success. Binds 127.0.0.1 only.
"""

from __future__ import annotations

import threading
from concurrent import futures

import grpc
from google.cloud.trace_v2 import BatchWriteSpansRequest, Span

__all__ = ["FakeCloudTrace", "attributes_of"]

HANG = "hang"


class FakeCloudTrace:
    """Keeps every BatchWriteSpansRequest it receives."""

    def __init__(self) -> None:
        self.requests: list[BatchWriteSpansRequest] = []
        self.metadata: list[dict[str, str]] = []
        self.faults: list[tuple[grpc.StatusCode, str] | str] = []
        self._release = threading.Event()
        self._lock = threading.Lock()
        handler = grpc.method_handlers_generic_handler(
            "google.devtools.cloudtrace.v2.TraceService",
            {
                "BatchWriteSpans": grpc.unary_unary_rpc_method_handler(
                    self._batch_write_spans,
                    request_deserializer=BatchWriteSpansRequest.deserialize,
                    response_serializer=lambda _: b"",  # google.protobuf.Empty
                )
            },
        )
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        self._server.add_generic_rpc_handlers((handler,))
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        self._server.start()

    @property
    def endpoint(self) -> str:
        """``127.0.0.1:<port>``."""
        return f"127.0.0.1:{self.port}"

    def _batch_write_spans(self, request: BatchWriteSpansRequest, context: grpc.ServicerContext) -> None:
        with self._lock:
            fault = self.faults.pop(0) if self.faults else None
            if fault is None:
                self.requests.append(request)
                self.metadata.append(dict(context.invocation_metadata()))  # type: ignore[arg-type]
        if fault == HANG:
            self._release.wait(30)
            context.abort(grpc.StatusCode.CANCELLED, "released")
        elif fault is not None:
            code, message = fault  # type: ignore[misc]
            context.abort(code, message)

    def clear(self) -> None:
        """Forget what was received and queued: a server shared by a module starts each test empty."""
        self.requests.clear()
        self.metadata.clear()
        self.faults.clear()

    def spans(self) -> list[object]:
        """Every span received, in order."""
        return [span for request in self.requests for span in request.spans]

    def close(self) -> None:
        """Release hanging calls and stop."""
        self._release.set()
        self._server.stop(grace=None).wait()

    def __enter__(self) -> FakeCloudTrace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def attributes_of(span: Span) -> dict[str, object]:
    """A received span's attribute map as plain values (truncatable strings as their text)."""
    out: dict[str, object] = {}
    for key, value in span.attributes.attribute_map.items():
        kind = value._pb.WhichOneof("value")
        out[key] = value.string_value.value if kind == "string_value" else getattr(value, kind)
    return out
