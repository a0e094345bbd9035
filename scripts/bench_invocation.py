"""A warm invocation: a handler with 10 child spans, flushed to a local OTLP receiver, against the peers.

Every variant exports to the same receiver (started as its own process by
`bench_export.py --serve`, so it does not share our GIL) over HTTP:

- ``nexs_serverless``: `@traced_handler`, OTLP/HTTP exporter, flush on return.
- ``nexs_serverless_xray_udp``: the same with the X-Ray exporter over UDP (segment documents),
  the like-for-like comparison with Powertools.
- ``opentelemetry_lambda``: `opentelemetry-instrumentation-aws-lambda` with the SDK and its
  OTLP/HTTP exporter behind a BatchSpanProcessor, set up as the OpenTelemetry Lambda layer's
  wrapper does (the instrumentation force-flushes after every invocation).
- ``powertools_tracer``: Powertools' `Tracer` (the X-Ray SDK) sending to a UDP socket that
  stands in for the X-Ray daemon (its only transport), for scale.
- ``untraced``: the bare handler, to show the absolute cost.

Each variant runs in a worker process of its own (tracers keep process-wide
state). A sample is the median time of one warm invocation over `--calls`
calls, with `machine_speed`'s canary timed before and after it in the worker;
samples are interleaved round by round across the variants until each has
`--samples` samples on a quiet machine, or `--max-seconds` pass. Reported: the
median over all samples and over the quiet ones (`machine_speed` says why).

    python scripts/bench_invocation.py [--calls 40] [--samples 21] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from machine_speed import quiet_cut, sample_measured, split  # noqa: E402

EVENT = {"httpMethod": "GET", "resource": "/orders", "path": "/orders", "requestContext": {}, "headers": {}}


def work(span: Callable[..., object]) -> None:
    for index in range(10):
        with span("child", attributes={"index": index, "kind": "db", "ratio": 0.5}):  # type: ignore[attr-defined]
            pass


def ours(endpoint: str, daemon: str | None = None) -> Callable[[], object]:
    from nexs_serverless import configure, traced_handler, tracer
    from nexs_serverless.exporters import OTLPHttpExporter, XRayExporter
    from nexs_serverless.testing import LambdaContext

    exporter = (
        XRayExporter(daemon_address=daemon, transport="udp", mode="segments")
        if daemon
        else OTLPHttpExporter(endpoint=endpoint)
    )
    configure(exporters=[exporter], environ={})

    @traced_handler
    def handler(event: object, context: object) -> dict[str, int]:
        work(tracer.span)
        return {"statusCode": 200}

    context = LambdaContext(timeout_ms=600_000)
    return lambda: handler(EVENT, context)


OTEL_APP = """
from opentelemetry import trace

tracer = trace.get_tracer("bench")


def handler(event, context):
    for index in range(10):
        with tracer.start_as_current_span("child", attributes={"index": index, "kind": "db", "ratio": 0.5}):
            pass
    return {"statusCode": 200}
"""


def opentelemetry_lambda(endpoint: str) -> Callable[[], object]:
    """`opentelemetry-instrumentation-aws-lambda` as the OpenTelemetry Lambda layer's wrapper sets it up."""
    import importlib
    import tempfile

    folder = tempfile.mkdtemp(prefix="nexs-bench-otel-")
    Path(folder, "otel_bench_app.py").write_text(OTEL_APP)
    sys.path.insert(0, folder)
    os.environ["_HANDLER"] = os.environ["ORIG_HANDLER"] = "otel_bench_app.handler"
    os.environ.setdefault("AWS_LAMBDA_FUNCTION_NAME", "bench")
    from opentelemetry import metrics, trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.aws_lambda import AwsLambdaInstrumentor
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    trace.set_tracer_provider(provider)
    # The layer's wrapper sets an SDK meter provider too; without one the instrumentation logs a
    # warning on every invocation that it cannot flush metrics (time the layer would not spend).
    metrics.set_meter_provider(MeterProvider())
    AwsLambdaInstrumentor().instrument()  # wraps ORIG_HANDLER; force_flush after every invocation
    handler = importlib.import_module("otel_bench_app").handler
    from nexs_serverless.testing import LambdaContext

    context = LambdaContext(timeout_ms=600_000)
    return lambda: handler(EVENT, context)


