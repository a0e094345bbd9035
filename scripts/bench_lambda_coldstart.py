"""End-to-end Lambda cold start with each tracer, under the real runtime client.

Harness (the one the runtime tests use): the Runtime API emulator
(tests/support/runtime_api.py) on 127.0.0.1, a function process started as the
managed Python runtime starts it (`awslambdaric`, ``_HANDLER``), and an OTLP
receiver (tests/support/otlp_receiver.py). One sample is one cold start: the
invocation is queued, the process is started, and the time from ``Popen`` to
the runtime posting its response is recorded; then the process is killed.

The function is realistic: it imports boto3 and creates a DynamoDB client at
init, and its handler builds a small response. Variants:

- ``none``: no tracer (the baseline every other one is compared to);
- ``nexs``: ``@traced_handler`` from the core layer (built for this Python,
  precompiled, unpacked into a temporary /opt), OTLP/HTTP to the receiver,
  flush on return (the export is inside the measured time);
- ``nexs_first``: the same function importing ``nexs_serverless`` before boto3
  (the layer's folder then answers boto3's import misses itself);
- ``nexs_zero_code``: the untraced function under the zero-code wrapper
  (``AWS_LAMBDA_EXEC_WRAPPER=/opt/nexs-handler``), which also imports the
  package before the function's module;
- ``nexs_after_response``: ``nexs`` with ``NEXS_FLUSH_MODE=after_response``
  (the export happens after the response);
- ``otel``: opentelemetry-instrumentation-aws-lambda with the SDK, a
  BatchSpanProcessor and the OTLP/HTTP exporter to the receiver, set up the
  way the OpenTelemetry Lambda layer's wrapper does (ORIG_HANDLER), without
  the other auto-instrumentations (the full layer loads more);
- ``powertools``: Powertools' ``Tracer`` with ``capture_lambda_handler``
  (X-Ray SDK, UDP to a local socket standing in for the X-Ray daemon). Its
  function folder hides the packages this venv has and a Lambda runtime does
  not (`bench_coldstart.NOT_IN_LAMBDA_RUNTIME`), which it would otherwise patch.

After the rounds, each ``nexs`` variant runs as many cold starts again with
stopwatches inside the function (``NEXS_ACCOUNTED``): the import, the
decoration and the first call of the decorated handler. Those medians are
steadier than the end-to-end difference, which carries the drift of ~600 ms
of boto3 init, but they miss background work that overlaps them.

Variants run in rounds, in a shuffled order each round, after one warm-up
round, so that machine noise and order effects hit them alike. Reported per
variant: the median end-to-end time, the median minus the baseline's, and the
median of the per-round differences. The budget (issue 5): ``nexs`` at most
10 ms over ``none``; the verdict needs the paired interval, not just its
median, on one side of it (`verdict`).

On a machine with two CPUs or more, the function process runs on one CPU and
this process (the emulator, the receiver) on another, so that they do not take
turns on one core; and the `machine_speed` canary is timed on the function's
CPU right before each cold start and right after its response. A cold start
whose two canaries both found that CPU at its quiet speed counts as quiet, and
the report adds each variant's median over its quiet cold starts (a cold start
is long enough for the machine to change state in between, so this narrows
the noise rather than removing it).

    python scripts/bench_lambda_coldstart.py [--runs 9] [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import resource
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "scripts"))

from bench_coldstart import hide_modules  # noqa: E402
from bench_invocation import drain  # noqa: E402
from build_layer import build_layer, unpack  # noqa: E402
from machine_speed import canary_ns, quiet_cut, split  # noqa: E402
from support.otlp_receiver import OTLPReceiver  # noqa: E402
from support.runtime_api import FunctionProcess, RuntimeAPI  # noqa: E402

BUDGET_MS = 10.0
CURRENT = f"{sys.version_info.major}.{sys.version_info.minor}"

FUNCTION = """\
import os

import boto3

TABLE = os.environ.get("ORDERS_TABLE", "orders")
dynamodb = boto3.client("dynamodb")


