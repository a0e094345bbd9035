"""What each cost knob buys, measured: ``python examples/performance/run.py``.

Three parts, all local:

1. per-invocation overhead (median of many warm invocations) of the handler
   in ``handler.py`` with tracing off and on, then with each knob turned:
   the span pool, head sampling, tail sampling, the timeout guard. Spans go
   to a do-nothing exporter, so this is the tracer's own cost;
2. the flush budget against a slow back end (an OTLP endpoint on 127.0.0.1
   answering after 50 ms): the budget caps what a flush may add, and the
   circuit breaker stops paying even that once the back end keeps failing;
3. the timeout guard firing: an invocation that runs into its deadline still
   exports its spans, marked, before Lambda would freeze the process.

Numbers depend on the machine; ratios are what to compare. ``--quick``
measures fewer invocations (what the example's test uses).
"""

from __future__ import annotations

import http.server
import pathlib
import statistics
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

sys.path.insert(0, str(pathlib.Path(__file__).parent))

from handler import work

from nexs_serverless import configure, stats, traced_handler, tracer
from nexs_serverless.exporters import ConsoleExporter, ExportResult
from nexs_serverless.testing import LambdaContext

CONTEXT = LambdaContext(function_name="shop", timeout_ms=900_000)  # Lambda's longest timeout
TAIL_ERRORS_ONLY = '{"rules": [{"when": "error"}], "ratio": 0.0}'
HEAD_10: dict[str, Any] = {"sampler": "traceidratio", "sampler_arg": 0.1}
TAIL: dict[str, Any] = {"environ": {"NEXS_TAIL_SAMPLING_RULES": TAIL_ERRORS_ONLY}}


class CountingExporter:
    """Counts spans and drops them: measures the tracer, not a back end."""

    def __init__(self) -> None:
        self.spans = 0

    def export(self, spans: Sequence[object]) -> ExportResult:
        """Count."""
        self.spans += len(spans)
        return ExportResult.SUCCESS

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Nothing held."""
        return True

    def shutdown(self) -> None:
        """Nothing to release."""


def part_one(invocations: int) -> None:
    """Median µs per invocation for each setting, in interleaved rounds (load drift hits all alike)."""
    print(f"== 1. Per-invocation overhead (median of {invocations} warm invocations, 5 child spans each)")
    print("   1 in 10 invocations fails, so tail sampling has errors to keep\n")
    variants: tuple[tuple[str, str, dict[str, Any]], ...] = (
        ("tracing off", "OTEL_SDK_DISABLED=true", {"disabled": True}),
        ("tracing on (defaults)", "pool 256, sample all, guard 250 ms", {}),
        ("span pool off", "NEXS_SPAN_POOL_SIZE=0", {"pool_size": 0}),
        ("head sampling 10%", "OTEL_TRACES_SAMPLER=traceidratio, ARG=0.1", HEAD_10),
        ("tail sampling: errors only", "NEXS_TAIL_SAMPLING_RULES=" + TAIL_ERRORS_ONLY, TAIL),
        ("timeout guard off", "NEXS_TIMEOUT_GUARD_MS=0", {"timeout_guard_ms": 0}),
    )
    samples: dict[str, list[int]] = {name: [] for name, _, _ in variants}
    kept: dict[str, int] = dict.fromkeys(samples, 0)
    rounds = 10
    events = [{"fail": i % 10 == 0} for i in range(invocations // rounds)]
    for _ in range(rounds):
        for name, _, settings in variants:
            exporter = CountingExporter()
            configure(exporters=[exporter], **settings)
            handler = traced_handler(work)  # decorated after configure: with tracing off it is `work` itself
            for event in events[:20]:  # warm up: caches, pool, the exporter wrapper
                call(handler, event)
            exporter.spans = 0
            for event in events:
                started = time.perf_counter_ns()
                call(handler, event)
                samples[name].append(time.perf_counter_ns() - started)
            kept[name] += exporter.spans
    print(f"   {'variant':28} {'µs/invocation':>14} {'overhead':>10} {'spans kept':>11}   setting")
    baseline = statistics.median(samples["tracing off"]) / 1000
    for name, setting, _ in variants:
        us = statistics.median(samples[name]) / 1000
        per_invocation = kept[name] / len(samples[name])
        print(f"   {name:28} {us:14.1f} {us - baseline:+10.1f} {per_invocation:11.2f}   {setting}")


def call(handler: Any, event: dict[str, Any]) -> None:
    """One invocation; the declined payments are expected."""
    try:
        handler(event, CONTEXT)
    except RuntimeError:
        pass


class SlowBackend:
    """An OTLP/HTTP endpoint on 127.0.0.1 that answers 200 after `delay_s`."""

    def __init__(self, delay_s: float) -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                time.sleep(delay_s)
                try:
                    self.send_response(200)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    self.close_connection = True  # the exporter gave up waiting

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1/traces"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()


def part_two(invocations: int) -> None:
    """Invocation time against a slow back end: default budget, short budget, short budget with breaker."""
    from nexs_serverless.exporters import OTLPHttpExporter

    print("\n== 2. Flush budget against a slow back end (answers after 50 ms)\n")
    backend = SlowBackend(0.05)
    variants: tuple[tuple[str, int, str], ...] = (
        ("budget 1000 ms (default)", 1000, "1000"),
        ("budget 20 ms, breaker off", 20, "100000"),
        ("budget 20 ms, breaker on", 20, "3"),
    )
    try:
        print(f"   {'variant':28} {'ms/invocation':>14} {'first 3':>22}   breaker opened")
        for name, budget_ms, failures in variants:
            configure(
                exporters=[OTLPHttpExporter(endpoint=backend.url)],
                flush_timeout_ms=budget_ms,
                environ={"NEXS_EXPORT_BREAKER_FAILURES": failures, "NEXS_EXPORT_MAX_RETRIES": "0"},
            )
            handler = traced_handler(work)
            opened = stats().get("breaker_opened", 0)
            samples = []
            for _ in range(invocations):
                started = time.perf_counter()
                handler({}, CONTEXT)
                samples.append((time.perf_counter() - started) * 1000)
            first = " ".join(f"{sample:5.1f}" for sample in samples[:3])
            opened = stats().get("breaker_opened", 0) - opened
            print(f"   {name:28} {statistics.median(samples):14.2f} {first:>22}   {opened:g}")
    finally:
        backend.close()


def part_three() -> None:
    """Run one invocation into its deadline and show what the timeout guard sent."""
    print("\n== 3. Timeout guard: an invocation that runs into its deadline\n")
    configure(exporters=[ConsoleExporter()], timeout_guard_ms=150)

    @traced_handler
    def stuck(event: dict[str, Any], context: Any) -> str:
        """Wait on a dependency longer than the invocation has left."""
        with tracer.span("call-slow-dependency"):
            time.sleep(0.2)  # past the guard (deadline 200 ms, guard 150 ms before it)
        return "finished after the guard fired"

    fired = stats().get("timeout_guard_fired", 0)
    result = stuck({}, LambdaContext(function_name="shop", timeout_ms=200))
    fired = stats().get("timeout_guard_fired", 0) - fired
    print(f"   timeout_guard_fired: {fired:g}; handler returned: {result!r}")
    print("   (on Lambda the process is frozen at the deadline; the spans above were already sent)")


def main() -> None:
    """All three parts; ``--quick`` for fewer samples."""
    quick = "--quick" in sys.argv
    part_one(600 if quick else 3000)
    part_two(7 if quick else 15)
    part_three()


if __name__ == "__main__":
    main()
