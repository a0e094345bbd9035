"""What an invocation costs the handler when it is sampled, head-unsampled or tail-dropped.

One `@traced_handler` on an API Gateway v2 event, doing five child spans with
three attributes each, is invoked in-process with a Lambda context stand-in.
Two exporters: a null one (it only counts), so the numbers are the tracer's
own work (spans, flush, pipeline stages with redaction on by default, the
export call); and one that encodes each batch to OTLP protobuf without
sending it, the minimum a real back end costs, which tail sampling saves on
the invocations it drops. Variants run interleaved, in rounds, so machine
noise hits them alike; the report is the median per invocation.

Variants:
  disabled        the kill switch on (OTEL_SDK_DISABLED): the floor, body and wrapper only
  sampled         OTEL_TRACES_SAMPLER=always_on
  head-unsampled  always_off: context-only spans, nothing buffered or exported
  head-ratio-10%  traceidratio 0.1 (a mix of the two above)
  tail-dropped    recorded, then dropped at the flush by tail rules (errors only)
  tail-adaptive   tail sampling to a target of 5/s per instance

    python scripts/bench_sampling.py [--rounds 15] [--invocations 400] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

from nexs_serverless import configure, traced_handler, tracer
from nexs_serverless.exporters import ExportResult
from nexs_serverless.testing import LambdaContext

EVENT = {
    "version": "2.0",
    "routeKey": "POST /orders",
    "rawPath": "/orders",
    "rawQueryString": "",
    "headers": {"host": "abc.execute-api.eu-west-1.amazonaws.com", "content-type": "application/json"},
    "requestContext": {
        "domainName": "abc.execute-api.eu-west-1.amazonaws.com",
        "http": {"method": "POST", "path": "/orders", "protocol": "HTTP/1.1", "sourceIp": "198.51.100.1"},
    },
    "body": '{"item": 42}',
}


class NullExporter:
    """Counts what it is given; sends nothing."""

    def __init__(self) -> None:
        self.spans = 0

    def export(self, spans: Sequence[object]) -> ExportResult:
        self.spans += len(spans)
        return ExportResult.SUCCESS

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True

    def shutdown(self) -> None:
        return None


class EncodingExporter(NullExporter):
    """Encodes each batch as an OTLP request body, as the OTLP exporters do, and drops it."""

    def export(self, spans: Sequence[object]) -> ExportResult:
        from nexs_serverless.exporters.otlp_encode import encode_spans

        if spans:
            encode_spans(spans)  # type: ignore[arg-type]
        return super().export(spans)


def work(event: dict[str, Any], context: object) -> dict[str, int]:
    for step in range(5):
        with tracer.span("step", attributes={"step": step, "order.id": "ORD-00042", "cache.hit": False}):
            pass
    return {"statusCode": 201}


VARIANTS: dict[str, dict[str, str]] = {
    "disabled": {"OTEL_SDK_DISABLED": "true"},
    "sampled": {"OTEL_TRACES_SAMPLER": "always_on"},
    "head-unsampled": {"OTEL_TRACES_SAMPLER": "always_off"},
    "head-ratio-10%": {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"},
    "tail-dropped": {"NEXS_TAIL_SAMPLING_RULES": '[{"when": "error"}]'},
    "tail-adaptive": {"NEXS_TAIL_SAMPLING_RULES": '{"target_per_second": 5}'},
}


def measure(handler: Callable[..., object], context: object, invocations: int) -> float:
    """Microseconds per invocation over one block of `invocations` calls."""
    started = time.perf_counter_ns()
    for _ in range(invocations):
        handler(EVENT, context)
    return (time.perf_counter_ns() - started) / invocations / 1000.0


def run(rounds: int, invocations: int, exporter_class: type[NullExporter]) -> dict[str, dict[str, float]]:
    context = LambdaContext(timeout_ms=900_000)
    traced = traced_handler(work)
    samples: dict[str, list[float]] = {name: [] for name in VARIANTS}
    exported: dict[str, int] = {}
    for round_index in range(rounds + 1):  # round 0 warms every variant up
        for name, environ in VARIANTS.items():
            exporter = exporter_class()
            configure(environ=environ, exporters=[exporter])
            elapsed = measure(traced, context, invocations)
            exported[name] = exporter.spans
            if round_index:
                samples[name].append(elapsed)
    configure(environ={}, exporters=None)
    sampled = statistics.median(samples["sampled"])
    return {
        name: {
            "us_per_invocation_median": statistics.median(values),
            "vs_sampled": statistics.median(values) / sampled,
            "spans_exported_last_round": float(exported.get(name, 0)),
        }
        for name, values in samples.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--invocations", type=int, default=400)
    parser.add_argument("--json", help="write results here")
    args = parser.parse_args()
    everything = {}
    print(f"sampling: median of {args.rounds} rounds x {args.invocations} invocations (5 child spans each)")
    for label, exporter_class in (
        ("null exporter", NullExporter),
        ("OTLP-encoding exporter", EncodingExporter),
    ):
        results = everything[label] = run(args.rounds, args.invocations, exporter_class)
        print(f"\n{label}")
        print(f"{'variant':16} {'us/invocation':>14} {'x sampled':>10} {'spans exported':>15}")
        for name, r in results.items():
            print(
                f"{name:16} {r['us_per_invocation_median']:14.1f} {r['vs_sampled']:10.2f}"
                f" {int(r['spans_exported_last_round']):15d}"
            )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(
                {"rounds": args.rounds, "invocations": args.invocations, "results": everything}, fh, indent=2
            )


if __name__ == "__main__":
    main()
