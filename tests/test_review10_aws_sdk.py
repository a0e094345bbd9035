"""Review 10, AWS SDK and log correlation: what a call carries must never change what the call does."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ParamValidationError
from support.clouds import client
from support.memory import finish

from nexs_serverless import instrumentation, stats, tracer
from nexs_serverless.exporters import InMemoryExporter
from nexs_serverless.instrumentation import aws_operations, logs


@pytest.fixture(autouse=True)
def instrumented() -> Iterator[None]:
    """The SDK instrumented for the test, restored afterwards."""
    instrumentation.instrument("botocore")
    yield
    instrumentation.uninstrument("botocore")


def test_a_named_start_execution_retried_with_the_same_input_is_the_same_execution(
    moto_url: str, spans: InMemoryExporter
) -> None:
    """A standard execution is idempotent on (name, input): a carrier that differs per call turned the
    retry into ExecutionAlreadyExists; a named start keeps its input and still gets ``traceHeader``."""
    sfn = client("stepfunctions", moto_url)
    definition = {"StartAt": "Wait", "States": {"Wait": {"Type": "Wait", "Seconds": 600, "End": True}}}
    machine = sfn.create_state_machine(
        name="idempotent",
        roleArn="arn:aws:iam::123456789012:role/states",
        definition=json.dumps(definition),
    )["stateMachineArn"]
    with tracer.span("handler"):
        first = sfn.start_execution(stateMachineArn=machine, name="order-42", input='{"id": 42}')
        again = sfn.start_execution(stateMachineArn=machine, name="order-42", input='{"id": 42}')
    assert again["executionArn"] == first["executionArn"]
    assert sfn.describe_execution(executionArn=first["executionArn"])["input"] == '{"id": 42}'
    starts = [span for span in finish(spans) if span.name == "SFN.StartExecution"]
    assert len(starts) == 2


def test_an_unnamed_start_execution_still_carries_the_context_in_its_input() -> None:
    """Without a name there is no idempotency to keep: the input gets its ``_nexs`` carrier."""
    params: dict[str, Any] = {"stateMachineArn": "arn:aws:states:us-east-1:1:stateMachine:m", "input": "{}"}
    with tracer.span("handler"):
        aws_operations.inject_context("SFN", "StartExecution", params)
    assert "_nexs" in json.loads(params["input"])
    assert params["traceHeader"].startswith("Root=1-")


def test_put_records_near_5_mib_is_not_pushed_past_the_request_limit(
    moto_url: str, spans: InMemoryExporter
) -> None:
    """Ten 512 KiB records fit PutRecords' 5 MiB; the carriers pushed the request over (the call failed):
    the records now go as written, the skip counted."""
    kinesis = client("kinesis", moto_url)
    kinesis.create_stream(StreamName="near-limit", ShardCount=1)
    data = b'{"v":"' + b"x" * (512 * 1024 - 10) + b'"}'
    records = [{"Data": data, "PartitionKey": "k"} for _ in range(10)]
    assert sum(len(data) + 1 for _ in records) <= 5 * 1024 * 1024
    with tracer.span("handler"):
        answer = kinesis.put_records(StreamName="near-limit", Records=records)
    assert answer["FailedRecordCount"] == 0
    assert stats()["carrier_skipped_size"] == 1
    small = [{"Data": b'{"v": 1}', "PartitionKey": "k"}]
    params: dict[str, Any] = {"StreamName": "near-limit", "Records": small}
    with tracer.span("handler"):
        aws_operations.inject_context("Kinesis", "PutRecords", params)
    assert "_nexs" in json.loads(params["Records"][0]["Data"])  # a small batch still carries it


def _sqs_send(endpoint: str, **params: Any) -> Callable[[], Any]:
    sqs = client("sqs", endpoint)
    url = sqs.create_queue(QueueName="wrong-types")["QueueUrl"]
    return lambda: sqs.send_message(QueueUrl=url, MessageBody="x", **params)


def _sqs_batch(endpoint: str, **params: Any) -> Callable[[], Any]:
    sqs = client("sqs", endpoint)
    url = sqs.create_queue(QueueName="wrong-types")["QueueUrl"]
    return lambda: sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": "1", "MessageBody": "x", **params}])


def _sns_publish(endpoint: str, **params: Any) -> Callable[[], Any]:
    sns = client("sns", endpoint)
    arn = sns.create_topic(Name="wrong-types")["TopicArn"]
    return lambda: sns.publish(TopicArn=arn, Message="x", **params)


def _lambda_invoke(endpoint: str, **params: Any) -> Callable[[], Any]:
    return lambda: client("lambda", endpoint).invoke(FunctionName="nowhere", **params)


def _put_events(endpoint: str, **params: Any) -> Callable[[], Any]:
    entry = {"Source": "orders", "DetailType": "placed", "Detail": "{}", **params}
    return lambda: client("events", endpoint).put_events(Entries=[entry])


@pytest.mark.parametrize(
    ("call", "params"),
    [
        (_sqs_send, {"MessageAttributes": "kind=retail"}),
        (_sqs_send, {"MessageAttributes": None}),
        (_sqs_send, {"MessageSystemAttributes": ["AWSTraceHeader"]}),
        (_sqs_batch, {"MessageAttributes": None}),
        (_sns_publish, {"MessageAttributes": ["kind"]}),
        (_lambda_invoke, {"ClientContext": {"custom": {"tenant": "acme"}}}),
        (_put_events, {"TraceHeader": ""}),
    ],
    ids=[
        "sqs-str",
        "sqs-none",
        "sqs-system-list",
        "sqs-batch-none",
        "sns-list",
        "lambda-dict",
        "events-empty",
    ],
)
def test_a_parameter_of_the_wrong_type_fails_as_botocore_says(
    moto_url: str, spans: InMemoryExporter, call: Any, params: dict[str, Any]
) -> None:
    """A value botocore rejects stays the caller's to see rejected: ours replaced it (their attributes
    or client context silently dropped, the call sent and answered)."""
    send = call(moto_url, **params)
    with pytest.raises(ParamValidationError):
        send()  # without a trace: botocore's verdict
    with tracer.span("handler"), pytest.raises(ParamValidationError):
        send()


@pytest.mark.parametrize(
    ("function", "name", "region"),
    [
        ("charge:prod", "charge", "us-east-1"),
        ("arn:aws:lambda:eu-west-1:123456789012:function:charge:3", "charge", "eu-west-1"),
        ("123456789012:function:charge", "charge", "us-east-1"),
        ("charge", "charge", "us-east-1"),
    ],
)
def test_an_invoke_span_names_the_function_and_its_region(
    moto_url: str, spans: InMemoryExporter, function: str, name: str, region: str
) -> None:
    """``faas.invoked_name`` is the function's name whatever form ``FunctionName`` takes (it was the
    alias or version after the last colon); ``faas.invoked_region``, which the conventions require for
    AWS, is the ARN's region, else the client's."""
    lambda_client = client("lambda", moto_url)
    with tracer.span("handler"), pytest.raises(lambda_client.exceptions.ClientError):
        lambda_client.invoke(FunctionName=function, Payload=b"{}")
    (invoke,) = [span for span in finish(spans) if span.name == "Lambda.Invoke"]
    assert invoke.attributes["faas.invoked_name"] == name
    assert invoke.attributes["faas.invoked_provider"] == "aws"
    assert invoke.attributes["faas.invoked_region"] == region


def test_lambda_calls_that_invoke_nothing_have_no_faas_invoked_attributes() -> None:
    """``faas.invoked_*`` describe an invocation: a ``GetFunction`` span is not one."""
    _, _, attributes = aws_operations.describe("Lambda", "GetFunction", {"FunctionName": "charge"})
    assert not any(key.startswith("faas.") for key in attributes)


@pytest.mark.parametrize(
    "document",
    [
        b'{"custom": {"limit": 1e400}, "env": {"k": 1}}',
        b'{"custom": {"amount": 1.00000000000000000001}}',
        b'{"custom": {"a": 1}, "custom": {"b": 2}}',
    ],
    ids=["overflow", "long-decimal", "duplicate-key"],
)
def test_a_client_context_that_would_not_survive_rewriting_is_sent_as_written(document: bytes) -> None:
    """Parsing and writing the caller's client context again turned ``1e400`` into ``Infinity`` (not
    JSON: the invocation is refused) and cut digits or keys: it is now left as written, counted."""
    encoded = base64.b64encode(document).decode()
    params: dict[str, Any] = {"FunctionName": "charge", "ClientContext": encoded}
    with tracer.span("handler"):
        aws_operations.inject_context("Lambda", "Invoke", params)
    assert params["ClientContext"] == encoded
    assert stats()["carrier_skipped_inexact"] == 1


def test_a_client_context_with_exact_numbers_gets_the_context() -> None:
    """Numbers a float holds exactly (``0.1``, ``1E2``, big integers) do not stop the injection."""
    document = {"custom": {"rate": 0.1, "count": 10**30}, "env": {"scale": 100.0}}
    encoded = base64.b64encode(json.dumps(document).encode()).decode()
    params: dict[str, Any] = {"FunctionName": "charge", "ClientContext": encoded}
    with tracer.span("handler"):
        aws_operations.inject_context("Lambda", "Invoke", params)
    sent = json.loads(base64.b64decode(params["ClientContext"]))
    assert sent["custom"]["rate"] == 0.1
    assert sent["custom"]["count"] == 10**30
    assert "traceparent" in sent["custom"]


def _entry_bytes(entry: dict[str, Any]) -> int:
    """EventBridge's entry size, as its user guide computes it."""
    size = 14 if "Time" in entry else 0
    size += sum(len(entry[key].encode()) for key in ("Source", "DetailType", "Detail") if key in entry)
    return size + sum(len(resource.encode()) for resource in entry.get("Resources", ()))


