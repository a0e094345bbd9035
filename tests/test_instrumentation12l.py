"""Outgoing-call instrumentation as a demanding user meets it: cold-start fan-out, presigned URLs,
logging re-instrumented, the SDK span's server port (moto and a local HTTP server on 127.0.0.1)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from support.clouds import REGION, client, echo, http_server, receive_all
from support.memory import finish
from support.polling import wait_for

from nexs_serverless import instrumentation, tracer
from nexs_serverless.context import wrap
from nexs_serverless.exporters import InMemoryExporter
from nexs_serverless.runtime import runtime
from nexs_serverless.testing import reset
from nexs_serverless.testing.state import forget_instrumentation

SESSION_TOKEN = "FwoGZXIvYXdzEXAMPLESESSIONTOKEN"  # what Lambda's role credentials always carry


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """A local server answering with the headers and path it received."""
    with http_server(echo) as url:
        yield url


@pytest.fixture
def raw_spans() -> InMemoryExporter:
    """An exporter with the exporter-side redaction off: the attributes as the instrumentation set them."""
    exporter = InMemoryExporter()
    reset(environ={"NEXS_REDACTION_ENABLED": "false"}, exporters=[exporter])
    return exporter


def _in_stand_in(threads: list[threading.Thread]) -> int:
    """How many of `threads` are inside a stand-in now (waiting there for the install's lock)."""
    frames = sys._current_frames()
    return sum(1 for t in threads if t.ident in frames and frames[t.ident].f_code.co_name == "stand_in")


def test_sdk_calls_made_while_the_first_one_installs_are_traced_and_carry_the_context(
    moto_url: str, spans: InMemoryExporter
) -> None:
    """A cold start fanning out to threads: calls that entered the stand-in while the first call
    installed went to botocore's own method, with no span, no context in their messages, and a stray
    urllib3 ``POST`` span for their HTTP request."""
    import botocore.client

    sqs = client("sqs", moto_url)
    url = sqs.create_queue(QueueName="fan-out")["QueueUrl"]  # before the stand-in: not traced
    forget_instrumentation()  # a fresh process: `uninstrument` would opt out of `auto_install`
    instrumentation.auto_install(runtime.settings)  # the stand-ins, as at the first invocation
    assert getattr(botocore.client.BaseClient._make_api_call, "__wrapped__", None) is not None

    def send(body: str) -> None:
        sqs.send_message(QueueUrl=url, MessageBody=body)

    with tracer.span("handler"):
        # The first call through a stand-in installs under this lock: holding it, both threads
        # arrive in the stand-in before either installs, as threads of a fan-out do.
        with instrumentation._stand_in_lock:
            threads = [threading.Thread(target=wrap(send), args=(str(i),)) for i in range(2)]
            for thread in threads:
                thread.start()
            assert wait_for(lambda: _in_stand_in(threads) == 2)
        for thread in threads:
            thread.join()
    assert sorted(span.name for span in finish(spans)) == ["handler", "send fan-out", "send fan-out"]
    messages = receive_all(sqs, url)
    assert len(messages) == 2
    assert all("traceparent" in message["MessageAttributes"] for message in messages)


def test_the_sdk_method_stays_a_stand_in_while_the_instrumentation_loads(moto_url: str) -> None:
    """The first call installs while the stand-in is still on the class: the original put back first
    let a call looking the method up meanwhile (another thread) through untraced."""
    code = f"""
import importlib.abc, sys
import botocore.client
from nexs_serverless import instrumentation
from nexs_serverless.runtime import runtime

instrumentation.auto_install(runtime.settings)
base = botocore.client.BaseClient
stand_in = base._make_api_call
seen = []

class Watch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "nexs_serverless.instrumentation.botocore_hooks":  # loaded by the install
            seen.append(base._make_api_call is stand_in)
        return None

sys.meta_path.insert(0, Watch())
import boto3
sqs = boto3.client("sqs", endpoint_url={moto_url!r}, region_name={REGION!r},
                   aws_access_key_id="testing", aws_secret_access_key="testing")
sqs.list_queues()
print(seen, getattr(base._make_api_call, "__nexs_traced__", False))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines()[-1] == "[True] True"


def test_a_sigv2_presigned_url_keeps_the_session_token_out_of_url_full(
    server: str, raw_spans: InMemoryExporter
) -> None:
    """S3's default presigned URL (SigV2) writes the token as ``x-amz-security-token``, which the
    case-sensitive key list missed: a Lambda role's session token went into url.full."""
    import boto3
    import requests

    instrumentation.instrument("urllib3")
    s3 = boto3.client(
        "s3",
        endpoint_url=server,
        region_name=REGION,
        aws_access_key_id="ASIAEXAMPLEKEYID",
        aws_secret_access_key="testing",
        aws_session_token=SESSION_TOKEN,
    )
    presigned = s3.generate_presigned_url("get_object", Params={"Bucket": "reports", "Key": "q3.csv"})
    assert f"x-amz-security-token={SESSION_TOKEN}" in presigned  # as botocore writes it
    with tracer.span("handler"):
        assert requests.get(presigned, timeout=5).status_code == 200
    (span,) = [span for span in finish(raw_spans) if span.name == "GET"]
    full = str(span.attributes["url.full"])
    assert "x-amz-security-token=REDACTED" in full
    assert "Signature=REDACTED" in full
    assert SESSION_TOKEN not in json.dumps(dict(span.attributes))


def test_an_s3_express_session_token_is_kept_out_of_url_full(
    server: str, raw_spans: InMemoryExporter
) -> None:
    """S3 Express presigned URLs carry the session token as ``X-Amz-S3session-Token``."""
    import httpx

    instrumentation.instrument("httpx")
    with tracer.span("handler"):
        httpx.get(f"{server}/o?X-Amz-S3session-Token={SESSION_TOKEN}&part=1")
    (span,) = [span for span in finish(raw_spans) if span.name == "GET"]
    assert span.attributes["url.full"] == f"{server}/o?X-Amz-S3session-Token=REDACTED&part=1"


@pytest.fixture
def record_factory() -> Iterator[None]:
    """The logging module's factory and ``Logger.makeRecord`` as they were, put back after the test."""
    factory, make_record = logging.getLogRecordFactory(), logging.Logger.makeRecord
    yield
    instrumentation.uninstrument("logging")
    logging.setLogRecordFactory(factory)
    logging.Logger.makeRecord = make_record  # type: ignore[method-assign]


def test_logging_instrumented_again_after_its_factory_came_back_on_top_stamps_records(
    record_factory: None, spans: InMemoryExporter
) -> None:
    """Another factory over ours, ``uninstrument("logging")`` (ours turned off below it), that factory
    removed by its owner (ours, off, on top again): ``instrument("logging")`` said installed and
    stamped nothing."""
    instrumentation.instrument("logging")
    ours = logging.getLogRecordFactory()

    def theirs(*args: Any, **kwargs: Any) -> logging.LogRecord:  # OpenTelemetry's LoggingInstrumentor
        return ours(*args, **kwargs)

    logging.setLogRecordFactory(theirs)
    instrumentation.uninstrument("logging")
    logging.setLogRecordFactory(ours)  # its uninstrument puts back the factory it found
    assert instrumentation.instrument("logging") == ["logging"]
    with tracer.span("handler") as span:
        record = logging.getLogRecordFactory()("n", logging.INFO, "f", 1, "m", (), None)
    assert record.trace_id == f"{span.trace_id:032x}"  # type: ignore[attr-defined]
    assert record.span_id == f"{span.span_id:016x}"  # type: ignore[attr-defined]


def test_an_sdk_span_on_a_default_endpoint_gives_the_port_with_the_address(spans: InMemoryExporter) -> None:
    """AWS's own endpoints name no port: server.address came without server.port (443), which the
    RPC conventions require with it. The call fails validation before any request is sent."""
    import boto3
    from botocore.exceptions import ParamValidationError

    instrumentation.instrument("botocore")
    sqs = boto3.client(
        "sqs", region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    with tracer.span("handler"), pytest.raises(ParamValidationError):
        sqs.send_message(QueueUrl="https://sqs.us-east-1.amazonaws.com/123456789012/orders")
    (send,) = [span for span in finish(spans) if span.name == "send orders"]
    assert (send.attributes["server.address"], send.attributes["server.port"]) == (
        "sqs.us-east-1.amazonaws.com",
        443,
    )


def test_a_functools_wraps_wrapper_on_the_stand_in_stays_in_the_chain(
    moto_url: str, spans: InMemoryExporter
) -> None:
    """A patch made with ``functools.wraps`` over the stand-in copies its attributes, stand-in mark
    included: the install must still wrap that patch, not what is under it (which dropped it)."""
    import functools

    import botocore.client

    forget_instrumentation()  # a fresh process: `uninstrument` would opt out of `auto_install`
    instrumentation.auto_install(runtime.settings)
    owner = botocore.client.BaseClient
    stand_in = owner._make_api_call
    theirs_calls: list[str] = []

    @functools.wraps(stand_in)
    def theirs(self: Any, operation: str, params: dict[str, Any]) -> Any:
        theirs_calls.append(operation)
        return stand_in(self, operation, params)

    owner._make_api_call = theirs  # type: ignore[method-assign]
    try:
        sqs = client("sqs", moto_url)
        with tracer.span("handler"):
            sqs.list_queues()  # installs ours over theirs
            sqs.list_queues()  # ours, theirs, the stand-in, the original
    finally:
        instrumentation.uninstrument("botocore")
        owner._make_api_call = stand_in.__wrapped__  # type: ignore[attr-defined]
    assert theirs_calls == ["ListQueues", "ListQueues"]
    assert [span.name for span in finish(spans)].count("SQS.ListQueues") == 1