def lookup(order_id):
    return {"id": order_id, "table": TABLE, "region": dynamodb.meta.region_name}


def handler(event, context):
    return {"statusCode": 200, "body": lookup(event.get("order", "42"))}
"""

NEXS = FUNCTION.replace(
    "import boto3\n", "import boto3\nfrom nexs_serverless import traced_handler\n"
).replace("def handler(event, context):", "@traced_handler\ndef handler(event, context):")

# The same, importing this package before boto3 (as README advises): the layer's folder then
# answers boto3's import misses itself (`_preload.FolderFinder`).
NEXS_FIRST = NEXS.replace(
    "import boto3\nfrom nexs_serverless import traced_handler\n",
    "from nexs_serverless import traced_handler\n\nimport boto3\n",
)

# The same function with stopwatches around what the layer adds: the import, the decoration
# and the first call of the decorated handler (its body, ~0.02 ms, included). Timed inside the
# process, these do not carry the ~600 ms of boto3 init whose drift blurs the end-to-end
# difference; they leave out a background thread's work that overlaps them.
NEXS_ACCOUNTED = """\
import os
import sys
import time

import boto3

_started = time.perf_counter()
from nexs_serverless import traced_handler  # noqa: E402

_import_ms = (time.perf_counter() - _started) * 1000.0

TABLE = os.environ.get("ORDERS_TABLE", "orders")
dynamodb = boto3.client("dynamodb")


def lookup(order_id):
    return {"id": order_id, "table": TABLE, "region": dynamodb.meta.region_name}


_started = time.perf_counter()


@traced_handler
def traced(event, context):
    return {"statusCode": 200, "body": lookup(event.get("order", "42"))}


_decorate_ms = (time.perf_counter() - _started) * 1000.0


def _canary_ns():
    # scripts/machine_speed.py's canary, inlined: how fast the machine ran just then.
    best = float("inf")
    for _ in range(2):
        started = time.perf_counter()
        for _ in range(10000):
            pass
        best = min(best, (time.perf_counter() - started) / 10000 * 1e9)
    return best


def handler(event, context):
    started = time.perf_counter()
    try:
        return traced(event, context)
    finally:
        first_ms = (time.perf_counter() - started) * 1000.0
        canary = _canary_ns()
        print(
            f"NEXS_ACCOUNT {_import_ms:.3f} {_decorate_ms:.3f} {first_ms:.3f} {canary:.2f}",
            file=sys.stderr,
            flush=True,
        )
"""

POWERTOOLS = (
    FUNCTION.replace("import boto3\n", "import boto3\nfrom aws_lambda_powertools import Tracer\n")
    .replace(
        'dynamodb = boto3.client("dynamodb")\n',
        'tracer = Tracer(service="bench")\ndynamodb = boto3.client("dynamodb")\n',
    )
    .replace("def handler(event, context):", "@tracer.capture_lambda_handler\ndef handler(event, context):")
)

# What the OpenTelemetry Lambda layer's otel_wrapper does, with the SDK configured in code.
OTEL_WRAPPER = """\
import os
from importlib import import_module

from opentelemetry import metrics, trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.aws_lambda import AwsLambdaInstrumentor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

provider = TracerProvider(resource=Resource.create({"service.name": os.environ["OTEL_SERVICE_NAME"]}))
provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
trace.set_tracer_provider(provider)
# The layer's wrapper sets an SDK meter provider too; without one the instrumentation logs a
# warning at every invocation that it cannot flush metrics.
metrics.set_meter_provider(MeterProvider())
AwsLambdaInstrumentor().instrument()