@pytest.mark.parametrize("count", [1, 2])
def test_put_events_carriers_keep_the_request_within_256_kib(count: int) -> None:
    """EventBridge counts Source, DetailType, Resources and Time with the Detail, across a request's
    entries: carriers checked against the Detail alone pushed a request that fit past the limit."""
    per_entry = 256 * 1024 // count
    entries = []
    for index in range(count):
        resources = [f"arn:aws:s3:::bucket-{index}/" + "k" * 200]  # enough for the Detail alone to fit
        head = {"Source": "orders.service", "DetailType": "placed", "Resources": resources}
        filler = per_entry - _entry_bytes({**head, "Detail": '{"v":""}'}) - 14 - 4
        entries.append({**head, "Time": "2026-01-01", "Detail": '{"v":"' + "x" * filler + '"}'})
    assert sum(_entry_bytes(entry) for entry in entries) <= 256 * 1024
    params: dict[str, Any] = {"Entries": entries}
    with tracer.span("handler"):
        aws_operations.inject_context("EventBridge", "PutEvents", params)
    assert sum(_entry_bytes(entry) for entry in params["Entries"]) <= 256 * 1024
    assert [entry["Detail"] for entry in params["Entries"]] == [entry["Detail"] for entry in entries]
    assert all(entry["TraceHeader"].startswith("Root=1-") for entry in params["Entries"])  # not counted
    assert stats()["carrier_skipped_size"] == 1


