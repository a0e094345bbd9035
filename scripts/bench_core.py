"""Per-span cost: start and end as the current span with 3 attributes, against the OpenTelemetry SDK.

Each sample runs `--spans` spans in batches of 100, each batch followed by a
flush to a no-op exporter (what an invocation does); the result is the
median of `--repeat` samples, in ns per span. What each variant times:

- `nexs_serverless`, `nexs_serverless_pool_off`: ours (pool on / off),
  start + end *and* its share of the flush (default redaction, export, pool
  refill).
- `nexs_serverless_start_end_only`: ours, start + end alone (the budget's
  definition): only the 100-span loop is timed, the flush after it is not.
- `opentelemetry_sdk_simple`, `opentelemetry_sdk_batch`: the SDK with a
  SimpleSpanProcessor / a BatchSpanProcessor to a no-op exporter, start + end
  *and* `provider.force_flush()` after each batch; the peer of
  `nexs_serverless` is the cheaper of the two.
- `opentelemetry_sdk_simple_start_end_only`,
  `opentelemetry_sdk_batch_start_end_only`: the same two, timed like
  `nexs_serverless_start_end_only`: only the 100-span loop is timed,
  `force_flush()` runs outside the timing (the SimpleSpanProcessor still
  exports each span as it ends: that is its end). The peer of
  `nexs_serverless_start_end_only` is the cheaper of these two.

Each sample is bracketed by a machine-speed canary (`machine_speed`); besides
the medians over all samples, the report gives the medians over the samples
taken while the machine ran at its quiet speed, and sampling goes on until
every variant has `--repeat` of those (or `--max-seconds` pass).

    python scripts/bench_core.py [--spans 2000] [--repeat 15] [--max-seconds 120] [--json out.json]
"""

from __future__ import annotations

import argparse
import gc
import json
import time
from collections.abc import Callable, Sequence
from typing import Any

from machine_speed import quiet_cut, sample, split

BATCH = 100


