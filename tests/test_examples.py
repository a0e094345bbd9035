"""Every example runs with its one documented command, and prints the trace it promises.

Each example runs once, in a subprocess with the suite's Python and a clean
environment (no ``OTEL_*``, ``NEXS_*`` or ``AWS_*`` variables from the
machine), and its output is shared by the tests below: one parametrized
test that every example succeeds, then the specific facts each one shows.
The examples start their own servers on 127.0.0.1 (moto, OTLP endpoints,
HTTP services) and finish in seconds.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
# name -> arguments after the script; performance runs with fewer samples here.
COMMANDS: dict[str, tuple[str, ...]] = {
    "hello": (),
    "complete-integration": (),
    "error-handling": (),
    "performance": ("--quick",),
    "opentelemetry": (),
    "gcp-function": (),
    "azure-function": (),
}
_CLEARED = ("OTEL_", "NEXS_", "AWS_", "_X_AMZN_TRACE_ID", "K_SERVICE", "FUNCTION_", "FUNCTIONS_", "WEBSITE_")


@functools.cache
def run(name: str) -> subprocess.CompletedProcess[str]:
    """Run `examples/<name>/run.py` once per session (cached: several tests read one run)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(_CLEARED)}
    env["PYTHONPATH"] = str(ROOT)
    env["PYTHONWARNINGS"] = "error::DeprecationWarning:nexs_serverless"
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name / "run.py"), *COMMANDS[name]],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=env,
        check=False,
    )


def trace_headers(stdout: str) -> list[str]:
    """The trace ids of the console exporter's ``trace <id> · N span(s)`` lines, in order."""
    return re.findall(r"^trace ([0-9a-f]{32}) · \d+ span\(s\)$", stdout, re.MULTILINE)


