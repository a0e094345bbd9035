"""Speed of `propagation.extract` (a W3C ``traceparent``) plus `propagation.inject` into a dict.

The budget (issue 4): at most 5 us together, median, on CPython 3.11, with the
default propagators (``tracecontext,baggage,xray``). Each sample times a batch
of calls and divides; the report is the median and the spread over samples.
OpenTelemetry's own W3C propagator is timed the same way for comparison when
it is installed.

Each sample is bracketed by a machine-speed canary (`machine_speed`): the
report gives the median over all samples and over those taken while the
machine ran at its quiet speed. The verdict is printed for both.

    python scripts/bench_propagation.py [--samples 51] [--batch 1000] [--max-seconds 60] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

from machine_speed import quiet_cut, sample, split

HEADERS = {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
BUDGET_US = 5.0


def _summary(samples: list[tuple[float, float]], cut: float) -> dict[str, float]:
    """Median, spread and the quiet-machine median of (canary ns, us per call) samples."""
    times = sorted(value for _, value in samples)
    parts = split(samples, cut)
    return {
        "median_us": round(statistics.median(times), 3),
        "p10_us": round(times[len(times) // 10], 3),
        "p90_us": round(times[(len(times) * 9) // 10], 3),
        "quiet_median_us": round(parts["quiet_median"], 3),
        "quiet_samples": parts["quiet_samples"],
        "samples": parts["samples"],
    }


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
    # Short samples: the machine's quiet spells last from a fraction of a second up.
    parser.add_argument("--samples", type=int, default=51, help="wanted samples, and quiet ones, per variant")
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--max-seconds", type=float, default=60.0)
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
    times = sample(
        {label: (lambda fn=fn: fn(args.batch)) for label, fn in variants.items()},
        args.samples,
        args.max_seconds,
    )
    cut = quiet_cut([canary for samples in times.values() for canary, _ in samples])
    results = {label: _summary(samples, cut) for label, samples in times.items()}
    machine = split([sample for samples in times.values() for sample in samples], cut)

    print(f"extract(W3C traceparent) + inject(dict), CPython {sys.version.split()[0]}")
    print(
        f"  machine: {machine['quiet_canary_ns']:.1f} ns per empty loop iteration when quiet,"
        f" {machine['contended_canary_ns']:.1f} when contended (a recent laptop: about 10-15);"
        f" quiet in {machine['quiet_samples']:.0f} of {machine['samples']:.0f} samples"
    )
    for label, numbers in results.items():
        print(
            f"  {label:50s} median {numbers['median_us']:7.3f} us"
            f"  (p10 {numbers['p10_us']:.3f}, p90 {numbers['p90_us']:.3f});"
            f" quiet machine {numbers['quiet_median_us']:7.3f} us"
        )
    default = results["nexs default (tracecontext,baggage,xray)"]
    for what, value in (("all samples", default["median_us"]), ("quiet machine", default["quiet_median_us"])):
        print(f"budget {BUDGET_US} us, {what}: {'met' if value <= BUDGET_US else 'NOT met'} ({value} us)")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump({**results, "machine": machine}, out, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