def _loop(span: Callable[..., Any], flush: Callable[[], object], flush_timed: bool) -> Callable[[int], float]:
    """ns per span over `n` spans in batches of `BATCH`, each batch followed by `flush`.

    One loop for every variant, so that ours and the SDK's are timed by the same
    code: with `flush_timed` the flushes count, else only the batches of spans do.
    """

    def run(n: int) -> float:
        start = span  # a local, not a closure cell, in the timed loop
        spent = 0
        started = time.perf_counter_ns()
        for _ in range(n // BATCH):
            batch_started = time.perf_counter_ns()
            for _ in range(BATCH):
                with start("op", attributes={"a": 1, "b": "two", "c": 3.0}):
                    pass
            spent += time.perf_counter_ns() - batch_started
            flush()
        return (time.perf_counter_ns() - started) / n if flush_timed else spent / n

    return run


def _ours(pool: bool, only_spans: bool = False) -> Callable[[int], float]:
    """Ours with the pool on or off; `only_spans` leaves the flush (redaction, export, pool refill) out."""
    from nexs_serverless import configure, flush, tracer
    from nexs_serverless.exporters import ExportResult

    class NoOp:
        def export(self, spans: Sequence[object]) -> ExportResult:
            return ExportResult.SUCCESS

        def force_flush(self, timeout_millis: int = 0) -> bool:
            return True

        def shutdown(self) -> None:
            return None

    loop = _loop(tracer.span, flush, flush_timed=not only_spans)

    def run(n: int) -> float:
        configure(exporters=[NoOp()], pool_size=256 if pool else 0, environ={})
        return loop(n)

    return run


def _otel(batch: bool, only_spans: bool = False) -> Callable[[int], float]:
    """The SDK with a Simple- or BatchSpanProcessor; `only_spans` leaves its `force_flush()` out."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        SimpleSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )

    class NoOp(SpanExporter):
        def export(self, spans: Sequence[object]) -> SpanExportResult:  # type: ignore[override]
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    processor = BatchSpanProcessor(NoOp()) if batch else SimpleSpanProcessor(NoOp())
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("bench")
    return _loop(tracer.start_as_current_span, provider.force_flush, flush_timed=not only_spans)


VARIANTS: dict[str, Callable[[], Callable[[int], float]]] = {
    "nexs_serverless_start_end_only": lambda: _ours(pool=True, only_spans=True),
    "nexs_serverless": lambda: _ours(pool=True),
    "nexs_serverless_pool_off": lambda: _ours(pool=False),
    "opentelemetry_sdk_simple": lambda: _otel(batch=False),
    "opentelemetry_sdk_batch": lambda: _otel(batch=True),
    "opentelemetry_sdk_simple_start_end_only": lambda: _otel(batch=False, only_spans=True),
    "opentelemetry_sdk_batch_start_end_only": lambda: _otel(batch=True, only_spans=True),
}
START_END_ONLY = "_start_end_only"  # the suffix of the variants that time start + end alone


def measure(spans: int, repeat: int, names: list[str], max_seconds: float) -> dict[str, dict[str, float]]:
    """ns per span for each variant, samples interleaved: medians over all and on a quiet machine."""
    runners = {name: VARIANTS[name]() for name in names}
    for run in runners.values():
        run(spans // 4)  # warm up

    def timed(run: Callable[[int], float]) -> Callable[[], float]:
        def one() -> float:
            gc.collect()
            return run(spans)

        return one

    samples = sample(
        {name: timed(run) for name, run in runners.items()}, repeat, max_seconds, warmup_rounds=1
    )
    cut = quiet_cut([canary for rows in samples.values() for canary, _ in rows])
    return {name: split(rows, cut) for name, rows in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # Short samples: the machine's quiet spells last from a fraction of a second up.
    parser.add_argument("--spans", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=15, help="wanted samples, and quiet ones, per variant")
    parser.add_argument("--max-seconds", type=float, default=120.0)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--json")
    args = parser.parse_args()
    names = [name for name in args.variants.split(",") if name]
    measured = measure(args.spans, args.repeat, names, args.max_seconds)
    results = {name: parts["median"] for name, parts in measured.items()}
    quiet = {name: parts["quiet_median"] for name, parts in measured.items()}
    ours = results.get("nexs_serverless") or next(iter(results.values()))
    ours_quiet = quiet.get("nexs_serverless") or next(iter(quiet.values()))
    # the start-end-only rows are compared with ours timed the same way
    ours_start_end = results.get("nexs_serverless" + START_END_ONLY) or ours
    ours_start_end_quiet = quiet.get("nexs_serverless" + START_END_ONLY) or ours_quiet
    first = next(iter(measured.values()))
    print(f"per span (start+end as current, 3 attributes, flush every {BATCH}): medians")
    print(
        f"machine: {first['quiet_canary_ns']:.1f} ns per empty loop iteration when quiet,"
        f" {first['contended_canary_ns']:.1f} when contended"
    )
    print(f"{'variant':40} {'us/span':>9} {'x ours':>8} {'quiet us':>9} {'x ours':>8} {'quiet/all':>10}")
    for name, ns in results.items():
        parts = measured[name]
        start_end = name.endswith(START_END_ONLY)
        base, base_quiet = (ours_start_end, ours_start_end_quiet) if start_end else (ours, ours_quiet)
        print(
            f"{name:40} {ns / 1000:9.2f} {ns / base:8.1f} {quiet[name] / 1000:9.2f}"
            f" {quiet[name] / base_quiet:8.1f} {parts['quiet_samples']:4.0f}/{parts['samples']:.0f}"
        )
    print(f"(x ours: the *{START_END_ONLY} rows against nexs_serverless{START_END_ONLY})")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(
                {
                    "spans": args.spans,
                    "repeat": args.repeat,
                    "ns_per_span": results,
                    "quiet_ns_per_span": quiet,
                },
                fh,
                indent=2,
            )


if __name__ == "__main__":
    main()
