"""Speed of `propagation.extract` (a W3C ``traceparent``) plus `propagation.inject` into a dict.

The budget (issue 4): at most 5 us together, median, on CPython 3.11, with the
default propagators (``tracecontext,baggage,xray``). Each sample times a batch
of calls and divides; the report is the median and the spread over samples.
OpenTelemetry's own W3C propagator is timed the same way for comparison when
it is installed.

    python scripts/bench_propagation.py [--samples 31] [--batch 2000] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

HEADERS = {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
BUDGET_US = 5.0


def _summary(times: list[float]) -> dict[str, float]:
    times = sorted(times)
    return {
        "median_us": round(statistics.median(times), 3),
        "p10_us": round(times[len(times) // 10], 3),
        "p90_us": round(times[(len(times) * 9) // 10], 3),
    }


def _loop_ns() -> float:
    """Nanoseconds per empty ``for`` iteration: how fast this machine runs Python right now."""
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(200_000):
            pass
        best = min(best, (time.perf_counter() - start) / 200_000 * 1e9)
    return round(best, 1)


def _ours(propagators: str, *, new_spans: bool = False):
    """A timed batch through the public `extract`/`inject`, with `propagators` configured.

    With `new_spans`, each `inject` writes a different span of the trace (as each
    outgoing call's client span does), so no per-span cache can help it.
    """
    from nexs_serverless import propagation
    from nexs_serverless.model import SpanContext
    from nexs_serverless.testing import reset

    extract = propagation.extract
    inject = propagation.inject
    environ = {"OTEL_PROPAGATORS": propagators}

    def batch(count: int) -> float:
        reset(environ=environ)
        propagation.composite()
        if new_spans:
            trace_id = extract(HEADERS).trace_id
            spans = [SpanContext(trace_id, 0x1000 + index, 1) for index in range(count)]
            start = time.perf_counter()
            for span in spans:
                extract(HEADERS)
                inject({}, span)
            return (time.perf_counter() - start) / count * 1e6
        start = time.perf_counter()
        for _ in range(count):
            inject({}, extract(HEADERS))
        return (time.perf_counter() - start) / count * 1e6

    return batch


def _opentelemetry():
    try:
        from opentelemetry import trace
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
    except ImportError:
        return None
    propagator = TraceContextTextMapPropagator()
    trace.get_current_span()  # load lazily imported parts before timing

    def batch(count: int) -> float:
        start = time.perf_counter()
        for _ in range(count):
            propagator.inject({}, context=propagator.extract(HEADERS))
        return (time.perf_counter() - start) / count * 1e6

    return batch


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=31)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()

    # Each variant's composite is built once; they run interleaved so machine noise hits all alike.

    variants = {}
    for label, names in (
        ("nexs default (tracecontext,baggage,xray)", "tracecontext,baggage,xray"),
        ("nexs tracecontext only", "tracecontext"),
    ):
        variants[label] = _ours(names)
    variants["nexs default, a new span per inject"] = _ours("tracecontext,baggage,xray", new_spans=True)
    reference = _opentelemetry()
    if reference is not None:
        variants["opentelemetry-api TraceContextTextMapPropagator"] = reference
    times: dict[str, list[float]] = {label: [] for label in variants}
    for round_index in range(args.samples + 3):
        for label, fn in variants.items():
            elapsed = fn(args.batch)
            if round_index >= 3:  # the first rounds warm caches and the specializing interpreter
                times[label].append(elapsed)
    results = {label: _summary(samples) for label, samples in times.items()}

    print(f"extract(W3C traceparent) + inject(dict), CPython {sys.version.split()[0]}")
    print(f"  machine: {_loop_ns()} ns per empty loop iteration (a recent laptop: about 10-15)")
    for label, numbers in results.items():
        print(
            f"  {label:50s} median {numbers['median_us']:7.3f} us"
            f"  (p10 {numbers['p10_us']:.3f}, p90 {numbers['p90_us']:.3f})"
        )
    default = results["nexs default (tracecontext,baggage,xray)"]["median_us"]
    print(f"budget {BUDGET_US} us: {'met' if default <= BUDGET_US else 'NOT met'} ({default} us)")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(results, out, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
