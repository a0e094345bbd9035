"""`configure()`'s checks and the reconfiguration counters (`_configure`) stay off a default cold start."""

from __future__ import annotations

import json

from support.fresh_python import run_python

CONFIGURE = "nexs_serverless._configure"
SPLIT = (CONFIGURE,)
TRACE_ID = 0x5759E988BD862E3FE1BE46A994272793

# A Lambda cold start as the runtime drives it: the X-Ray variable set, an API Gateway event (its
# own ``traceparent`` wins), then a direct invocation; default settings but no exporter (the
# console's lines would mix with the report). Then `sys.argv[1]`, a branch, runs; the last line
# reports whether `_configure` was loaded before and after it, and what the branch left in `out`.
_COLD_START = """
import json, os, sys
from pathlib import Path

import nexs_serverless
from nexs_serverless import traced_handler

SPLIT = ("nexs_serverless._configure",)


class Context:
    function_name = "coldpath11r"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:coldpath11r"
    memory_limit_in_mb = 512
    aws_request_id = "8476a536-e9f4-11e8-9739-2dfe598c3fcd"
    log_group_name = "/aws/lambda/coldpath11r"
    log_stream_name = "2026/11/28/[$LATEST]0123456789abcdef"
    client_context = None
    identity = None

    def get_remaining_time_in_millis(self):
        return 30000


seen = []


@traced_handler
def handler(event, context):
    seen.append(format(nexs_serverless.tracer.current_span().trace_id, "032x"))
    return {"statusCode": 200}


os.environ["_X_AMZN_TRACE_ID"] = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
api = json.loads((Path(nexs_serverless.__file__).parent / "events" / "api-gateway-v1.json").read_text())
handler(api, Context())
handler({"order": "42"}, Context())
cold = [name for name in SPLIT if name in sys.modules]
out = None
exec(sys.argv[1])
print(json.dumps({
    "cold": cold,
    "after": [name for name in SPLIT if name in sys.modules],
    "traces": seen,
    "out": out,
}))
"""


def _run(branch: str = "", **environ: str) -> dict[str, object]:
    """The cold start then `branch` in a fresh interpreter with `environ` as the only tracer settings."""
    env = {"AWS_LAMBDA_FUNCTION_NAME": "coldpath11r", "OTEL_TRACES_EXPORTER": "none", **environ}
    done = run_python(_COLD_START, branch, env=env, check=False)
    assert done.returncode == 0, done.stderr
    report: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    return report


def test_a_default_cold_start_loads_none_of_the_split_modules() -> None:
    """Two invocations with default settings (API Gateway, direct) load no split module, and trace."""
    report = _run()
    assert report["cold"] == []
    assert report["after"] == []
    traces = report["traces"]
    assert isinstance(traces, list)
    assert traces[1] == f"{TRACE_ID:032x}"  # the direct invocation continues the X-Ray variable's trace


def test_configure_loads_its_checks_and_still_rejects_a_bad_value() -> None:
    """`configure()` loads `_configure`; a bad argument raises `ConfigError`, a good one applies."""
    branch = """
from nexs_serverless import ConfigError, configure
from nexs_serverless.runtime import runtime
try:
    configure(pool_size=-1)
except ConfigError as exc:
    rejected = str(exc)
configure(service_name="orders", exporters=[])
out = [rejected, runtime.settings.service_name]
"""
    report = _run(branch)
    assert report["cold"] == []
    assert report["after"] == [CONFIGURE]
    assert report["out"] == ["configure(pool_size=-1): invalid value", "orders"]


def test_reapplying_settings_after_a_flush_loads_the_counters_and_rebuilds_the_stages() -> None:
    """`Runtime.apply` after the first flush built the stages goes through `_configure`'s counter."""
    branch = """
from nexs_serverless.runtime import runtime
before = runtime.stages()
runtime.apply(runtime.settings)
out = [len(before), runtime.stages() is not before]
"""
    report = _run(branch)
    assert report["cold"] == []
    assert report["after"] == [CONFIGURE]
    assert report["out"] == [1, True]  # the default redaction stage, built again
