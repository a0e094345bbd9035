"""The rare paths split out of `span` and `aws_operations` load only when a call takes them."""

from __future__ import annotations

import base64
import contextvars
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from nexs_serverless import current_span, tracer

REENTRY = "nexs_serverless._span_reentry"
CLIENT_CONTEXT = "nexs_serverless.instrumentation.aws_client_context"


def _run(code: str, *args: str) -> dict[str, object]:
    """`code` in a fresh interpreter with no tracer settings from the machine; its last line as JSON."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "NEXS_", "AWS_LAMBDA_"))}
    env.update(AWS_LAMBDA_FUNCTION_NAME="split11b")
    out = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, check=True, timeout=120
    )
    report: dict[str, object] = json.loads(out.stdout.splitlines()[-1])
    return report


@pytest.fixture
def unloaded() -> Iterator[None]:
    """The re-entry module starts unloaded, so that a test sees whether its case loads it."""
    sys.modules.pop(REENTRY, None)
    yield
    sys.modules.pop(REENTRY, None)


# -- span re-entry ------------------------------------------------------------------------------

_COLD_SPANS = """
import asyncio, json, sys, threading
from nexs_serverless import configure, current_span, traced_handler, tracer, wrap
from nexs_serverless.exporters import InMemoryExporter
from nexs_serverless.testing import LambdaContext, events

memory = InMemoryExporter()
configure(exporters=[memory])


def in_a_thread():
    with tracer.span("thread-child"):
        pass


async def task(n):
    with tracer.span(f"task-{n}"):
        await asyncio.sleep(0)


@traced_handler
def handler(event, context):
    with tracer.span("outer") as outer:
        with tracer.span("inner") as inner:
            inner.add_event("fetched", {"rows": 3})
        try:
            with tracer.span("failing"):
                raise KeyError("missing")
        except KeyError:
            pass
        worker = threading.Thread(target=wrap(in_a_thread))
        worker.start()
        worker.join()
        async def gather():
            await asyncio.gather(task(1), task(2))
        asyncio.run(gather())
        assert current_span() is outer
    if event.get("fail"):
        raise ValueError("bad order")
    return {"statusCode": 200}


for event in (events.api_gateway_v1(), {"fail": True}):
    try:
        handler(event, LambdaContext())
    except ValueError:
        pass
loaded = "nexs_serverless._span_reentry" in sys.modules
names = sorted(span.name for span in memory.get_finished_spans())
twice = tracer.span("twice")
with twice, twice:
    pass
print(json.dumps({
    "loaded_on_cold_path": loaded,
    "names": names,
    "loaded_after_reentry": "nexs_serverless._span_reentry" in sys.modules,
}))
"""


def test_a_cold_invocation_with_spans_does_not_load_the_reentry_module() -> None:
    """Nested, failing, threaded and async spans under a traced handler leave `_span_reentry` unloaded."""
    report = _run(_COLD_SPANS)
    assert report["loaded_on_cold_path"] is False
    names = report["names"]
    assert isinstance(names, list)
    children = ["failing", "inner", "outer", "task-1", "task-2", "thread-child"]
    assert [name for name in names if name in children] == sorted(children * 2)
    assert len(names) == 2 * len(children) + 2  # and each invocation's root
    assert report["loaded_after_reentry"] is True  # the check above can see the module load


@pytest.mark.usefixtures("unloaded")
def test_a_span_entered_again_loads_the_reentry_module_and_restores_the_outermost() -> None:
    """Entering an open span again goes through `_span_reentry`; the first exit restores the outermost."""
    with tracer.span("outer") as outer:
        span = tracer.span("twice")
        with span:
            assert REENTRY not in sys.modules
            with span:
                assert REENTRY in sys.modules
                assert current_span() is span
        assert current_span() is outer
    assert current_span() is None


@pytest.mark.usefixtures("unloaded")
def test_a_span_exited_in_a_copied_context_loads_the_reentry_module_and_keeps_that_contexts_span() -> None:
    """An exit where its token cannot be reset goes through `_span_reentry`; this context keeps its span."""
    with tracer.span("request") as request:
        inner = tracer.span("dependency")
        contextvars.copy_context().run(inner.__enter__)
        assert REENTRY not in sys.modules
        inner.__exit__(None, None, None)
        assert REENTRY in sys.modules
        assert current_span() is request
        assert inner.end_ns
    assert current_span() is None


# -- Lambda ClientContext -----------------------------------------------------------------------

_INVOKE = """
import base64, json, sys
sys.path.insert(0, sys.argv[1])
from support.clouds import client, http_server
from nexs_serverless import configure, flush, instrumentation, tracer
from nexs_serverless.exporters import InMemoryExporter
from nexs_serverless.instrumentation import aws_operations