_module, _function = os.environ["ORIG_HANDLER"].rsplit(".", 1)
lambda_handler = getattr(import_module(_module.replace("/", ".")), _function)
"""


def prepare(workdir: Path) -> tuple[Path, dict[str, Path]]:
    """Build and unpack the layer; write each variant's function folder."""
    archive = build_layer(python_version=CURRENT, arch="x86_64", out_dir=workdir / "dist", precompile=True)
    opt = workdir / "opt"
    unpack(archive, opt)  # keeps /opt/nexs-handler executable, as Lambda does
    folders = {}
    for name, files in {
        "none": {"app.py": FUNCTION},
        "nexs": {"app.py": NEXS, "accounted.py": NEXS_ACCOUNTED},
        "nexs_first": {"app.py": NEXS_FIRST},
        "otel": {"app.py": FUNCTION, "otel_wrapper.py": OTEL_WRAPPER},
        "powertools": {"app.py": POWERTOOLS},
    }.items():
        folder = workdir / name
        folder.mkdir()
        for file, text in files.items():
            (folder / file).write_text(text)
        folders[name] = folder
    hide_modules(folders["powertools"])
    return opt, folders


@contextlib.contextmanager
def harness(prefix: str) -> Iterator[tuple[Path, OTLPReceiver, socket.socket, dict[str, dict[str, object]]]]:
    """A work folder (layer and function folders), an OTLP receiver, a stand-in X-Ray daemon, the specs."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp, OTLPReceiver() as receiver:
        workdir = Path(tmp)
        daemon = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            daemon.bind(("127.0.0.1", 0))
            opt, folders = prepare(workdir)
            yield (
                workdir,
                receiver,
                daemon,
                variants(opt, folders, receiver, f"127.0.0.1:{daemon.getsockname()[1]}"),
            )
        finally:
            daemon.close()


def variants(
    opt: Path, folders: dict[str, Path], receiver: OTLPReceiver, daemon: str
) -> dict[str, dict[str, object]]:
    """How each variant's process is started: handler, code, layer, environment."""
    otlp = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "AWS_DEFAULT_REGION": "us-east-1"}
    return {
        "none": {"handler": "app.handler", "task_root": folders["none"], "env": {}},
        "nexs": {
            "handler": "app.handler",
            "task_root": folders["nexs"],
            "opt": opt,
            "env": {**otlp, "OTEL_TRACES_EXPORTER": "otlp", "OTEL_SERVICE_NAME": "nexs"},
        },
        "nexs_first": {
            "handler": "app.handler",
            "task_root": folders["nexs_first"],
            "opt": opt,
            "env": {**otlp, "OTEL_TRACES_EXPORTER": "otlp", "OTEL_SERVICE_NAME": "nexs_first"},
        },
        # The untraced function, traced by the zero-code wrapper (AWS_LAMBDA_EXEC_WRAPPER).
        "nexs_zero_code": {
            "handler": "app.handler",
            "task_root": folders["none"],
            "opt": opt,
            "wrapper": opt / "nexs-handler",
            "env": {**otlp, "OTEL_TRACES_EXPORTER": "otlp", "OTEL_SERVICE_NAME": "nexs_zero_code"},
        },
        "nexs_after_response": {
            "handler": "app.handler",
            "task_root": folders["nexs"],
            "opt": opt,
            "env": {
                **otlp,
                "OTEL_TRACES_EXPORTER": "otlp",
                "OTEL_SERVICE_NAME": "nexs_after_response",
                "NEXS_FLUSH_MODE": "after_response",
            },
        },
        "otel": {
            "handler": "otel_wrapper.lambda_handler",
            "task_root": folders["otel"],
            "env": {**otlp, "ORIG_HANDLER": "app.handler", "OTEL_SERVICE_NAME": "otel"},
        },
        "powertools": {
            "handler": "app.handler",
            "task_root": folders["powertools"],
            "env": {"AWS_XRAY_DAEMON_ADDRESS": daemon, "POWERTOOLS_SERVICE_NAME": "bench"},
        },
    }


