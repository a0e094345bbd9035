"""The Lambda cold start in instructions: what each tracer adds, counted, not timed.

Why: on this shared VM the end-to-end cold start (`bench_lambda_coldstart.py`)
drifts by tens of milliseconds from one sample to the next, ten times the
layer's budget (issue 5), because every sample carries ~600 ms of boto3 init
run at whatever speed the machine has at that moment. The number of
instructions a process executes does not depend on that speed: counted with
valgrind (cachegrind, no cache simulation) it repeats to within 0.1% across
runs and hash seeds. So this benchmark counts the instructions of the same
cold start for each variant, and reports what each tracer adds to the
untraced function, and the peers' additions as multiples of ours.

One sample: a fresh process started as Lambda starts one (the same
environment, layer and function folders as `bench_lambda_coldstart.py`) runs
the runtime's bootstrap under `awslambdaric` against the Runtime API emulator,
which has one invocation queued (with the X-Ray header Lambda sends): the
client's imports, the layer's folders and the task root on the path, the
handler's module, the invocation, and the post of its response, after which
the process leaves with `os._exit` (no shutdown work, and nothing an
after-response export does, is counted). The tracers export inside the call:
ours and OpenTelemetry's to a local OTLP receiver, Powertools' to a UDP socket
standing in for the X-Ray daemon; ``nexs_after_response`` registers its
extension during init and hands its spans over, exporting after the post.

Variants: ``none``; ``none_layer_dir`` (the untraced function with our
unpacked layer on ``sys.path`` and unused: what any layer costs, because
every later top-level import also searches its folder); ``nexs``;
``nexs_first`` (the package imported before boto3) and ``nexs_zero_code``
(the untraced function wrapped by ``nexs_serverless.wrapper``, as
``/opt/nexs-handler`` arranges): after the package's import the layer's
folder answers import misses itself; ``nexs_after_response``
(``NEXS_FLUSH_MODE=after_response``); ``otel``; ``powertools``. Not counted:
the kernel's work (page faults, system calls) and waiting (the export's
round trip, the emulator's answers), which the in-function stopwatches of
`bench_lambda_coldstart.py` include.

    python scripts/bench_lambda_instructions.py [--seeds 0,1] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "scripts"))

from bench_lambda_coldstart import _requests_from, harness  # noqa: E402
from support.runtime_api import BOOTSTRAP, FunctionProcess, RuntimeAPI  # noqa: E402

# What the issues quote for the peers' first-invocation overhead on their reference machine (ms).
QUOTED_MS = {"otel": 110.0, "powertools": 80.0}
TRACE_HEADER = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"

# The cold start as the runtime client drives it, up to the post of the first response: the
# runtime's bootstrap (its imports, then the layer's folders and the task root on the path, then
# the client's loop), with the client's post of a result made to leave the process right after.
DRIVER = BOOTSTRAP.replace(
    "main([",
    """import awslambdaric.lambda_runtime_client as _client
_post = _client.LambdaRuntimeClient.post_invocation_result
def _post_then_leave(self, *args, **kwargs):
    _post(self, *args, **kwargs)
    sys.stdout.flush()
    os._exit(0)
