"""OpenTelemetry in, OpenTelemetry out: ``python examples/opentelemetry/run.py``.

In: ``handler.py`` is instrumented with the OpenTelemetry API and an
OpenTelemetry instrumentation library. Out: besides our console exporter, an
OpenTelemetry SDK exporter (``OTLPSpanExporter`` from
``opentelemetry-exporter-otlp-proto-http``) is plugged into
``configure(exporters=[...])`` as it is, and sends to an OTLP endpoint that
this script runs on 127.0.0.1, which prints what it received.

Starts a price service on 127.0.0.1 too, invokes the handler once with an
API Gateway event carrying a ``traceparent``, and checks that every span,
whoever made it, is in the caller's trace. Exits 1 if not.
"""

from __future__ import annotations

import http.server
import json
import os
import pathlib
import sys
import threading
from typing import Any

sys.path.insert(0, str(pathlib.Path(__file__).parent))

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from nexs_serverless import configure
from nexs_serverless.exporters import ConsoleExporter
from nexs_serverless.testing import LambdaContext, events

CALLER_TRACE = "5c1f5e0ab3a34f7e8d6b2c1a9f0e7d64"


class LocalServer:
    """A ThreadingHTTPServer on 127.0.0.1 serving `handler` from a daemon thread."""

    def __init__(self, handler: type[http.server.BaseHTTPRequestHandler]) -> None:
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()


class Quiet(http.server.BaseHTTPRequestHandler):
    """No access log lines."""

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def reply(self, status: int, body: bytes, content_type: str) -> None:
        """Send a complete response."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


seen_traceparents: list[str] = []
received: list[tuple[str, str, str, str]] = []  # (trace id, span id, span name, scope attribute)


class PriceService(Quiet):
    """``GET /prices/<sku>``: a fixed price; remembers the ``traceparent`` it was sent."""

    def do_GET(self) -> None:
        seen_traceparents.append(self.headers.get("traceparent", ""))
        self.reply(200, json.dumps({"price": 40.0}).encode(), "application/json")


class OTLPEndpoint(Quiet):
    """``POST /v1/traces``: decodes the OTLP request with ``opentelemetry-proto`` and keeps the spans."""

    def do_POST(self) -> None:
        request = ExportTraceServiceRequest.FromString(self.rfile.read(int(self.headers["Content-Length"])))
        for resource_spans in request.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    scope = next(
                        (a.value.string_value for a in span.attributes if a.key == "otel.scope.name"), ""
                    )
                    received.append((span.trace_id.hex(), span.span_id.hex(), span.name, scope))
        self.reply(200, b"", "application/x-protobuf")


def main() -> int:
    """Invoke once; 0 when every span is in the caller's trace."""
    prices, collector = LocalServer(PriceService), LocalServer(OTLPEndpoint)
    try:
        os.environ["PRICE_SERVICE_URL"] = prices.url
        from handler import handler

        sdk_exporter = OTLPSpanExporter(endpoint=collector.url + "/v1/traces", timeout=2)
        configure(exporters=[ConsoleExporter(), sdk_exporter])  # ours and an SDK exporter, side by side

        event = events.api_gateway_v1(
            method="GET",
            path="/price/book-42",
            resource="/price/{sku}",
            path_parameters={"sku": "book-42"},
            headers={"traceparent": f"00-{CALLER_TRACE}-b9c7c989f97918e1-01", "X-Amzn-Trace-Id": None},
        )
        result = handler(event, LambdaContext(function_name="pricing"))
        print("handler returned:", json.dumps(result))
    finally:
        prices.close()
        collector.close()
    return check()


def check() -> int:
    """Print what the price service and the SDK exporter's endpoint saw; 1 on a broken join."""
    print("\nprice service received traceparent:", ", ".join(seen_traceparents))
    print("OTLP endpoint received (via the OpenTelemetry SDK exporter):")
    for trace_id, _, name, scope in received:
        print(f"  trace {trace_id}  {name:<16} {('scope ' + scope) if scope else '(nexs_serverless)'}")
    problems = []
    if {trace_id for trace_id, _, _, _ in received} != {CALLER_TRACE}:
        problems.append("the SDK exporter received spans outside the caller's trace")
    if sorted(scope for _, _, _, scope in received if scope) != [
        "opentelemetry.instrumentation.urllib",
        "shop.pricing",
    ]:
        problems.append("the OpenTelemetry spans did not all arrive")
    client_span = next((span_id for _, span_id, name, _ in received if name == "GET"), "")
    expected = [f"00-{CALLER_TRACE}-{client_span}-01"]
    if seen_traceparents != expected:
        problems.append("the price service did not get the client span's traceparent")
    for problem in problems:
        print("FAILED:", problem)
    if not problems:
        print("OK: OpenTelemetry API, OpenTelemetry instrumentation and our spans share one trace")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