def _cpus() -> tuple[set[int], set[int]] | None:
    """(this process's CPUs, the function's CPU) when there are two or more to keep apart."""
    if not hasattr(os, "sched_getaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))
    return (set(cpus[:-1]), {cpus[-1]}) if len(cpus) > 1 else None


def _canary_on(cpus: set[int] | None) -> float:
    """`canary_ns` run on `cpus` (this thread moves there and back), or where it is."""
    if cpus is None:
        return canary_ns()
    home = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        return canary_ns()
    finally:
        os.sched_setaffinity(0, home)


def cold_start(spec: dict[str, object], log_path: Path) -> tuple[float, float, float]:
    """One cold start: ms from process start to the posted response, the process's CPU ms, a canary.

    The CPU time (user + system of the reaped child) is the steadier figure on
    a shared machine; for ``nexs_after_response`` it also counts the export
    done after the response. The canary is the slower of the two timed on the
    function's CPU before the start and after the response (`machine_speed`).
    """
    placement = _cpus()
    function_cpus = placement[1] if placement else None
    canary = _canary_on(function_cpus)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with RuntimeAPI() as api:
        invocation = api.submit(
            {"order": "42"},
            trace_id="Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
        )
        process = FunctionProcess(
            api,
            handler=str(spec["handler"]),
            task_root=Path(str(spec["task_root"])),
            opt=spec.get("opt"),  # type: ignore[arg-type]
            wrapper=spec.get("wrapper"),  # type: ignore[arg-type]
            env=dict(spec["env"]),  # type: ignore[call-overload]
            log_path=log_path,
        )
        started = time.monotonic()
        process.start()
        if function_cpus is not None and process.process is not None:
            # Set before the interpreter has started up (Popen returns once exec succeeded).
            os.sched_setaffinity(process.process.pid, function_cpus)
        try:
            if not invocation.finished.wait(60):
                raise RuntimeError(f"no response; log:\n{process.output()}")
            if invocation.response is None:
                raise RuntimeError(f"error {invocation.error}; log:\n{process.output()}")
            elapsed_ms = (invocation.posted_at - started) * 1000.0
            canary = max(canary, _canary_on(function_cpus))
            api.wait_idle(10)  # let an after-response export finish before the process goes
        finally:
            process.kill()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_ms = (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) * 1000.0
    return elapsed_ms, cpu_ms, canary


def account(spec: dict[str, object], runs: int, folder: Path) -> dict[str, float]:
    """Medians of the stopwatches `NEXS_ACCOUNTED` prints, over `runs` cold starts of `spec`."""
    folder.mkdir(exist_ok=True)
    rows: list[tuple[float, float, float]] = []
    canaries: list[float] = []
    for index in range(runs):
        log = folder / f"accounted-{index}.log"
        cold_start(spec, log)
        line = next(line for line in log.read_text().splitlines() if line.startswith("NEXS_ACCOUNT "))
        imported, decorated, first, canary = (float(field) for field in line.split()[1:5])
        rows.append((imported, decorated, first))
        canaries.append(canary)
    # The canary ran in the function right after the stopwatches: it tells the cold starts the
    # machine ran quiet from the contended ones (scripts/machine_speed.py has the why).
    quiet = split([(canary, sum(row)) for canary, row in zip(canaries, rows, strict=True)])
    return {
        "inside_import_ms": statistics.median(row[0] for row in rows),
        "inside_decorate_ms": statistics.median(row[1] for row in rows),
        "inside_first_ms": statistics.median(row[2] for row in rows),
        "inside_ms": statistics.median(sum(row) for row in rows),
        "inside_quiet_ms": quiet["quiet_median"],
        "inside_quiet_runs": quiet["quiet_samples"],
    }


def _requests_from(receiver: OTLPReceiver, service: str) -> int:
    """OTLP requests whose resource is `service` (each variant exports under its own name)."""
    return sum(
        1
        for received in receiver.requests
        for spans in received.request.resource_spans
        for attribute in spans.resource.attributes
        if attribute.key == "service.name" and attribute.value.string_value == service
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=9, help="cold starts per variant (at least 7)")
    parser.add_argument("--json", type=Path, help="write the samples and medians here")
    parser.add_argument(
        "--variants",
        help="comma list of the variants to run (default: all); none is always one of them, being"
        " the baseline. Fewer variants make room for more rounds, and a narrower paired interval.",
    )
    args = parser.parse_args(argv)
    if args.runs < 7:
        parser.error("--runs must be at least 7")
    placement = _cpus()
    if placement is not None:  # before the harness starts its threads: they inherit it
        os.sched_setaffinity(0, placement[0])
    with harness("nexs-bench-") as (workdir, receiver, daemon, every):
        specs = every
        if args.variants:
            chosen = {"none", *args.variants.split(",")}
            unknown = chosen - set(every)
            if unknown:
                parser.error(f"unknown variants {sorted(unknown)}; known: {', '.join(every)}")
            specs = {name: spec for name, spec in every.items() if name in chosen}
        wall: dict[str, list[float]] = {name: [] for name in specs}
        cpu: dict[str, list[float]] = {name: [] for name in specs}
        canaries: dict[str, list[float]] = {name: [] for name in specs}
        for name, spec in specs.items():  # warm-up: page cache and pyc files, not recorded
            cold_start(spec, workdir / f"{name}-warmup.log")
        for round_index in range(args.runs):
            order = list(specs)
            random.Random(round_index).shuffle(order)  # no variant always runs first or last
            for name in order:
                wall_ms, cpu_ms, canary = cold_start(specs[name], workdir / f"{name}-{round_index}.log")
                wall[name].append(wall_ms)
                cpu[name].append(cpu_ms)
                canaries[name].append(canary)
            print(f"round {round_index + 1}/{args.runs}", file=sys.stderr)
        inside = {
            name: account(
                # its own service name, so the export counts below stay one per measured cold start
                dict(
                    specs[name],
                    handler="accounted.handler",
                    env={**specs[name]["env"], "OTEL_SERVICE_NAME": f"{name}_accounted"},  # type: ignore[dict-item]
                ),
                args.runs,
                workdir / name,
            )
            for name in ("nexs", "nexs_after_response")
            if name in specs
        }
        daemon.setblocking(False)
        datagrams = drain(daemon) if "powertools" in specs else None
        exported = {
            name: _requests_from(receiver, name) for name in specs if name.startswith(("nexs", "otel"))
        }
    # Every traced cold start (the rounds and the warm-up) exported: a tracer that sent nothing
    # would have been timed doing less than it does on Lambda.
    counts = exported if datagrams is None else {**exported, "powertools": datagrams}
    short = {name: count for name, count in counts.items() if count < args.runs + 1}
    if short:
        raise RuntimeError(f"fewer exports than cold starts ({args.runs + 1}): {short}")
    report = summarise(wall, cpu, canaries)
    for name, numbers in inside.items():
        report[name].update(numbers)
    print(
        f"\nend-to-end cold start (process start -> response), {args.runs} cold starts each, Python {CURRENT}"
    )
    header = f"{'variant':<22}{'median ms':>11}{'- none':>9}{'paired':>9}{'95% CI':>16}"
    print(header + f"{'CPU ms':>9}{'- none':>9}{'quiet ms':>10}{'- none':>9}{'quiet':>7}")
    for name, row in report.items():
        interval = f"{row['paired_overhead_low_ms']:.1f}..{row['paired_overhead_high_ms']:.1f}"
        print(
            f"{name:<22}{row['median_ms']:>11.1f}{row['overhead_ms']:>9.1f}{row['paired_overhead_ms']:>9.1f}"
            f"{interval:>16}{row['cpu_ms']:>9.1f}{row['cpu_overhead_ms']:>9.1f}"
            f"{row['quiet_median_ms']:>10.1f}{row['quiet_overhead_ms']:>9.1f}{row['quiet_runs']:>7.0f}"
        )
    print("\ninside the process (medians; stopwatches around the layer's parts, see NEXS_ACCOUNTED):")
    for name in inside:
        row = report[name]
        print(
            f"  {name:<22} import {row['inside_import_ms']:.2f} + decorate {row['inside_decorate_ms']:.2f}"
            f" + first invocation {row['inside_first_ms']:.2f} = {row['inside_ms']:.2f} ms;"
            f" {row['inside_quiet_ms']:.2f} ms over the {row['inside_quiet_runs']:.0f} cold starts"
            " on a quiet machine"
        )
    print(f"\nOTLP requests per variant: {exported}; X-Ray datagrams (powertools): {datagrams}")
    if "nexs" in report:
        print(verdict(report["nexs"]))
    if args.json:
        payload = {
            "python": CURRENT,
            "runs": args.runs,
            "wall": wall,
            "cpu": cpu,
            "canary_ns": canaries,
            "report": report,
        }
        args.json.write_text(json.dumps(payload, indent=1))
    return 0


def verdict(row: dict[str, float]) -> str:
    """The budget's verdict from the paired interval and the stopwatches, never from a median alone.

    A paired median inside the budget with an interval reaching past it is
    noise, not a pass: met needs the whole interval within the budget, over
    needs the whole interval past it or the in-function stopwatches alone
    past it (they leave out the layer's folder and the background work, so
    the end-to-end figure can only be larger).
    """
    low, high = row["paired_overhead_low_ms"], row["paired_overhead_high_ms"]
    paired = row["paired_overhead_ms"]
    inside = row.get("inside_ms", float("nan"))
    head = f"nexs overhead {paired:.1f} ms (paired median, 95% interval {low:.1f}..{high:.1f} ms), "
    head += f"{inside:.1f} ms inside the function: "
    if inside > BUDGET_MS:
        return head + f"OVER the {BUDGET_MS:.0f} ms budget (the in-function time alone is past it)"
    if high <= BUDGET_MS:
        return head + f"within the {BUDGET_MS:.0f} ms budget"
    if low > BUDGET_MS:
        return head + f"OVER the {BUDGET_MS:.0f} ms budget"
    return head + f"inconclusive (the interval spans the {BUDGET_MS:.0f} ms budget)"


def summarise(
    wall: dict[str, list[float]], cpu: dict[str, list[float]], canaries: dict[str, list[float]]
) -> dict[str, dict[str, float]]:
    """Per variant: median wall and CPU ms, and their overhead over ``none`` (plain and per round).

    Also the median wall time over the cold starts whose canaries found the
    machine quiet (one line for all variants: `machine_speed.quiet_cut`), and
    its difference from the baseline's (NaN when either has none).
    """
    base, base_cpu = statistics.median(wall["none"]), statistics.median(cpu["none"])
    cut = quiet_cut([canary for values in canaries.values() for canary in values])
    quiet = {
        name: split(list(zip(canaries[name], values, strict=True)), cut) for name, values in wall.items()
    }
    base_quiet = quiet["none"]["quiet_median"]
    report = {}
    for name, values in wall.items():
        median = statistics.median(values)
        paired = sorted(v - b for v, b in zip(values, wall["none"], strict=True))
        low, high = median_interval(paired)
        report[name] = {
            "median_ms": median,
            "overhead_ms": median - base,
            "paired_overhead_ms": statistics.median(paired),
            "paired_overhead_low_ms": low,
            "paired_overhead_high_ms": high,
            "cpu_ms": statistics.median(cpu[name]),
            "cpu_overhead_ms": statistics.median(cpu[name]) - base_cpu,
            "quiet_median_ms": quiet[name]["quiet_median"],
            "quiet_overhead_ms": quiet[name]["quiet_median"] - base_quiet,
            "quiet_runs": quiet[name]["quiet_samples"],
        }
    return report


def median_interval(ordered: list[float]) -> tuple[float, float]:
    """A distribution-free ~95% confidence interval for the median of `ordered` (sorted).

    The k-th smallest and k-th largest samples, k = floor((n - 1.96 sqrt(n)) / 2) (the normal
    approximation to the binomial): on a machine whose speed drifts, this says whether a
    budget is clearly met, clearly missed, or within the noise of the run.
    """
    n = len(ordered)
    k = int((n - 1.96 * n**0.5) / 2)
    if k < 1:
        return ordered[0], ordered[-1]
    return ordered[k - 1], ordered[n - k]


if __name__ == "__main__":
    sys.exit(main())