# name -> how many trace trees it prints to the console, and a line it prints once it has shown what it
# promises. error-handling exports to an OTLP endpoint instead of the console: no tree, its verdict only.
EXPECTED: dict[str, tuple[int, str]] = {
    "hello": (1, "handler returned: "),
    "complete-integration": (2, "OK: one trace from API Gateway through SQS to the inventory service"),
    "error-handling": (0, "OK: the back end's failures never reached the handler, and no span was lost"),
    "performance": (1, "timeout_guard_fired: 1"),
    "opentelemetry": (1, "OK: OpenTelemetry API, OpenTelemetry instrumentation and our spans share one"),
    "gcp-function": (2, "OK: HTTP function -> Pub/Sub -> CloudEvent function, one trace "),
    "azure-function": (2, "OK: the queue worker's span links to the HTTP request's trace"),
}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_example_runs_and_prints_its_trace(name: str) -> None:
    """The example exits 0 without a traceback, prints its trace trees (if any) and its closing line."""
    result = run(name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    traces, closing = EXPECTED[name]  # KeyError: a new example needs its entry
    assert len(trace_headers(result.stdout)) == traces, result.stdout
    assert closing in result.stdout, result.stdout


def test_every_example_is_tested_and_documents_its_command() -> None:
    """Each example folder is run here, and its README (or the hello docstring) names the command."""
    folders = sorted(path.name for path in EXAMPLES.iterdir() if (path / "run.py").exists())
    assert folders == sorted(COMMANDS)
    for name in folders:
        readme = EXAMPLES / name / "README.md"
        text = readme.read_text() if readme.exists() else (EXAMPLES / name / "handler.py").read_text()
        assert f"examples/{name}/run.py" in text, name


def test_hello_greets_and_continues_the_callers_trace() -> None:
    """hello: the request's traceparent names the trace, and the response is the handler's."""
    stdout = run("hello").stdout
    assert trace_headers(stdout) == ["0af7651916cd43dd8448eb211c80319c"]
    assert "hello, serverless" in stdout


def test_complete_integration_is_one_trace_with_batch_links() -> None:
    """complete-integration: API, producer, consumer and HTTP call share the caller's trace; 2 links."""
    stdout = run("complete-integration").stdout
    caller = "4bf92f3577b34da6a3ce929d0e0e4736"
    assert trace_headers(stdout) == [caller, caller]
    assert stdout.count("send order-lines [PRODUCER]") == 2
    assert re.search(r"process order-lines \[CONSUMER\].* links=2$", stdout, re.MULTILINE)
    assert stdout.count("POST [CLIENT]") == 2
    received = re.findall(r"^traceparent: 00-([0-9a-f]{32})-[0-9a-f]{16}-01$", stdout, re.MULTILINE)
    assert received == [caller, caller]
    assert '"statusCode": 202' in stdout
    assert 'consumer_handler returned: {"batchItemFailures": []}' in stdout
    assert "OK: one trace from API Gateway through SQS to the inventory service" in stdout


def test_error_handling_shows_retries_breaker_and_carry_over() -> None:
    """error-handling: every result unchanged, no span lost, and the breaker opened and closed twice."""
    stdout = run("error-handling").stdout
    final = dict(re.findall(r"^  (\w+) +([\d.]+)$", stdout, re.MULTILINE))
    assert final["breaker_opened"] == "2"
    assert final["breaker_closed"] == "2"
    assert final["export_deferred_retry_after"] == "1"
    assert int(final["export_retries"]) >= 1
    assert final["export_spans_carried_over"] == final["export_spans_resent"]
    assert "handler results unchanged: 12 of 12" in stdout
    assert "spans created: 24, delivered: 24, delivered twice: 0, lost: 0" in stdout


def test_error_handling_skips_the_back_end_while_the_breaker_is_open() -> None:
    """error-handling: the invocations after the breaker opened sent no request at all."""
    steps = run("error-handling").stdout.split("\n#")[1:]
    open_steps = [step for step in steps if "export_skipped_breaker_open +1" in step]
    assert len(open_steps) == 2
    assert all("requests that reached the back end: 0" in step for step in open_steps)


def test_performance_reports_every_knob() -> None:
    """performance: each setting has a median, the kept-span counts follow the sampling knobs."""
    stdout = run("performance").stdout
    rows = dict(re.findall(r"^   (\S.*?) {2,}[\d.]+ +[+-][\d.]+ +([\d.]+) ", stdout, re.MULTILINE))
    assert rows["tracing off"] == "0.00"
    assert rows["tracing on (defaults)"] == "6.00"
    assert rows["span pool off"] == "6.00"
    assert rows["timeout guard off"] == "6.00"
    assert rows["tail sampling: errors only"] == "0.60"  # 1 in 10 invocations fails, 6 spans each
    assert 0.0 < float(rows["head sampling 10%"]) < 6.0


def test_performance_shows_the_flush_budget_and_the_timeout_guard() -> None:
    """performance: only the breaker row opens the breaker; the guard fires and marks the trace."""
    stdout = run("performance").stdout
    opened = dict(re.findall(r"^   (budget .*?) {2,}.* (\d+)$", stdout, re.MULTILINE))
    assert opened == {
        "budget 1000 ms (default)": "0",
        "budget 20 ms, breaker off": "0",
        "budget 20 ms, breaker on": "1",
    }
    assert "timeout_guard_fired: 1" in stdout
    assert "✗ ERROR invocation timed out" in stdout
    assert stdout.count("force-ended") == 2


def test_opentelemetry_spans_of_every_origin_reach_the_sdk_exporter() -> None:
    """opentelemetry: API, instrumentation-library and our spans arrive through the SDK exporter."""
    stdout = run("opentelemetry").stdout
    caller = "5c1f5e0ab3a34f7e8d6b2c1a9f0e7d64"
    assert trace_headers(stdout) == [caller]
    received = re.findall(rf"^  trace {caller}  (\S+(?: /\S+)?) +(.+)$", stdout, re.MULTILINE)
    assert sorted(received) == [
        ("GET", "scope opentelemetry.instrumentation.urllib"),
        ("GET /price/{sku}", "(nexs_serverless)"),
        ("apply-discount", "(nexs_serverless)"),
        ("quote", "scope shop.pricing"),
    ]
    assert f"price service received traceparent: 00-{caller}-" in stdout


def test_gcp_function_http_then_pubsub_is_one_trace() -> None:
    """gcp-function: the HTTP function and the Pub/Sub CloudEvent function share the caller's trace."""
    stdout = run("gcp-function").stdout
    caller = "0af7651916cd43dd8448eb211c80319c"
    assert trace_headers(stdout) == [caller, caller]
    assert "create_order answered 201" in stdout
    assert "on_order_created answered 200" in stdout
    assert "process order-created [CONSUMER]" in stdout
    assert "confirmation sent for order A-1001" in stdout


def test_azure_function_queue_worker_links_to_the_request() -> None:
    """azure-function: the HTTP function continues the caller's trace; the queue worker links to it."""
    stdout = run("azure-function").stdout
    caller = "a3ce929d0e0e47364bf92f3577b34da6"
    headers = trace_headers(stdout)
    assert headers[0] == caller
    assert len(headers) == 2
    assert headers[1] != caller
    assert "http_start answered 202" in stdout
    assert re.search(r"process \[CONSUMER\].* links=1$", stdout, re.MULTILINE)
    assert f"links to trace(s): {caller}" in stdout
