"""The OTLP/HTTP export's cold path: code a successful export never runs loads only on its branch."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from support.otlp_receiver import Fault, OTLPReceiver

# A cold Lambda invocation of a traced handler, exporting over OTLP/HTTP; prints the exporter
# modules loaded and the names their modules (and classes) define.
COLD_INVOCATION = """
import json, os, sys
from nexs_serverless import traced_handler

if os.environ.get("TEST_SIGV4"):
    from nexs_serverless import configure
    from nexs_serverless.exporters import OTLPHttpExporter

    configure(exporters=[OTLPHttpExporter(endpoint=os.environ["TEST_URL"], sigv4_region="us-east-1")])

@traced_handler
def handler(event, context):
    return {"ok": True}

class Context:
    function_name = "cold"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:cold"
    memory_limit_in_mb = 512
    aws_request_id = "8476a536-e9f4-11e8-9739-2dfe598c3fcd"
    log_group_name = "/aws/lambda/cold"
    log_stream_name = "2026/11/28/[$LATEST]0123456789abcdef"

    def get_remaining_time_in_millis(self):
        return 30000

handler({}, Context())
modules = sorted(m for m in sys.modules if m.startswith("nexs_serverless.exporters."))
defined = set()
for name in modules:
    for attr, value in vars(sys.modules[name]).items():
        if getattr(value, "__module__", None) == name:
            defined.add(attr)
            if isinstance(value, type):
                defined.update(vars(value))
print(json.dumps({"modules": [m.rpartition(".")[2] for m in modules], "defined": sorted(defined)}))
"""

NEW_MODULES = {"_otlp_response", "_otlp_split", "_resilient_failure", "_sigv4"}
# What only a failure, a reply with a body, an oversize batch or signing runs.
OFF_PATH_NAMES = {
    "SigV4Signer",
    "_SigV4",
    "decode_partial_success",
    "iter_fields",
    "parse_retry_after",
    "split_spans",
    "_carried_among",
    "_carry",
    "_honour_retry_after",
}


def _cold_invocation(receiver: OTLPReceiver, **extra: str) -> dict[str, list[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "NEXS_", "AWS_", "_X_"))}
    env.update(
        {
            "AWS_LAMBDA_FUNCTION_NAME": "cold",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "ASIAEXAMPLEEXAMPLE00",
            "AWS_SECRET_ACCESS_KEY": "example/secret/access/key/for/tests00000",
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": receiver.url,
            "NEXS_EXPORT_MAX_RETRIES": "0",
            "TEST_URL": receiver.url,
            **extra,
        }
    )
    done = subprocess.run(
        [sys.executable, "-c", COLD_INVOCATION], capture_output=True, text=True, env=env, check=True
    )
    report: dict[str, list[str]] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


def test_a_successful_export_loads_no_failure_code(receiver: OTLPReceiver) -> None:
    """A cold invocation that exports successfully loads none of the code only failures or options need."""
    report = _cold_invocation(receiver)
    assert len(receiver.spans()) == 1
    assert {"otlp_http", "resilient", "_http"} <= set(report["modules"])
    assert not NEW_MODULES & set(report["modules"])
    assert "errors" not in report["modules"]
    assert not OFF_PATH_NAMES & set(report["defined"])


def test_a_reply_with_partial_success_loads_the_response_reader(receiver: OTLPReceiver) -> None:
    """A 2xx reply with a body is read by `_otlp_response`; nothing failed, so no failure handling."""
    receiver.misbehave(Fault.partial(1))
    report = _cold_invocation(receiver)
    assert "_otlp_response" in report["modules"]
    assert "_resilient_failure" not in report["modules"]


def test_a_refused_export_loads_the_failure_handling(receiver: OTLPReceiver) -> None:
    """A 400 is read by `_otlp_response` and dropped by `_resilient_failure`."""
    receiver.misbehave(Fault.status_code(400))
    report = _cold_invocation(receiver)
    assert {"_otlp_response", "_resilient_failure", "errors"} <= set(report["modules"])
    assert "_otlp_split" not in report["modules"]


def test_a_413_loads_the_splitting_code(receiver: OTLPReceiver) -> None:
    """A batch the collector refuses as too large is handled by `_otlp_split`."""
    receiver.misbehave(Fault.status_code(413))
    report = _cold_invocation(receiver)
    assert "_otlp_split" in report["modules"]


def test_sigv4_loads_the_signer_and_signs(receiver: OTLPReceiver) -> None:
    """An exporter with a SigV4 region loads `_sigv4` and sends signed requests."""
    report = _cold_invocation(receiver, TEST_SIGV4="1")
    assert "_sigv4" in report["modules"]
    (request,) = receiver.requests
    assert request.headers["authorization"].startswith("AWS4-HMAC-SHA256 ")
