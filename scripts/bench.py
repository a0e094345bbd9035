"""The benchmark suite: every benchmark script, one summary, a plot, and a regression check.

Each benchmark runs as its own process (`scripts/bench_*.py --json ...`) and
compares us with the peers *in the same run*, so the suite reports ratios
(peer time / our time) as well as our absolute medians. The summary is
written as JSON (default `bench-results/results.json`) and plotted
(`--plot docs/bench.png`). `--check BASELINE` compares the ratios with a
stored baseline and exits 1 when one regressed by more than `--tolerance`
(ratios, not absolute times, so a slower machine does not fail the check).

    python scripts/bench.py                       # the full suite (several minutes)
    python scripts/bench.py --quick --check scripts/bench_baseline.json   # what CI runs
    python scripts/bench.py --only coldstart,core
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "scripts"

# name -> (script, full-run args, quick-run args, summarise(json) -> metrics)
Summary = dict[str, float]


def _coldstart(data: dict[str, Any]) -> Summary:
    r = data["results"]
    ours = r["nexs_serverless"]["import_ms_median"]
    out = {"ours_import_ms": ours}
    for peer in ("opentelemetry_sdk_otlp", "powertools_tracer"):
        if peer in r:
            out[f"ratio_{peer}"] = r[peer]["import_ms_median"] / ours
    return out


def _core(data: dict[str, Any]) -> Summary:
    """Ours per span, and the OpenTelemetry SDK's against it, each compared with its own kind.

    `ratio_opentelemetry_sdk` sets the cheapest OpenTelemetry variant timed
    with its `force_flush()` against ours timed with the flush; the `_start_end`
    ratios set the cheapest OpenTelemetry `*_start_end_only` variant (start +
    end alone, the flush outside the timing) against ours timed the same way.
    Without such a variant (an older run) the `_start_end` ratios are left out
    rather than compared with a peer that timed its flush.
    """
    start_end_only = "_start_end_only"

    def cheapest_peer(medians: dict[str, float], start_end: bool) -> float | None:
        """The cheapest OpenTelemetry variant of that kind; NaN (never ran quiet) is skipped."""
        peers = [
            v
            for k, v in medians.items()
            if k.startswith("opentelemetry") and k.endswith(start_end_only) == start_end and v == v
        ]
        return min(peers) if peers else None

    ns = data["ns_per_span"]
    ours = ns["nexs_serverless"]
    out = {
        "ours_us_per_span": ours / 1000,
        "pool_off_us_per_span": ns.get("nexs_serverless_pool_off", 0) / 1000,
        "ours_start_end_us_per_span": ns.get("nexs_serverless" + start_end_only, 0) / 1000,
    }
    peer = cheapest_peer(ns, start_end=False)
    if peer is not None:
        out["ratio_opentelemetry_sdk"] = peer / ours
    peer_start_end = cheapest_peer(ns, start_end=True)
    if out["ours_start_end_us_per_span"] and peer_start_end is not None:
        out["ratio_opentelemetry_sdk_start_end"] = peer_start_end / 1000 / out["ours_start_end_us_per_span"]
    quiet = data.get("quiet_ns_per_span", {})  # the medians over samples on a quiet machine
    ours_quiet = quiet.get("nexs_serverless" + start_end_only)
    if ours_quiet:
        out["ours_start_end_quiet_us_per_span"] = ours_quiet / 1000
        quiet_peer = cheapest_peer(quiet, start_end=True)
        if quiet_peer is not None:
            out["ratio_opentelemetry_sdk_start_end_quiet"] = quiet_peer / ours_quiet
    return out


def _invocation(data: dict[str, Any]) -> Summary:
    out: Summary = {}
    for suffix, ms in (("", data["ms"]), ("_quiet", data.get("quiet_ms", {}))):
        ours = ms.get("nexs_serverless")
        if ours is None or ours != ours:  # NaN when no sample ran on a quiet machine
            continue
        out[f"ours{suffix}_ms"] = ours
        if "nexs_serverless_xray_udp" in ms:
            out[f"ours_xray_udp{suffix}_ms"] = ms["nexs_serverless_xray_udp"]
        for peer in ("opentelemetry_lambda", "powertools_tracer"):
            if peer in ms:
                out[f"ratio_{peer}{suffix}"] = ms[peer] / ours
    return out


def _export(data: Any) -> Summary:
    rows = data["rows"] if isinstance(data, dict) and "rows" in data else data
    out: Summary = {}
    for row in rows:
        key = "dead_endpoint" if row["case"].startswith("dead") else f"flush_{row['spans']}"
        out[f"ours_{key}_ms"] = row["ours_ms"]
        out[f"ratio_{key}"] = row["ratio"]
    return out


def _memory(data: dict[str, Any]) -> Summary:
    rss = data["rss_kib"]["nexs_serverless"]
    return {"ours_growth_kib": float(rss["after_kib"] - rss["warm_kib"])}


def _propagation(data: dict[str, Any]) -> Summary:
    out = {
        "ours_default_us": data["nexs default (tracecontext,baggage,xray)"]["median_us"],
        "ours_tracecontext_us": data["nexs tracecontext only"]["median_us"],
    }
    quiet = data["nexs default (tracecontext,baggage,xray)"].get("quiet_median_us")
    if quiet == quiet and quiet is not None:  # NaN when no sample ran on a quiet machine
        out["ours_default_quiet_us"] = quiet
    peer = data.get("opentelemetry-api TraceContextTextMapPropagator")
    if peer is not None:
        out["ratio_opentelemetry_tracecontext"] = peer["median_us"] / out["ours_tracecontext_us"]
    return out


def _lambda_coldstart(data: dict[str, Any]) -> Summary:
    report = data["report"]
    out = {f"{name}_overhead_ms": row["paired_overhead_ms"] for name, row in report.items() if name != "none"}
    out["none_ms"] = report["none"]["median_ms"]
    for name, row in report.items():  # medians over the cold starts on a quiet machine (NaN: none)
        quiet = row.get("quiet_overhead_ms")
        if name != "none" and quiet is not None and quiet == quiet:
            out[f"{name}_quiet_overhead_ms"] = quiet
    for bound in ("low", "high"):
        if f"paired_overhead_{bound}_ms" in report["nexs"]:
            out[f"nexs_overhead_{bound}_ms"] = report["nexs"][f"paired_overhead_{bound}_ms"]
    inside = report["nexs"].get("inside_ms")
    if inside:  # the layer's own time, from stopwatches inside the function (steadier)
        out["nexs_inside_ms"] = inside
        quiet = report["nexs"].get("inside_quiet_ms")
        if quiet is not None and quiet == quiet:  # NaN when no cold start ran on a quiet machine
            out["nexs_inside_quiet_ms"] = quiet
        for peer in ("otel", "powertools"):
            if f"{peer}_overhead_ms" in out:
                out[f"ratio_{peer}_inside"] = out[f"{peer}_overhead_ms"] / inside
    ours = max(out["nexs_overhead_ms"], 0.1)
    for peer in ("otel", "powertools"):
        if f"{peer}_overhead_ms" in out:
            out[f"ratio_{peer}"] = out[f"{peer}_overhead_ms"] / ours
    return out


def _lambda_instructions(data: dict[str, Any]) -> Summary:
    return {} if "skipped" in data else dict(data["summary"])


def _instructions_as_time(results: dict[str, Summary]) -> None:
    """The layer's share of a cold start's instructions, times the untraced cold start's median here.

    A raw figure for the budget table, as both benchmarks ran in this run; the
    instruction counts themselves do not depend on the machine's speed.
    """
    counted, timed = results.get("lambda_instructions", {}), results.get("lambda_coldstart", {})
    if "nexs_share_pct" in counted and "none_ms" in timed:
        counted["nexs_share_of_cold_start_ms"] = counted["nexs_share_pct"] / 100.0 * timed["none_ms"]
    if "nexs_after_response_share_pct" in counted and "none_ms" in timed:
        share = counted["nexs_after_response_share_pct"] / 100.0
        counted["nexs_after_response_share_of_cold_start_ms"] = share * timed["none_ms"]


def _generic(data: Any) -> Summary:
    """Numbers at the top level or one level down, for scripts with their own shape."""
    out: Summary = {}
    if isinstance(data, dict):
        for key, value in data.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                out[key] = float(value)
            elif isinstance(value, dict):
                for sub, inner in value.items():
                    if isinstance(inner, (int, float)) and not isinstance(inner, bool):
                        out[f"{key}.{sub}"] = float(inner)
    return out


BENCHMARKS: dict[str, tuple[str, list[str], list[str], Callable[[Any], Summary]]] = {
    "coldstart": ("bench_coldstart.py", ["--runs", "15"], ["--runs", "5"], _coldstart),
    "core": (
        "bench_core.py",
        ["--spans", "2000", "--repeat", "15"],
        ["--spans", "2000", "--repeat", "5", "--max-seconds", "20"],
        _core,
    ),
    "invocation": (
        "bench_invocation.py",
        ["--samples", "21", "--max-seconds", "120"],
        ["--samples", "5", "--max-seconds", "20"],
        _invocation,
    ),
    "export": (
        "bench_export.py",
        ["--repeats", "200"],
        ["--repeats", "40", "--sdk-dead-repeats", "1"],
        _export,
    ),
    "memory": ("bench_memory.py", ["--invocations", "10000"], ["--invocations", "2000"], _memory),
    "propagation": ("bench_propagation.py", [], [], _propagation),
    "sampling": ("bench_sampling.py", [], [], _generic),
    "redaction": ("bench_redaction.py", [], [], _generic),
    "lambda_coldstart": ("bench_lambda_coldstart.py", ["--runs", "21"], ["--runs", "7"], _lambda_coldstart),
    "lambda_instructions": ("bench_lambda_instructions.py", [], ["--seeds", "0"], _lambda_instructions),
}

# The issues' speed budgets: (benchmark, our metric, budget, unit, {peer metric: that peer's time on
# the issues' reference machine}). This machine's speed drifts (and its slowness is not ours), so
# besides the raw number each budget is judged on our time rescaled by how much slower the peer
# ran here than on the reference machine, in the same run: ours * reference / peer_here, which is
# reference / ratio (ratio = peer_here / ours); of several peers, the highest (least flattering)
# figure is kept. The micro-benchmarks also report their medians over samples taken while the
# machine ran at its quiet speed (`machine_speed`): those are judged as extra rows.
BUDGETS: list[tuple[str, str, float, str, dict[str, float]]] = [
    # issue 2: import + decorate <= 5 ms; OpenTelemetry SDK + OTLP ~170 ms, Powertools ~400 ms
    (
        "coldstart",
        "ours_import_ms",
        5.0,
        "ms",
        {"ratio_opentelemetry_sdk_otlp": 170.0, "ratio_powertools_tracer": 400.0},
    ),
    # issue 2: start + end of a span <= 2 us; the OpenTelemetry SDK ~30 us for the same work
    ("core", "ours_start_end_us_per_span", 2.0, "us", {"ratio_opentelemetry_sdk_start_end": 30.0}),
    (
        "core",
        "ours_start_end_quiet_us_per_span",
        2.0,
        "us",
        {"ratio_opentelemetry_sdk_start_end_quiet": 30.0},
    ),
    # issue 4: extract + inject <= 5 us (no reference figure for a peer: judged raw)
    ("propagation", "ours_default_us", 5.0, "us", {}),
    ("propagation", "ours_default_quiet_us", 5.0, "us", {}),
    # issue 5: first invocation <= +10 ms; the mission: OpenTelemetry's Lambda instrumentation
    # about +110 ms, Powertools' Tracer about +80 ms, for a function that imports boto3
    # End to end, judged by its paired 95% interval (`INTERVALS`), not rescaled: a peer's ratio to a
    # difference that is mostly noise says nothing about the reference machine.
    ("lambda_coldstart", "nexs_overhead_ms", 10.0, "ms", {}),
    # the same budget on the layer's own time inside the function (import, decorate, first call)
    (
        "lambda_coldstart",
        "nexs_inside_ms",
        10.0,
        "ms",
        {"ratio_otel_inside": 110.0, "ratio_powertools_inside": 80.0},
    ),
    ("lambda_coldstart", "nexs_inside_quiet_ms", 10.0, "ms", {}),
    # the same budget in instructions (valgrind): the layer's share of the cold start, as time at
    # the untraced cold start's median here; rescaled by the peers' instructions, not their times
    (
        "lambda_instructions",
        "nexs_share_of_cold_start_ms",
        10.0,
        "ms",
        {"ratio_otel_instr": 110.0, "ratio_powertools_instr": 80.0},
    ),
]


# Metrics measured with a 95% interval (low, high): met only when the whole interval is within
# the budget, not met when all of it is past it, inconclusive otherwise.
INTERVALS = {"nexs_overhead_ms": ("nexs_overhead_low_ms", "nexs_overhead_high_ms")}


def budgets(results: dict[str, Summary]) -> list[dict[str, Any]]:
    """Each budget: the raw number, the number rescaled to the reference machine, verdicts."""
    rows = []
    for bench, metric, budget, unit, references in BUDGETS:
        summary = results.get(bench, {})
        if metric not in summary:
            continue
        ours = summary[metric]
        rescaled = [ref / summary[ratio] for ratio, ref in references.items() if summary.get(ratio)]
        normalised = max(rescaled) if rescaled else None
        row: dict[str, Any] = {
            "benchmark": bench,
            "metric": metric,
            "budget": budget,
            "unit": unit,
            "measured": ours,
            "rescaled_to_reference": normalised,
            "met_raw": ours <= budget,
            "met_rescaled": (normalised if normalised is not None else ours) <= budget,
        }
        bounds = INTERVALS.get(metric)
        if bounds and all(bound in summary for bound in bounds):
            low, high = (summary[bound] for bound in bounds)
            row["interval"] = [low, high]
            row["met_raw"] = row["met_rescaled"] = high <= budget
            row["inconclusive"] = low <= budget < high
        rows.append(row)
    return rows


def _verdict(row: dict[str, Any]) -> str:
    if row.get("inconclusive"):
        low, high = row["interval"]
        return f"inconclusive (95% interval {low:.1f}..{high:.1f})"
    return f"{'met' if row['met_rescaled'] else 'NOT met'}{'' if row['met_raw'] else ' (raw: not met)'}"


QUICK = ("coldstart", "core", "invocation")


def run(name: str, quick: bool) -> Summary:
    """Run one benchmark script and summarise its JSON."""
    script, full, fast, summarise = BENCHMARKS[name]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.json"
        command = [sys.executable, str(SCRIPTS / script), *(fast if quick else full), "--json", str(out)]
        print(f"== {name}: {' '.join(command[1:])}", flush=True)
        subprocess.run(command, check=True, cwd=ROOT)
        return summarise(json.loads(out.read_text()))


def check(results: dict[str, Summary], baseline: dict[str, Any], tolerance: float) -> list[str]:
    """Ratios that fell below baseline / tolerance (higher ratios are better: peers slower than us)."""
    failures = []
    for bench, metrics in baseline.items():
        if not isinstance(metrics, dict):  # the "budgets" list of a stored full run
            continue
        for key, expected in metrics.items():
            if not key.startswith("ratio_") or bench not in results or key not in results[bench]:
                continue
            got = results[bench][key]
            if got < expected / tolerance:
                failures.append(f"{bench}.{key}: {got:.1f} < baseline {expected:.1f} / {tolerance}")
    return failures


def plot(results: dict[str, Summary], path: Path) -> None:
    """Bar chart of every ratio (log scale): how many times slower each peer is than us."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels, values = [], []
    for bench, metrics in results.items():
        for key, value in metrics.items():
            if key.startswith("ratio_"):
                labels.append(f"{bench}: {key.removeprefix('ratio_')}")
                values.append(value)
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(labels) + 1.2))
    ax.barh(labels, values, color="#2b7bba")
    ax.set_xscale("log")
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xlabel("peer time / nexs_serverless time (log scale; > 1 means we are faster)")
    for index, value in enumerate(values):
        ax.text(value, index, f" {value:.1f}x", va="center", fontsize=8)
    ax.invert_yaxis()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"small runs of {', '.join(QUICK)} only")
    parser.add_argument("--only", help="comma list of benchmarks")
    parser.add_argument("--json", default=str(ROOT / "bench-results" / "results.json"))
    parser.add_argument("--plot", help="write a PNG bar chart of the ratios here")
    parser.add_argument("--check", help="baseline JSON to compare ratios with")
    parser.add_argument("--tolerance", type=float, default=3.0)
    args = parser.parse_args()
    names = args.only.split(",") if args.only else list(QUICK if args.quick else BENCHMARKS)
    results: dict[str, Summary] = {}
    for name in names:
        if not (SCRIPTS / BENCHMARKS[name][0]).exists():
            print(f"== {name}: script missing, skipped")
            continue
        results[name] = run(name, args.quick)
    _instructions_as_time(results)
    verdicts = budgets(results)
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({**results, "budgets": verdicts}, indent=2, sort_keys=True))
    print("\nsummary")
    for bench, metrics in results.items():
        for key, value in metrics.items():
            print(f"  {bench:18} {key:36} {value:10.3f}")
    print("\nbudgets (rescaled: our time on the issues' reference machine, from the peers' slowdown here)")
    for row in verdicts:
        rescaled = row["rescaled_to_reference"]
        shown = f"{rescaled:8.2f}" if rescaled is not None else "     n/a"
        print(
            f"  {row['benchmark']:18} {row['metric']:30} budget {row['budget']:5.1f} {row['unit']:2}"
            f"  measured {row['measured']:8.2f}  rescaled {shown}"
            f"  {_verdict(row)}"
        )
    if args.plot:
        plot(results, Path(args.plot))
    if args.check:
        failures = check(results, json.loads(Path(args.check).read_text()), args.tolerance)
        for failure in failures:
            print("REGRESSION", failure)
        if failures:
            return 1
        print(f"ratios within {args.tolerance}x of the baseline")
    return 0


if __name__ == "__main__":
    sys.exit(main())