def powertools(daemon: str) -> Callable[[], object]:
    # The X-Ray SDK records only in Lambda mode, which it detects from LAMBDA_TASK_ROOT; without
    # it there is no segment to attach to, `context_missing` hides that, and nothing is sent.
    os.environ["LAMBDA_TASK_ROOT"] = os.environ.get("TMPDIR", "/tmp")
    os.environ["AWS_XRAY_DAEMON_ADDRESS"] = daemon
    os.environ["POWERTOOLS_TRACE_DISABLED"] = "false"
    os.environ["AWS_LAMBDA_FUNCTION_NAME"] = "bench"
    os.environ["_X_AMZN_TRACE_ID"] = (
        "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
    )
    from aws_lambda_powertools import Tracer
    from aws_xray_sdk.core import xray_recorder

    xray_recorder.configure(context_missing="IGNORE_ERROR")
    tracer = Tracer(service="bench")

    class _Span:
        def __init__(self, name: str, attributes: dict[str, object]) -> None:
            self.cm = tracer.provider.in_subsegment(name)
            self.attributes = attributes

        def __enter__(self) -> object:
            subsegment = self.cm.__enter__()
            for key, value in self.attributes.items():
                subsegment.put_annotation(key, value)
            return subsegment

        def __exit__(self, *exc: object) -> None:
            self.cm.__exit__(*exc)

    @tracer.capture_lambda_handler
    def handler(event: object, context: object) -> dict[str, int]:
        work(_Span)
        return {"statusCode": 200}

    from nexs_serverless.testing import LambdaContext

    context = LambdaContext(timeout_ms=600_000)
    return lambda: handler(EVENT, context)


def untraced() -> Callable[[], object]:
    class _NoSpan:
        def __init__(self, name: str, attributes: dict[str, object]) -> None:
            self.attributes = attributes

        def __enter__(self) -> object:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

    def handler(event: object, context: object) -> dict[str, int]:
        work(_NoSpan)
        return {"statusCode": 200}

    return lambda: handler(EVENT, None)


def serve(name: str, endpoint: str, daemon: str, calls: int) -> None:
    """Worker: build variant `name`, then per line on stdin time `calls` invocations.

    Prints one line per request: the slower of the canaries around the sample
    (`machine_speed.canary_ns`, run in this process, whose CPU the sample used)
    and the median ms of one invocation.
    """
    from machine_speed import canary_ns

    call = make(name, endpoint, daemon)
    for _ in range(20):
        call()
    for _ in sys.stdin:
        before = canary_ns()
        samples = []
        for _ in range(calls):
            started = time.perf_counter()
            call()
            samples.append(time.perf_counter() - started)
        canary = max(before, canary_ns())
        print(canary, statistics.median(samples) * 1000.0, flush=True)


