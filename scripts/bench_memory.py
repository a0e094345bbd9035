"""Memory: RSS added by 10,000 traced invocations (each with 10 child spans), and whether it keeps growing.

Each variant runs in a fresh process: after a warm-up of 1,000 invocations the
RSS is read, then 10,000 more invocations run and it is read again. A bounded
tracer shows (almost) no growth between the two readings. Variants: ours (pool
on and off) and the OpenTelemetry SDK with a no-op exporter.

    python scripts/bench_memory.py [--invocations 10000] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = """
import json, resource, sys
def rss_kib():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
N = int(sys.argv[1])
{setup}
baseline = rss_kib()
for _ in range(1000):
    invoke()
warm = rss_kib()
for _ in range(N):
    invoke()
after = rss_kib()
print(json.dumps({"baseline_kib": baseline, "warm_kib": warm, "after_kib": after}))
"""

SETUPS = {
    "nexs_serverless": """
from nexs_serverless import configure, traced_handler, tracer
from nexs_serverless.exporters import ExportResult
from nexs_serverless.testing import LambdaContext
class NoOp:
    def export(self, spans): return ExportResult.SUCCESS
    def force_flush(self, timeout_millis=0): return True
    def shutdown(self): return None
configure(exporters=[NoOp()], pool_size={pool})
@traced_handler
def handler(event, context):
    for i in range(10):
        with tracer.span("child", attributes={{"i": i, "k": "v", "f": 1.5}}):
            pass
    return {{"statusCode": 200}}
context = LambdaContext(timeout_ms=60000)
event = {{"httpMethod": "GET", "resource": "/x", "path": "/x", "requestContext": {{}}}}
def invoke():
    handler(event, context)
""",
    "opentelemetry_sdk": """
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
class NoOp(SpanExporter):
    def export(self, spans): return SpanExportResult.SUCCESS
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(NoOp()))
tracer = provider.get_tracer("bench")
def invoke():
    with tracer.start_as_current_span("handler"):
        for i in range(10):
            with tracer.start_as_current_span("child", attributes={"i": i, "k": "v", "f": 1.5}):
                pass
""",
}


def run(invocations: int) -> dict[str, dict[str, int]]:
    """RSS readings per variant."""
    variants = {
        "nexs_serverless": SETUPS["nexs_serverless"].format(pool=256),
        "nexs_serverless_pool_off": SETUPS["nexs_serverless"].format(pool=0),
        "opentelemetry_sdk": SETUPS["opentelemetry_sdk"],
    }
    results: dict[str, dict[str, int]] = {}
    for name, setup in variants.items():
        code = CHILD.replace("{setup}", setup)
        out = subprocess.run(
            [sys.executable, "-c", code, str(invocations)], capture_output=True, text=True, check=True
        )
        results[name] = json.loads(out.stdout.strip().splitlines()[-1])
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invocations", type=int, default=10_000)
    parser.add_argument("--json")
    args = parser.parse_args()
    results = run(args.invocations)
    print(f"RSS after {args.invocations} invocations of 11 spans (KiB)")
    print(f"{'variant':28} {'added by warm-up':>16} {'growth after':>13}")
    for name, r in results.items():
        print(f"{name:28} {r['warm_kib'] - r['baseline_kib']:16d} {r['after_kib'] - r['warm_kib']:13d}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"invocations": args.invocations, "rss_kib": results}, fh, indent=2)


if __name__ == "__main__":
    main()
