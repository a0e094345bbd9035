"""Cold-start cost of `import nexs_serverless` + decorating a handler, against the peers.

Each sample is a fresh interpreter that first imports `awslambdaric.bootstrap`
(what the Lambda runtime has loaded when it imports the user's module), then
times, in-process, the import of the tracer and the decoration of a handler.
Variants run interleaved so that machine noise hits them alike; the report is
the median per variant and its ratio to ours. The whole-process wall time of
each variant minus the bare baseline is reported too.

``nexs_serverless`` imports the package as Lambda does: from the core layer,
built for this Python and unpacked (its modules come from the layer's bundle,
``nexs_serverless/_preload.py``). ``nexs_serverless_source`` imports the
source tree, with a .pyc per module, as a pip install would.

    python scripts/bench_coldstart.py --runs 15 [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

# gc.collect() before timing: the runtime's own imports leave a pending generation-1
# collection (about 2 ms here) that the first few hundred allocations of *any* code
# would pay; collecting it first keeps that debt out of every variant alike.
PRELUDE = "import awslambdaric.bootstrap, time, sys, gc\ngc.collect()\nt0 = time.perf_counter()\n"
EPILOGUE = "\nprint((time.perf_counter() - t0) * 1e3)\n"

VARIANTS: dict[str, str] = {
    "baseline": "",
    "nexs_serverless": (
        "from nexs_serverless import traced_handler, tracer\n"
        "@traced_handler\n"
        "def handler(event, context):\n"
        "    return 1\n"
    ),
    "nexs_serverless_source": (
        "from nexs_serverless import traced_handler, tracer\n"
        "@traced_handler\n"
        "def handler(event, context):\n"
        "    return 1\n"
    ),
    "opentelemetry_sdk_otlp": (
        "from opentelemetry import trace\n"
        "from opentelemetry.sdk.trace import TracerProvider\n"
        "from opentelemetry.sdk.trace.export import BatchSpanProcessor\n"
        "from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter\n"
        "provider = TracerProvider()\n"
        "provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint='http://127.0.0.1:9/v1/traces')))\n"
        "trace.set_tracer_provider(provider)\n"
        "tracer = trace.get_tracer('bench')\n"
        "def handler(event, context):\n"
        "    return 1\n"
    ),
    "powertools_tracer": (
        "from aws_lambda_powertools import Tracer\n"
        "tracer = Tracer(service='bench', disabled=False)\n"
        "@tracer.capture_lambda_handler\n"
        "def handler(event, context):\n"
        "    return 1\n"
        # Checked inside the timing but free: the modules are loaded. A mistake here would
        # time another code path than Lambda's.
        "from aws_xray_sdk.core import xray_recorder\n"
        "assert type(xray_recorder.context).__name__ == 'LambdaContext', 'X-Ray SDK not in Lambda mode'\n"
        "assert 'httpx' not in sys.modules and 'requests' not in sys.modules, 'patched what Lambda lacks'\n"
    ),
}

# Packages this development venv has and a Lambda Python runtime does not (nor Powertools'
# layer). Powertools' Tracer patches every library the X-Ray SDK supports that it can import,
# so here it would import and patch these (about 100 ms): on Lambda it could not.
NOT_IN_LAMBDA_RUNTIME = ("httpx", "requests")


def hide_modules(folder: Path, names: tuple[str, ...] = NOT_IN_LAMBDA_RUNTIME) -> None:
    """Write modules into `folder` (put first on the path) that fail to import as absent ones do."""
    for name in names:
        (folder / f"{name}.py").write_text(
            f"raise ImportError({name!r} ' is not in the Lambda Python runtime (hidden by the benchmark)')\n"
        )


ENV_EXTRA = {
    # LAMBDA_TASK_ROOT (set per run to a temporary folder) puts the X-Ray SDK under Powertools
    # in Lambda mode; without it, it sets up centralised sampling (a botocore session) instead.
    "AWS_LAMBDA_FUNCTION_NAME": "bench",
    "AWS_REGION": "us-east-1",
    "AWS_XRAY_SDK_ENABLED": "true",
    "POWERTOOLS_TRACE_DISABLED": "false",
}


def sample(code: str, env: dict[str, str], cwd: str) -> tuple[float, float]:
    """(in-process ms, whole-process ms) for one fresh interpreter.

    `cwd` matters: ``python -c`` puts it first on ``sys.path``, ahead of ``PYTHONPATH``,
    so it must not hold a ``nexs_serverless`` folder other than the one measured.
    """
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", PRELUDE + code + EPILOGUE],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        cwd=cwd,
    )
    wall = (time.perf_counter() - started) * 1e3
    return float(out.stdout.strip().splitlines()[-1]), wall


def run(runs: int, variants: list[str]) -> dict[str, dict[str, float]]:
    """Median in-process and whole-process times per variant."""
    import os
    import tempfile
    import zipfile

    from build_layer import build_layer

    env = {**os.environ, **ENV_EXTRA, "LAMBDA_TASK_ROOT": tempfile.gettempdir()}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # measure with bytecode caches, as a layer ships them
    # Import the package from a plain sys.path entry (a layer's /opt/python, or the source
    # tree), not through an editable install's import hook.
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    source_env = {**env, "PYTHONPATH": root + os.pathsep + env.get("PYTHONPATH", "")}
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", os.path.join(root, "nexs_serverless")],
        check=True,
        env=source_env,
    )
    with tempfile.TemporaryDirectory(prefix="nexs-coldstart-") as tmp:
        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        archive = build_layer(python_version=version, out_dir=Path(tmp), precompile=True)
        with zipfile.ZipFile(archive) as layer:
            layer.extractall(Path(tmp) / "opt")
        loaded_from = subprocess.run(
            [sys.executable, "-c", "import nexs_serverless; print(nexs_serverless.__file__)"],
            capture_output=True,
            text=True,
            env={**env, "PYTHONPATH": str(Path(tmp) / "opt" / "python")},
            check=True,
            cwd=tmp,
        ).stdout.strip()
        if not loaded_from.startswith(tmp):
            raise RuntimeError(f"the layer's package is shadowed by {loaded_from}")
        layer_env = {
            **env,
            "PYTHONPATH": str(Path(tmp) / "opt" / "python") + os.pathsep + env.get("PYTHONPATH", ""),
        }
        hidden = Path(tmp) / "not-in-lambda"
        hidden.mkdir()
        hide_modules(hidden)
        powertools_env = {**source_env, "PYTHONPATH": str(hidden) + os.pathsep + source_env["PYTHONPATH"]}
        envs = dict.fromkeys(variants, source_env) | {
            "nexs_serverless": layer_env,
            "powertools_tracer": powertools_env,
        }
        inproc: dict[str, list[float]] = {name: [] for name in variants}
        wall: dict[str, list[float]] = {name: [] for name in variants}
        for name in variants:  # warm the bytecode caches and the page cache once
            sample(VARIANTS[name], envs[name], tmp)
        for _ in range(runs):
            for name in variants:
                a, b = sample(VARIANTS[name], envs[name], tmp)
                inproc[name].append(a)
                wall[name].append(b)
    base_wall = statistics.median(wall["baseline"]) if "baseline" in wall else 0.0
    return {
        name: {
            "import_ms_median": statistics.median(inproc[name]),
            "process_ms_median": statistics.median(wall[name]),
            "process_added_ms_median": statistics.median(wall[name]) - base_wall,
        }
        for name in variants
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--json", help="write results here")
    args = parser.parse_args()
    variants = [v for v in args.variants.split(",") if v]
    if "baseline" not in variants:
        variants.insert(0, "baseline")
    results = run(args.runs, variants)
    ours = results.get("nexs_serverless", {}).get("import_ms_median", 0.0)
    print(f"cold start: median of {args.runs} fresh processes after awslambdaric.bootstrap")
    print(f"{'variant':28} {'import+decorate ms':>18} {'process +ms':>12} {'x ours':>8}")
    for name, r in results.items():
        ratio = r["import_ms_median"] / ours if ours else float("nan")
        print(f"{name:28} {r['import_ms_median']:18.2f} {r['process_added_ms_median']:12.2f} {ratio:8.1f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"runs": args.runs, "results": results}, fh, indent=2)


if __name__ == "__main__":
    main()