_client.LambdaRuntimeClient.post_invocation_result = _post_then_leave
main([""",
)
assert DRIVER != BOOTSTRAP


def instructions(spec: dict[str, object], seed: str, log: Path) -> int:
    """Instructions executed by one cold start of `spec` up to its first response (valgrind's ``I refs``)."""
    handler, env = str(spec["handler"]), {**dict(spec["env"]), "PYTHONHASHSEED": seed}  # type: ignore[call-overload]
    if spec.get("wrapper"):  # what /opt/nexs-handler does before it execs the runtime
        handler, env["NEXS_ORIGINAL_HANDLER"] = "nexs_serverless.wrapper.handler", handler
    with RuntimeAPI() as api:
        invocation = api.submit({"order": "42"}, trace_id=TRACE_HEADER)
        process = FunctionProcess(
            api,
            handler=handler,
            task_root=Path(str(spec["task_root"])),
            opt=spec.get("opt"),  # type: ignore[arg-type]
            env=env,
            log_path=log,
        )
        python, flag, _ = process.command
        command = [
            "valgrind",
            "--tool=cachegrind",
            "--cache-sim=no",
            "--cachegrind-out-file=/dev/null",
            python,
            flag,
            DRIVER,
        ]
        done = subprocess.run(
            command,
            env=process.env,
            cwd=process.env["LAMBDA_TASK_ROOT"],
            capture_output=True,
            text=True,
            check=False,
        )
        found = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
        if done.returncode != 0 or found is None or invocation.response is None:
            raise RuntimeError(f"{spec['handler']} failed ({done.returncode}):\n{done.stderr[-2000:]}")
        if env.get("NEXS_FLUSH_MODE") == "after_response" and not api.registrations:
            # Fallen back to flush-on-return: it would be counted doing another variant's work.
            raise RuntimeError(f"{spec['handler']} registered no extension:\n{done.stderr[-2000:]}")
    return int(found.group(1).replace(",", ""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seeds", default="0,1", help="PYTHONHASHSEED values, one sample each per variant")
    parser.add_argument("--json", type=Path, help="write the counts and the summary here")
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        print("valgrind is not installed: nothing measured", file=sys.stderr)
        if args.json:
            args.json.write_text(json.dumps({"skipped": "valgrind is not installed"}))
        return 0
    seeds = args.seeds.split(",")
    with harness("nexs-instr-") as (workdir, receiver, daemon, specs):
        specs["none_layer_dir"] = dict(specs["none"], opt=specs["nexs"]["opt"])
        counts: dict[str, list[int]] = {name: [] for name in specs}
        daemon.settimeout(1.0)
        for seed in seeds:
            for name, spec in specs.items():
                counts[name].append(instructions(spec, seed, workdir / f"{name}-{seed}.log"))
                print(f"seed {seed} {name:<15} {counts[name][-1]:>15,} instructions", file=sys.stderr)
                if name == "powertools":  # its one datagram per cold start, read as it goes
                    try:
                        daemon.recv(65536)
                    except TimeoutError:
                        raise RuntimeError("powertools sent no datagram to the X-Ray daemon") from None
        # Each traced variant exported from every cold start counted: one that sent nothing
        # would have been counted doing less than it does on Lambda.
        # (The after-response variant exports after the post, which is not counted: it left before.)
        exported = {
            name: _requests_from(receiver, name)
            for name in specs
            if name.startswith(("nexs", "otel")) and name != "nexs_after_response"
        }
    if min(exported.values()) < len(seeds):
        raise RuntimeError(f"OTLP requests per variant {exported}, for {len(seeds)} cold starts each")
    mean = {name: statistics.mean(values) for name, values in counts.items()}
    added = {name: mean[name] - mean["none"] for name in mean if name != "none"}
    ours = added["nexs"]
    summary: dict[str, float] = {
        "none_minstr": mean["none"] / 1e6,
        "nexs_added_minstr": ours / 1e6,
        "layer_dir_added_minstr": added["none_layer_dir"] / 1e6,
        "nexs_first_added_minstr": added["nexs_first"] / 1e6,
        "nexs_zero_code_added_minstr": added["nexs_zero_code"] / 1e6,
        "nexs_after_response_added_minstr": added["nexs_after_response"] / 1e6,
        "nexs_share_pct": 100.0 * ours / mean["none"],
        "nexs_after_response_share_pct": 100.0 * added["nexs_after_response"] / mean["none"],
        "spread_minstr": max(max(v) - min(v) for v in counts.values()) / 1e6,
    }
    for peer, quoted in QUOTED_MS.items():
        summary[f"{peer}_added_minstr"] = added[peer] / 1e6
        summary[f"ratio_{peer}_instr"] = added[peer] / ours
        summary[f"nexs_rescaled_by_{peer}_ms"] = quoted * ours / added[peer]
    spread, base = summary["spread_minstr"], mean["none"] / 1e6
    print(f"\nLambda cold start, instructions to the first response, hash seeds {', '.join(seeds)}")
    print(f"(spread within a variant at most {spread:.2f} M); added to the untraced function's {base:.1f} M:")
    for name, value in added.items():
        share = 100.0 * value / mean["none"]
        print(f"  {name:<15} +{value / 1e6:7.2f} M ({share:5.2f}%)  {value / ours:5.1f}x ours")
    for peer, quoted in QUOTED_MS.items():
        print(
            f"rescaled by {peer} (its first invocation quoted at +{quoted:.0f} ms on the reference machine):"
            f" ours +{summary[f'nexs_rescaled_by_{peer}_ms']:.1f} ms"
        )
    if args.json:
        args.json.write_text(
            json.dumps({"seeds": seeds, "instructions": counts, "summary": summary}, indent=1)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
