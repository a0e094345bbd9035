"""Session 11, AWS SDK: error codes as ``error.type``, streamed invocations, s3transfer's worker threads."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.clouds import client, http_server
from support.memory import finish

from nexs_serverless import instrumentation, stats, tracer
from nexs_serverless.exporters import InMemoryExporter
from nexs_serverless.finished import FinishedSpan
from nexs_serverless.instrumentation import aws_operations
from nexs_serverless.runtime import runtime
from nexs_serverless.testing.state import forget_instrumentation


@pytest.fixture(autouse=True)
def instrumented() -> Iterator[None]:
    """The SDK instrumented for the test, restored afterwards."""
    instrumentation.instrument("botocore")
    yield
    instrumentation.uninstrument("botocore")


@pytest.fixture
def bucket(moto_url: str) -> str:
    """A fresh S3 bucket on the moto server."""
    name = f"bucket-{uuid.uuid4().hex[:12]}"
    client("s3", moto_url).create_bucket(Bucket=name)
    return name


def named(spans: list[FinishedSpan], name: str) -> list[FinishedSpan]:
    return [span for span in spans if span.name == name]


def _client_context(encoded: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(base64.b64decode(encoded))
    return document


# error.type


def test_an_unmodelled_client_error_has_the_service_error_code_as_error_type(
    moto_url: str, bucket: str, spans: InMemoryExporter
) -> None:
    """S3 answers ``HeadObject`` for a missing key with a bare 404: ``error.type`` is ``404``, not
    ``ClientError`` (one class for every error botocore has no model for); the event keeps the class."""
    s3 = client("s3", moto_url)
    with tracer.span("handler"), pytest.raises(s3.exceptions.ClientError):
        s3.head_object(Bucket=bucket, Key="missing")
    (head,) = named(finish(spans), "S3.HeadObject")
    assert head.attributes["error.type"] == "404"
    assert head.events[0].attributes["exception.type"] == "botocore.exceptions.ClientError"


def test_a_modelled_error_is_named_by_its_code_where_the_class_differs(
    moto_url: str, spans: InMemoryExporter
) -> None:
    """SQS's ``QueueDoesNotExist`` class carries the code ``AWS.SimpleQueueService.NonExistentQueue``,
    which callers match on: the code is ``error.type``, the class stays ``exception.type``."""
    sqs = client("sqs", moto_url)
    with tracer.span("handler"), pytest.raises(sqs.exceptions.QueueDoesNotExist) as raised:
        sqs.get_queue_url(QueueName="missing")
    (call,) = named(finish(spans), "SQS.GetQueueUrl")
    assert call.attributes["error.type"] == raised.value.response["Error"]["Code"]
    assert call.attributes["error.type"] == "AWS.SimpleQueueService.NonExistentQueue"
    assert call.events[0].attributes["exception.type"].endswith(".QueueDoesNotExist")


def test_an_error_that_is_not_a_service_answer_keeps_its_class_as_error_type(
    spans: InMemoryExporter,
) -> None:
    """botocore rejecting the parameters (no response, no code): ``error.type`` stays the class."""
    from botocore.exceptions import ParamValidationError

    sqs = client("sqs", "http://127.0.0.1:9")
    with tracer.span("handler"), pytest.raises(ParamValidationError):
        sqs.send_message(QueueUrl="https://q", MessageBody=42)
    (send,) = named(finish(spans), "send q")
    assert send.attributes["error.type"] == "ParamValidationError"


# Lambda InvokeWithResponseStream


def test_invoke_with_response_stream_carries_the_context_in_its_client_context(
    spans: InMemoryExporter,
) -> None:
    """``InvokeWithResponseStream`` takes ``ClientContext`` (the ``X-Amz-Client-Context`` header) as
    ``Invoke`` does: the request carries the span's ``traceparent`` there (it went without)."""
    seen: list[dict[str, str]] = []

    def respond(method: str, path: str, headers: dict[str, str], _: bytes) -> tuple[int, Any, dict[str, str]]:
        seen.append(headers)
        error = "ResourceNotFoundException"
        return 404, {"__type": error, "message": "no such function"}, {"x-amzn-ErrorType": error}

    with http_server(respond) as url:
        lambda_client = client("lambda", url)
        with tracer.span("handler"), pytest.raises(lambda_client.exceptions.ResourceNotFoundException):
            lambda_client.invoke_with_response_stream(FunctionName="stream", Payload=b"{}")
    (invoke,) = named(finish(spans), "Lambda.InvokeWithResponseStream")
    (headers,) = seen
    header = next(value for name, value in headers.items() if name.lower() == "x-amz-client-context")
    custom = _client_context(header)["custom"]
    assert custom["traceparent"] == f"00-{invoke.trace_id:032x}-{invoke.span_id:016x}-01"


