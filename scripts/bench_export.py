"""Export speed: our OTLP/HTTP exporter vs the OpenTelemetry SDK's, and the open-breaker case.

    .venv/bin/python scripts/bench_export.py [--json out.json] [--repeats 200]

Both exporters post the same spans (3 attributes each) to the same local
receiver, which runs in its own process (so it does not compete for our
GIL) and answers 200 with an empty body over a kept-alive connection. Each
figure is the median of repeated warm exports. Every export (warm-up and
timed, on both sides) gets a batch of its own, with per-invocation values
(a distinct `order.id`) as real invocations carry: our encoder caches
encoded string attributes, and re-exporting the same spans would hit that
cache every time (the SDK has no such cache). The batches, and the SDK's
native `ReadableSpan` copies of them, are built in advance, outside the
timing; the encode-only columns get a fresh set of batches of their own.
Ours and the SDK's take turns, batch by batch (`medians_interleaved`), so
that both see the same machine states.
The last rows time one invocation's export (10 spans) against a dead
endpoint: ours with the breaker open, the SDK's exporter with its own
defaults.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
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


WARMUP = 10


def median_ms(
    fn: Callable[[list[object]], object], batches: Sequence[list[object]], warmup: int = WARMUP
) -> float:
    """Median ms of `fn(batch)`, one call per batch: the first `warmup` batches warm up, the rest are timed.

    The batches are built in advance; they are frozen out of the garbage
    collector's way meanwhile, so that holding them does not slow the timed calls.
    """
    if len(batches) <= warmup:
        raise ValueError(f"{len(batches)} batches leave none to time after {warmup} warm-up calls")
    gc.collect()
    gc.freeze()
    try:
        for batch in batches[:warmup]:
            fn(batch)
        samples = []
        for batch in batches[warmup:]:
            started = time.perf_counter()
            fn(batch)
            samples.append(time.perf_counter() - started)
    finally:
        gc.unfreeze()
    return statistics.median(samples) * 1000.0


def medians_interleaved(
    calls: dict[str, tuple[Callable[[list[object]], object], Sequence[list[object]]]], warmup: int = WARMUP
) -> dict[str, float]:
    """`median_ms` for several (fn, batches), taking turns batch by batch.

    This machine alternates between a quiet and a contended speed over seconds
    (`machine_speed`); timing one exporter's calls after the other's would
    compare two machine states. Turn by turn, both see the same ones.
    """
    count = min(len(batches) for _, batches in calls.values())
    if count <= warmup:
        raise ValueError(f"{count} batches leave none to time after {warmup} warm-up calls")
    samples: dict[str, list[float]] = {name: [] for name in calls}
    gc.collect()
    gc.freeze()
    try:
        for index in range(count):
            for name, (fn, batches) in calls.items():
                gc.collect()  # no collection debt from the other's garbage lands in this call
                started = time.perf_counter()
                fn(batches[index])
                if index >= warmup:
                    samples[name].append(time.perf_counter() - started)
    finally:
        gc.unfreeze()
    return {name: statistics.median(values) * 1000.0 for name, values in samples.items()}


def make_spans(count: int, tag: str) -> list[object]:
    """One invocation's `count` spans; `tag` makes its per-invocation values (`order.id`) its own."""
    from nexs_serverless import tracer
    from nexs_serverless.runtime import runtime

    for i in range(count):
        attributes = {"http.method": "GET", "order.id": f"o-{tag}-{i}", "n": i}
        with tracer.span("GET /orders/{id}", attributes=attributes):
            pass
    spans: list[object] = list(runtime.buffer.take_ended())
    return spans


def make_batches(count: int, batches: int, tag: str) -> tuple[list[list[object]], list[list[object]]]:
    """`batches` distinct batches of `count` spans (tagged `tag`-0, `tag`-1, ...) and their SDK copies."""
    from nexs_serverless.exporters.otel_sdk import to_readable_span

    ours = [make_spans(count, f"{tag}-{k}") for k in range(batches)]
    readable = [[to_readable_span(span) for span in spans] for spans in ours]
    return ours, readable


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

        def export_ours(spans: list[object]) -> None:
            with exporting(time.monotonic() + 5.0):
                assert ours.export(spans).name == "SUCCESS"  # type: ignore[arg-type]

        def export_sdk(readable: list[object]) -> None:
            assert sdk.export(readable).name == "SUCCESS"  # type: ignore[arg-type]

        for count in (10, 100, 1000):
            repeats = args.repeats if count < 1000 else max(20, args.repeats // 5)
            # one batch per call, fresh values every time; the export pair and the
            # encode pair each get their own set, so neither meets values the other cached
            spans, readable = make_batches(count, WARMUP + repeats, f"export{count}")
            exports = medians_interleaved({"ours": (export_ours, spans), "sdk": (export_sdk, readable)})
            ours_ms, sdk_ms = exports["ours"], exports["sdk"]
            del spans, readable
            spans, readable = make_batches(count, WARMUP + repeats, f"encode{count}")
            encodes = medians_interleaved(
                {
                    "ours": (encode_spans, spans),  # type: ignore[dict-item]
                    "sdk": (lambda batch: sdk_encode(batch).SerializeToString(), readable),  # type: ignore[arg-type]
                }
            )
            ours_encode, sdk_encode_ms = encodes["ours"], encodes["sdk"]
            del spans, readable
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
        # batch 0 opens the breaker; the rest, one per call, as above
        spans, readable = make_batches(10, 1 + WARMUP + max(args.repeats, args.sdk_dead_repeats), "dead")
        broken = ResilientExporter(
            OTLPHttpExporter(endpoint=dead),
            options=Options(failure_threshold=1, cooldown_s=3600, max_retries=0),
        )
        with exporting(time.monotonic() + 1.0):
            broken.export(spans[0])  # type: ignore[arg-type]  # opens the breaker
        assert broken.breaker.state == "open"

        def export_open(spans: list[object]) -> None:
            with exporting(time.monotonic() + 1.0):
                broken.export(spans)  # type: ignore[arg-type]

        open_ms = median_ms(export_open, spans[1 : 1 + WARMUP + args.repeats])
        sdk_dead = OTLPSpanExporter(endpoint=dead)
        sdk_dead_ms = median_ms(
            sdk_dead.export,  # type: ignore[arg-type]
            readable[1 : 1 + args.sdk_dead_repeats],
            warmup=0,
        )
        del spans, readable
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