@pytest.fixture
def record_factory() -> Iterator[None]:
    """The logging module's factory and ``Logger.makeRecord`` as they were, put back after the test."""
    factory, make_record = logging.getLogRecordFactory(), logging.Logger.makeRecord
    yield
    logs.uninstall()
    logging.setLogRecordFactory(factory)
    logging.Logger.makeRecord = make_record  # type: ignore[method-assign]


def _stack_a_factory_of_theirs() -> None:
    """What a library installing its own factory after ours does: call the one it found."""
    below = logging.getLogRecordFactory()

    def theirs(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = below(*args, **kwargs)
        record.tenant = "acme"
        return record

    logging.setLogRecordFactory(theirs)


@pytest.mark.parametrize("reinstalled", [False, True])
def test_uninstrumenting_logging_under_a_later_factory_stops_stamping(
    record_factory: None, reinstalled: bool
) -> None:
    """With another factory above ours, `uninstrument("logging")` left ours stamping below it and put
    ``makeRecord`` back: a log call's own ``extra={"trace_id": ...}`` then raised KeyError."""
    logs.install()
    _stack_a_factory_of_theirs()
    if reinstalled:  # installed again over theirs: one of ours stamps, and uninstall stops both
        logs.install()
        with tracer.span("handler"):
            record = logging.getLogRecordFactory()("n", logging.INFO, "f", 1, "m", (), None)
        assert record.trace_id is not None
        assert record.tenant == "acme"
    instrumentation.uninstrument("logging")
    logger = logging.getLogger("review10.aws_sdk")
    logger.warning("mine", extra={"trace_id": "caller's own"})  # raised KeyError
    record = logging.getLogRecordFactory()("n", logging.INFO, "f", 1, "m", (), None)
    assert "trace_id" not in vars(record)
    assert record.tenant == "acme"  # theirs still works