def test_invoke_with_response_stream_keeps_the_callers_client_context() -> None:
    """The caller's own client context is kept, its own entries winning, as for ``Invoke``."""
    own = {"client": {"app_title": "shop"}, "custom": {"TraceParent": "mine", "tenant": "acme"}}
    params: dict[str, Any] = {
        "FunctionName": "stream",
        "ClientContext": base64.b64encode(json.dumps(own).encode()).decode(),
    }
    with tracer.span("handler"):
        aws_operations.inject_context("Lambda", "InvokeWithResponseStream", params)
    document = _client_context(params["ClientContext"])
    assert document["client"] == {"app_title": "shop"}
    assert document["custom"]["TraceParent"] == "mine"
    assert document["custom"]["tenant"] == "acme"
    assert "traceparent" not in document["custom"]
    assert document["custom"]["X-Amzn-Trace-Id"].startswith("Root=1-")


@pytest.mark.parametrize(
    ("document", "counter"),
    [
        ('{"custom": {"amount": 1e400}}', "carrier_skipped_inexact"),
        # within 3583 bytes as the caller wrote it, past them with ours
        (json.dumps({"custom": {"big": "x" * 2550}}), "propagation_skipped_client_context_limit"),
    ],
)
def test_invoke_with_response_stream_follows_invokes_exactness_and_size_rules(
    spans: InMemoryExporter, document: str, counter: str
) -> None:
    """A client context that rewriting would change, or that ours would push past 3583 bytes, is sent
    exactly as the caller wrote it (counted), as for ``Invoke``."""
    encoded = base64.b64encode(document.encode()).decode()
    params: dict[str, Any] = {"FunctionName": "stream", "ClientContext": encoded}
    with tracer.span("handler"):
        aws_operations.inject_context("Lambda", "InvokeWithResponseStream", params)
    assert params["ClientContext"] == encoded
    assert stats()[counter] == 1


# s3transfer worker threads


def test_upload_file_and_download_file_calls_are_children_of_the_calling_span(
    moto_url: str, bucket: str, spans: InMemoryExporter, tmp_path: Path
) -> None:
    """boto3's transfers make their S3 calls in s3transfer's worker threads, which had no context: the
    calls were not traced; now each is a child of the span that called ``upload_file``/``download_file``."""
    source, target = tmp_path / "source.txt", tmp_path / "target.txt"
    source.write_bytes(b"payload")
    s3 = client("s3", moto_url)
    with tracer.span("handler"):
        s3.upload_file(str(source), bucket, "key")
        s3.download_file(bucket, "key", str(target))
    assert target.read_bytes() == b"payload"
    finished = finish(spans)
    (handler,) = named(finished, "handler")
    calls = [span for span in finished if span.name.startswith("S3.")]
    assert {span.name for span in calls} >= {"S3.PutObject", "S3.HeadObject", "S3.GetObject"}
    assert {(span.trace_id, span.parent_span_id) for span in calls} == {(handler.trace_id, handler.span_id)}


def test_a_multipart_upload_is_traced_through_every_worker_hop(
    moto_url: str, bucket: str, spans: InMemoryExporter, tmp_path: Path
) -> None:
    """A multipart upload submits its part tasks from a submission worker thread: the context reaches
    them through that hop too, so every call of the upload is a child of the calling span."""
    from boto3.s3.transfer import TransferConfig

    source = tmp_path / "large.bin"
    source.write_bytes(b"x" * (6 * 1024 * 1024))
    config = TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024)
    s3 = client("s3", moto_url)
    with tracer.span("handler"):
        s3.upload_file(str(source), bucket, "large", Config=config)
    finished = finish(spans)
    (handler,) = named(finished, "handler")
    calls = sorted(span.name for span in finished if span.name.startswith("S3."))
    assert calls == [
        "S3.CompleteMultipartUpload",
        "S3.CreateMultipartUpload",
        "S3.UploadPart",
        "S3.UploadPart",
    ]
    assert {span.parent_span_id for span in finished if span.name.startswith("S3.")} == {handler.span_id}


def test_a_failed_transfer_fails_as_before_and_its_call_is_an_error_child(
    moto_url: str, spans: InMemoryExporter, tmp_path: Path
) -> None:
    """Running the worker task in the caller's context changes nothing of what it does: an upload to
    a missing bucket raises boto3's own error, and the failed call is recorded under the caller."""
    from boto3.exceptions import S3UploadFailedError

    source = tmp_path / "source.txt"
    source.write_bytes(b"payload")
    with tracer.span("handler"), pytest.raises(S3UploadFailedError, match="NoSuchBucket"):
        client("s3", moto_url).upload_file(str(source), "no-such-bucket", "key")
    finished = finish(spans)
    (handler,) = named(finished, "handler")
    (put,) = named(finished, "S3.PutObject")
    assert put.parent_span_id == handler.span_id
    assert put.attributes["error.type"] == "NoSuchBucket"