MODULE = "nexs_serverless.instrumentation.aws_client_context"
memory = InMemoryExporter()
configure(exporters=[memory])
instrumentation.instrument("botocore")
seen = []


def respond(method, path, headers, body):
    seen.append({name.lower(): value for name, value in headers.items()})
    if path.endswith("/invocations"):
        return 200, {"ok": True}, {}
    return 200, {"Functions": []}, {}


others = [
    ("SQS", "SendMessage", {"QueueUrl": "https://sqs/1/q", "MessageBody": "{}"}),
    ("SNS", "Publish", {"TopicArn": "arn:aws:sns:eu-west-1:1:t", "Message": "{}"}),
    ("EventBridge", "PutEvents", {"Entries": [{"Detail": "{}"}]}),
    ("SFN", "StartExecution", {"stateMachineArn": "arn:sm", "input": "{}"}),
    ("Kinesis", "PutRecord", {"StreamName": "s", "Data": b"{}", "PartitionKey": "k"}),
    ("Lambda", "InvokeAsync", {"FunctionName": "charge", "InvokeArgs": b"{}"}),
]
with http_server(respond) as url:
    lambda_client = client("lambda", url)
    with tracer.span("handler"):
        lambda_client.list_functions()
        for service, operation, params in others:
            aws_operations.inject_context(service, operation, params)
        before = MODULE in sys.modules
        lambda_client.invoke(FunctionName="charge", Payload=b"{}")
    after = MODULE in sys.modules
flush()
(invoke,) = [s for s in memory.get_finished_spans() if s.name == "Lambda.Invoke"]
header = seen[-1].get("x-amz-client-context")
custom = json.loads(base64.b64decode(header))["custom"] if header else {}
print(json.dumps({
    "before": before,
    "after": after,
    "list_had_context": "x-amz-client-context" in seen[0],
    "traceparent": custom.get("traceparent"),
    "expected": f"00-{invoke.trace_id:032x}-{invoke.span_id:016x}-01",
}))
"""


def test_only_lambda_invoke_loads_the_client_context_module() -> None:
    """Other Lambda calls and other services' carriers leave `aws_client_context` unloaded; ``Invoke``
    loads it and its request carries the invoke span's ``traceparent`` in ``ClientContext.custom``."""
    report = _run(_INVOKE, str(Path(__file__).parent))
    assert report["before"] is False
    assert report["list_had_context"] is False
    assert report["after"] is True
    assert report["traceparent"] == report["expected"]


def test_the_client_context_module_keeps_the_callers_entries_and_exactness_rules() -> None:
    """`client_context` adds the headers under the caller's entries, and refuses a text it would change."""
    from nexs_serverless.instrumentation.aws_client_context import client_context

    own = base64.b64encode(json.dumps({"custom": {"TraceParent": "mine"}}).encode()).decode()
    written = client_context(own, {"traceparent": "ours", "baggage": "k=v"})
    assert written is not None
    assert json.loads(base64.b64decode(written)) == {"custom": {"TraceParent": "mine", "baggage": "k=v"}}
    inexact = base64.b64encode(b'{"custom": {"amount": 1e400}}').decode()
    assert client_context(inexact, {"traceparent": "ours"}) is None
