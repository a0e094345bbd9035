"""Export speed: our OTLP/HTTP exporter vs the OpenTelemetry SDK's, and the open-breaker case.

    .venv/bin/python scripts/bench_export.py [--json out.json] [--repeats 200]

Both exporters post the same spans (3 attributes each) to the same local
receiver, which runs in its own process (so it does not compete for our
GIL) and answers 200 with an empty body over a kept-alive connection. Each
figure is the median of repeated warm exports; the SDK gets its native
`ReadableSpan`s prepared in advance, so only its export is timed. The last
rows time one invocation's export (10 spans) against a dead endpoint: ours
with the breaker open, the SDK's exporter with its own defaults.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def serve(port_file: str) -> None:
    """A minimal keep-alive HTTP/1.1 server: read each request, answer 200 with no body."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    Path(port_file).write_text(str(listener.getsockname()[1]))
    reply = b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n"

    def handle(conn: socket.socket) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buffer = b""
        with conn:
            while True:
                while b"\r\n\r\n" not in buffer:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buffer += chunk
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                while len(buffer) < length:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buffer += chunk
                buffer = buffer[length:]
                conn.sendall(reply)

    while True:
        conn, _ = listener.accept()
        threading.Thread(target=handle, args=(conn,), daemon=True).start()


def median_ms(fn: object, repeats: int, warmup: int = 10) -> float:
    call = fn  # type: ignore[assignment]
    for _ in range(warmup):
        call()  # type: ignore[operator]
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()  # type: ignore[operator]
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000.0


def make_spans(count: int) -> list[object]:
    from nexs_serverless import tracer
    from nexs_serverless.runtime import runtime

    for i in range(count):
        with tracer.span("GET /orders/{id}", attributes={"http.method": "GET", "order.id": f"o-{i}", "n": i}):
            pass
    spans: list[object] = list(runtime.buffer.take_ended())
    return spans


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--sdk-dead-repeats", type=int, default=3)
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return

    logging.disable(logging.CRITICAL)  # the SDK logs every failed export at WARNING
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as sdk_encode
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    from nexs_serverless import configure
    from nexs_serverless.context import exporting
    from nexs_serverless.exporters.otel_sdk import to_readable_span
    from nexs_serverless.exporters.otlp_encode import encode_spans
    from nexs_serverless.exporters.otlp_http import OTLPHttpExporter
    from nexs_serverless.exporters.resilient import Options, ResilientExporter

    configure(exporters=[], pool_size=0, max_buffered_spans=100_000, environ={})
    port_file = Path(f"/tmp/nexs-bench-port-{os.getpid()}")
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port_file)])
    try:
        while not port_file.exists() or not port_file.read_text():
            time.sleep(0.01)
        url = f"http://127.0.0.1:{port_file.read_text()}/v1/traces"
        ours = ResilientExporter(OTLPHttpExporter(endpoint=url), options=Options())
        sdk = OTLPSpanExporter(endpoint=url)
        rows = []
        for count in (10, 100, 1000):
            spans = make_spans(count)
            readable = [to_readable_span(span) for span in spans]
            repeats = args.repeats if count < 1000 else max(20, args.repeats // 5)

            def export_ours(spans: list[object] = spans) -> None:
                with exporting(time.monotonic() + 5.0):
                    assert ours.export(spans).name == "SUCCESS"  # type: ignore[arg-type]

            def export_sdk(readable: list[object] = readable) -> None:
                assert sdk.export(readable).name == "SUCCESS"  # type: ignore[arg-type]

            ours_ms = median_ms(export_ours, repeats)
            sdk_ms = median_ms(export_sdk, repeats)
            ours_encode = median_ms(lambda spans=spans: encode_spans(spans), repeats)  # type: ignore[misc]
            sdk_encode_ms = median_ms(
                lambda readable=readable: sdk_encode(readable).SerializeToString(),  # type: ignore[misc]
                repeats,
            )
            rows.append(
                {
                    "case": f"flush {count} spans (warm connection)",
                    "spans": count,
                    "ours_ms": ours_ms,
                    "sdk_ms": sdk_ms,
                    "ratio": sdk_ms / ours_ms,
                    "ours_encode_ms": ours_encode,
                    "sdk_encode_ms": sdk_encode_ms,
                }
            )
        ours.shutdown()
        sdk.shutdown()

        dead = f"http://127.0.0.1:{free_port()}/v1/traces"
        spans = make_spans(10)
        readable = [to_readable_span(span) for span in spans]
        broken = ResilientExporter(
            OTLPHttpExporter(endpoint=dead),
            options=Options(failure_threshold=1, cooldown_s=3600, max_retries=0),
        )
        with exporting(time.monotonic() + 1.0):
            broken.export(spans)  # opens the breaker
        assert broken.breaker.state == "open"

        def export_open(spans: list[object] = spans) -> None:
            with exporting(time.monotonic() + 1.0):
                broken.export(spans)  # type: ignore[arg-type]

        open_ms = median_ms(export_open, args.repeats)
        sdk_dead = OTLPSpanExporter(endpoint=dead)
        sdk_dead_ms = median_ms(lambda: sdk_dead.export(readable), args.sdk_dead_repeats, warmup=0)
        rows.append(
            {
                "case": "dead endpoint, 10 spans/invocation",
                "spans": 10,
                "ours_ms": open_ms,
                "sdk_ms": sdk_dead_ms,
                "ratio": sdk_dead_ms / open_ms,
                "ours_encode_ms": None,
                "sdk_encode_ms": None,
            }
        )
    finally:
        server.kill()
        server.wait()
        port_file.unlink(missing_ok=True)

    print(f"{'case':40} {'ours ms':>9} {'SDK ms':>9} {'SDK/ours':>9} {'our encode':>11} {'SDK encode':>11}")
    for row in rows:
        encode = (
            f"{row['ours_encode_ms']:11.3f} {row['sdk_encode_ms']:11.3f}"
            if row["ours_encode_ms"] is not None
            else ""
        )
        print(f"{row['case']:40} {row['ours_ms']:9.3f} {row['sdk_ms']:9.3f} {row['ratio']:8.1f}x {encode}")
    print("(medians; ours = ResilientExporter(OTLPHttpExporter), breaker open on the dead endpoint)")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