def test_uninstrument_gives_s3transfer_its_own_submit_back() -> None:
    """``BoundedExecutor.submit`` is wrapped while the SDK is instrumented, and restored after."""
    import boto3  # noqa: F401 - loads s3transfer, as any function using boto3 does
    from s3transfer.futures import BoundedExecutor

    instrumentation.uninstrument("botocore")
    original = BoundedExecutor.submit
    instrumentation.instrument("botocore")
    assert BoundedExecutor.submit is not original
    assert BoundedExecutor.submit.__wrapped__ is original  # type: ignore[attr-defined]
    instrumentation.uninstrument("botocore")
    assert BoundedExecutor.submit is original


def test_the_first_transfer_of_a_cold_start_carries_the_context(
    moto_url: str, bucket: str, spans: InMemoryExporter, tmp_path: Path
) -> None:
    """Auto-install defers the SDK wrapper to the first call; when that first call is an
    ``upload_file``, its tasks are submitted before any S3 call: the stand-in on s3transfer's
    ``submit`` installs, so even the first transfer's calls are children of the calling span."""
    import botocore.client
    from s3transfer.futures import BoundedExecutor

    source = tmp_path / "source.txt"
    source.write_bytes(b"payload")
    s3 = client("s3", moto_url)
    forget_instrumentation()  # a fresh process: `uninstrument` would opt out of `auto_install`
    original_call, original_submit = botocore.client.BaseClient._make_api_call, BoundedExecutor.submit
    instrumentation.auto_install(runtime.settings)
    assert BoundedExecutor.submit is not original_submit
    assert not getattr(BoundedExecutor.submit, "__nexs_traced__", False)  # a stand-in, not the wrapper
    with tracer.span("handler"):
        s3.upload_file(str(source), bucket, "first")
    assert botocore.client.BaseClient._make_api_call.__wrapped__ is original_call  # type: ignore[attr-defined]
    assert BoundedExecutor.submit.__wrapped__ is original_submit  # type: ignore[attr-defined]
    finished = finish(spans)
    (handler,) = named(finished, "handler")
    (put,) = named(finished, "S3.PutObject")
    assert put.parent_span_id == handler.span_id


def test_a_waiting_stand_in_on_submit_is_removed_by_uninstrument() -> None:
    """A stand-in on s3transfer's ``submit`` that never saw a call is taken out with the SDK's."""
    import boto3  # noqa: F401 - loads s3transfer
    from s3transfer.futures import BoundedExecutor

    forget_instrumentation()  # a fresh process: `uninstrument` would opt out of `auto_install`
    original = BoundedExecutor.submit
    instrumentation.auto_install(runtime.settings)
    assert BoundedExecutor.submit is not original
    instrumentation.uninstrument("botocore")
    assert BoundedExecutor.submit is original


def test_s3transfer_loaded_after_instrument_is_patched_at_the_next_traced_call(
    moto_url: str, bucket: str, tmp_path: Path
) -> None:
    """`instrument` before ``import boto3`` finds no s3transfer to patch (and imports none): the next
    traced call patches it, so later transfers' calls are children of their span."""
    source = tmp_path / "source.txt"
    source.write_bytes(b"payload")
    code = f"""
import sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
from nexs_serverless import instrumentation, tracer
from nexs_serverless.exporters import InMemoryExporter
from nexs_serverless.flushing import flush
from nexs_serverless.testing import reset
instrumentation.instrument("botocore")
print("s3transfer.futures" in sys.modules)
exporter = InMemoryExporter()
reset(exporters=[exporter])
from support.clouds import client
s3 = client("s3", {moto_url!r})
with tracer.span("handler") as handler:
    s3.list_buckets()
    s3.upload_file({str(source)!r}, {bucket!r}, "late")
flush()
print(sorted((span.name, span.parent_span_id == handler.span_id) for span in exporter.get_finished_spans()))
"""
    run = subprocess.run  # in tmp_path: the package on sys.path, not the working directory's
    out = run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path)
    loaded, names = out.stdout.splitlines()[-2:]
    assert loaded == "False"
    assert names == "[('S3.ListBuckets', True), ('S3.PutObject', True), ('handler', False)]"


# aws_limits: the size accounting, loaded only by the calls that need it


def test_size_accounting_loads_only_for_calls_that_carry_a_message(moto_url: str, tmp_path: Path) -> None:
    """A call that carries no message (``ListQueues``) does not load `aws_limits`; a send does."""
    code = f"""
import sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
from support.clouds import client
from nexs_serverless import instrumentation, tracer
instrumentation.instrument("botocore")
sqs = client("sqs", {moto_url!r})
url = sqs.create_queue(QueueName="limits")["QueueUrl"]
with tracer.span("handler"):
    sqs.list_queues()
    print("nexs_serverless.instrumentation.aws_limits" in sys.modules)
    sqs.send_message(QueueUrl=url, MessageBody="hello")
    print("nexs_serverless.instrumentation.aws_limits" in sys.modules)
"""
    run = subprocess.run  # in tmp_path: the package on sys.path, not the working directory's
    out = run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path)
    assert out.stdout.split() == ["False", "True"]