class Worker:
    """One variant in its own process (tracers keep process-wide state), sampled on request."""

    def __init__(self, name: str, endpoint: str, daemon: str, calls: int) -> None:
        code = (
            f"import sys; sys.path.insert(0, {str(ROOT / 'scripts')!r}); import bench_invocation as b;"
            f"b.serve({name!r}, {endpoint!r}, {daemon!r}, {calls})"
        )
        self.process = subprocess.Popen(
            [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        # Every worker on the same CPU (they run one at a time): the machine's CPUs change speed
        # independently, and a worker the scheduler kept on the busier one would never run quiet.
        cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
        if len(cpus) > 1:
            os.sched_setaffinity(self.process.pid, {cpus[-1]})

    def sample(self) -> tuple[float, float]:
        """(canary ns, median ms of one invocation) over one sample of calls."""
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write("\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"worker exited with {self.process.wait()}")
        canary, value = line.split()
        return float(canary), float(value)


def make(name: str, endpoint: str, daemon: str) -> Callable[[], object]:
    """The invoke callable of variant `name`."""
    if name == "nexs_serverless":
        return ours(endpoint)
    if name == "nexs_serverless_xray_udp":
        return ours(endpoint, daemon)
    if name == "opentelemetry_lambda":
        return opentelemetry_lambda(endpoint)
    if name == "powertools_tracer":
        return powertools(daemon)
    return untraced()


VARIANTS = (
    "nexs_serverless",
    "nexs_serverless_xray_udp",
    "opentelemetry_lambda",
    "powertools_tracer",
    "untraced",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=40, help="invocations per sample")
    parser.add_argument(
        "--samples", type=int, default=21, help="samples (and quiet samples) wanted per variant"
    )
    parser.add_argument("--max-seconds", type=float, default=120.0, help="stop sampling after this long")
    parser.add_argument("--json")
    args = parser.parse_args()
    port_file = Path(os.environ.get("TMPDIR", "/tmp")) / f"nexs-bench-{os.getpid()}.port"
    server = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "bench_export.py"), "--serve", str(port_file)]
    )
    daemon_socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    daemon_socket.bind(("127.0.0.1", 0))
    daemon_socket.setblocking(False)
    daemon = f"127.0.0.1:{daemon_socket.getsockname()[1]}"
    workers: dict[str, Worker] = {}
    try:
        for _ in range(100):
            if port_file.exists() and port_file.read_text():
                break
            time.sleep(0.05)
        endpoint = f"http://127.0.0.1:{port_file.read_text()}/v1/traces"
        workers = {name: Worker(name, endpoint, daemon, args.calls) for name in VARIANTS}

        datagrams = dict.fromkeys(workers, 0)

        def sampled(name: str, worker: Worker) -> Callable[[], tuple[float, float]]:
            def one() -> tuple[float, float]:
                drain(daemon_socket)  # the stand-in daemon keeps no backlog between samples
                result = worker.sample()
                datagrams[name] += drain(daemon_socket)
                return result

            return one

        rows = sample_measured(
            {name: sampled(name, worker) for name, worker in workers.items()},
            args.samples,
            args.max_seconds,
            warmup_rounds=2,
        )
    finally:
        for worker in workers.values():
            worker.process.kill()
        server.kill()
        server.wait()
        daemon_socket.close()
        port_file.unlink(missing_ok=True)
    silent = [name for name in ("nexs_serverless_xray_udp", "powertools_tracer") if not datagrams[name]]
    if silent:  # a tracer that sends nothing costs little: its timing would mislead
        raise RuntimeError(f"no datagram reached the stand-in X-Ray daemon from {', '.join(silent)}")
    cut = quiet_cut([canary for samples in rows.values() for canary, _ in samples])
    parts = {name: split(samples, cut) for name, samples in rows.items()}
    ours, ours_quiet = parts["nexs_serverless"]["median"], parts["nexs_serverless"]["quiet_median"]
    calm = [part["quiet_canary_ns"] for part in parts.values() if part["quiet_samples"]]
    busy = [part["contended_canary_ns"] for part in parts.values() if part["quiet_samples"] < part["samples"]]
    print(f"warm invocation, 10 child spans + flush: medians of {args.calls}-call samples, interleaved")
    print(
        f"machine: {statistics.median(calm) if calm else float('nan'):.1f} ns per empty loop iteration"
        f" when quiet, {statistics.median(busy) if busy else float('nan'):.1f} when contended"
    )
    print(f"{'variant':26} {'ms':>8} {'x ours':>7} {'quiet ms':>9} {'x ours':>7} {'quiet/all':>10}")
    for name, part in parts.items():
        print(
            f"{name:26} {part['median']:8.3f} {part['median'] / ours:7.1f} {part['quiet_median']:9.3f}"
            f" {part['quiet_median'] / ours_quiet:7.1f} {part['quiet_samples']:5.0f}/{part['samples']:<4.0f}"
        )
    if args.json:
        payload = {
            "calls": args.calls,
            "ms": {name: part["median"] for name, part in parts.items()},
            "quiet_ms": {name: part["quiet_median"] for name, part in parts.items()},
            "machine": parts,
        }
        Path(args.json).write_text(json.dumps(payload, indent=2))


def drain(daemon: socket.socket) -> int:
    """Read what a non-blocking stand-in X-Ray daemon holds; the number of datagrams."""
    count = 0
    try:
        while daemon.recv(65536):
            count += 1
    except BlockingIOError:
        pass
    return count


if __name__ == "__main__":
    main()
