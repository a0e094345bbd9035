"""AWS SDK instrumentation against moto in server mode: spans, attributes, the context each call carries."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from support.clouds import client, receive_all, sqs_event
from support.memory import finish

from nexs_serverless import SpanKind, StatusCode, baggage, instrumentation, tracer
from nexs_serverless.context import exporting
from nexs_serverless.exporters import InMemoryExporter
from nexs_serverless.finished import FinishedSpan
from nexs_serverless.instrumentation import aws_operations
from nexs_serverless.runtime import runtime
from nexs_serverless.testing import reset
from nexs_serverless.testing.state import forget_instrumentation
from nexs_serverless.triggers import describe


@pytest.fixture(autouse=True)
def instrumented() -> Iterator[None]:
    """The SDK and urllib3 instrumented for the test, restored afterwards."""
    instrumentation.instrument("botocore", "urllib3")
    yield
    instrumentation.uninstrument("botocore", "urllib3")


def queue(sqs: Any, name: str) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def by_name(spans: list[FinishedSpan], name: str) -> FinishedSpan:
    return next(span for span in spans if span.name == name)


def test_send_message_is_a_producer_span_whose_context_the_message_carries(
    moto_url: str, spans: InMemoryExporter
) -> None:
    """SendMessage: a PRODUCER span; the message carries it as traceparent and AWSTraceHeader."""
    sqs = client("sqs", moto_url)
    url, _ = queue(sqs, "orders-send")
    attributes = {"kind": {"DataType": "String", "StringValue": "retail"}}
    with tracer.span("handler"):
        sqs.send_message(QueueUrl=url, MessageBody="hello", MessageAttributes=attributes)
    (message,) = receive_all(sqs, url)
    send = by_name(finish(spans), "send orders-send")
    assert send.kind == SpanKind.PRODUCER
    assert send.attributes["messaging.system"] == "aws_sqs"
    assert send.attributes["messaging.destination.name"] == "orders-send"
    assert send.attributes["rpc.system"] == "aws-api"
    assert send.attributes["rpc.service"] == "SQS"
    assert send.attributes["rpc.method"] == "SendMessage"
    assert send.attributes["aws.sqs.queue.url"] == url
    assert send.attributes["messaging.message.id"] == message["MessageId"]
    assert send.attributes["aws.request_id"]
    expected = f"00-{send.trace_id:032x}-{send.span_id:016x}-01"
    assert message["MessageAttributes"]["traceparent"]["StringValue"] == expected
    assert message["MessageAttributes"]["kind"]["StringValue"] == "retail"
    assert f"Parent={send.span_id:016x}" in message["Attributes"]["AWSTraceHeader"]
    assert attributes == {
        "kind": {"DataType": "String", "StringValue": "retail"}
    }  # the caller's dict is untouched


def test_the_http_request_under_an_sdk_call_is_not_traced_twice(
    moto_url: str, spans: InMemoryExporter
) -> None:
    """The SDK call's own span is the only one: urllib3 underneath adds none."""
    sqs = client("sqs", moto_url)
    url, _ = queue(sqs, "orders-single")
    with tracer.span("handler"):
        sqs.send_message(QueueUrl=url, MessageBody="hello")
    assert sorted(span.name for span in finish(spans)) == ["handler", "send orders-single"]


def test_message_attribute_limit_is_respected(moto_url: str, spans: InMemoryExporter) -> None:
    """With 9 attributes only traceparent fits; with 10, none is added; AWSTraceHeader always is."""
    sqs = client("sqs", moto_url)
    url, _ = queue(sqs, "orders-full")
    nine = {f"a{i}": {"DataType": "String", "StringValue": "x"} for i in range(9)}
    ten = {**nine, "a9": {"DataType": "String", "StringValue": "x"}}
    baggage.set("tenant", "acme")
    try:
        with tracer.span("handler"):
            sqs.send_message(QueueUrl=url, MessageBody="nine", MessageAttributes=nine)
            sqs.send_message(QueueUrl=url, MessageBody="ten", MessageAttributes=ten)
    finally:
        baggage.clear()
    messages = {m["Body"]: m for m in receive_all(sqs, url)}
    assert set(messages["nine"]["MessageAttributes"]) == {*nine, "traceparent"}
    assert set(messages["ten"]["MessageAttributes"]) == set(ten)
    assert all("AWSTraceHeader" in m["Attributes"] for m in messages.values())
    from nexs_serverless import stats

    assert stats()["propagation_skipped_attribute_limit"] == 3  # baggage once, traceparent and baggage once


def test_send_message_batch_puts_the_context_on_every_entry(moto_url: str, spans: InMemoryExporter) -> None:
    """SendMessageBatch: one span, every entry carries it."""
    sqs = client("sqs", moto_url)
    url, _ = queue(sqs, "orders-batch")
    with tracer.span("handler"):
        sqs.send_message_batch(
            QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": f"m{i}"} for i in range(3)]
        )
    send = by_name(finish(spans), "send orders-batch")
    assert send.attributes["messaging.batch.message_count"] == 3
    parents = {m["MessageAttributes"]["traceparent"]["StringValue"] for m in receive_all(sqs, url)}
    assert parents == {f"00-{send.trace_id:032x}-{send.span_id:016x}-01"}


def test_sqs_message_from_moto_continues_the_trace_in_the_consumer(
    moto_url: str, spans: InMemoryExporter
) -> None:
    """The received message, as Lambda delivers it, makes the consumer a child of the send span."""
    sqs = client("sqs", moto_url)
    url, arn = queue(sqs, "orders-consume")
    with tracer.span("handler"):
        sqs.send_message(QueueUrl=url, MessageBody="hello")
    send = by_name(finish(spans), "send orders-consume")
    trigger = describe(sqs_event(receive_all(sqs, url), arn))
    assert trigger.parent is not None
    assert (trigger.parent.trace_id, trigger.parent.span_id) == (send.trace_id, send.span_id)


def test_sns_publish_reaches_an_sqs_subscriber_with_its_context(
    moto_url: str, spans: InMemoryExporter
) -> None:
    """SNS Publish carries the context in message attributes, through an SQS subscription."""
    sns, sqs = client("sns", moto_url), client("sqs", moto_url)
    url, arn = queue(sqs, "from-topic")
    topic = sns.create_topic(Name="orders-topic")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    with tracer.span("handler"):
        sns.publish(TopicArn=topic, Message="hello")
    publish = by_name(finish(spans), "send orders-topic")
    assert publish.kind == SpanKind.PRODUCER
    assert publish.attributes["aws.sns.topic.arn"] == topic
    trigger = describe(sqs_event(receive_all(sqs, url), arn))
    assert trigger.parent is not None
    assert trigger.parent.span_id == publish.span_id
    assert trigger.attributes["aws.sns.topic.arn"] == topic


def test_put_events_carries_the_context_in_the_detail_and_trace_header(
    moto_url: str, spans: InMemoryExporter
) -> None:
    """PutEvents: `_nexs` in the JSON detail (read by the EventBridge trigger) and the X-Ray TraceHeader."""
    events_client, sqs = client("events", moto_url), client("sqs", moto_url)
    url, arn = queue(sqs, "from-bus")
    events_client.put_rule(Name="orders", EventPattern=json.dumps({"source": ["com.example.orders"]}))
    events_client.put_targets(Rule="orders", Targets=[{"Id": "q", "Arn": arn}])
    captured: list[dict[str, Any]] = []
    events_client.meta.events.register(
        "before-call.eventbridge.PutEvents", lambda params, **_: captured.append(params)
    )
    detail = {"orderId": "42"}
    with tracer.span("handler"):
        events_client.put_events(
            Entries=[
                {"Source": "com.example.orders", "DetailType": "OrderPlaced", "Detail": json.dumps(detail)}
            ]
        )
    put = by_name(finish(spans), "send default")
    assert put.attributes["messaging.system"] == "aws_eventbridge"
    (entry,) = json.loads(captured[0]["body"])["Entries"]
    assert f"Parent={put.span_id:016x}" in entry["TraceHeader"]
    (message,) = receive_all(sqs, url)
    trigger = describe(json.loads(message["Body"]))
    assert trigger.parent is not None
    assert trigger.parent.span_id == put.span_id
    assert detail == {"orderId": "42"}


def test_put_events_sends_the_detail_text_unchanged_but_for_the_carrier(
    moto_url: str, spans: InMemoryExporter
) -> None:
    """The carrier goes before the closing brace; numbers a JSON round trip would change are kept."""
    events_client = client("events", moto_url)
    captured: list[dict[str, Any]] = []
    events_client.meta.events.register(
        "before-call.eventbridge.PutEvents", lambda params, **_: captured.append(params)
    )
    detail = '{"amount": 1e400, "price": 0.10000000000000000555, "id": 12345678901234567890.0}\n'
    with tracer.span("handler"):
        events_client.put_events(Entries=[{"Source": "s", "DetailType": "t", "Detail": detail}])
    put = by_name(finish(spans), "send default")
    (entry,) = json.loads(captured[0]["body"])["Entries"]
    carrier = f'"_nexs":{{"traceparent":"00-{put.trace_id:032x}-{put.span_id:016x}-01"}}'
    assert entry["Detail"] == detail[:-2] + "," + carrier + "}\n"


@pytest.mark.parametrize(
    ("service", "operation", "field", "document", "expected"),
    [
        ("Kinesis", "PutRecord", "Data", b'{"n": 1e400}', b'{"n": 1e400,CARRIER}'),
        (
            "Kinesis",
            "PutRecord",
            "Data",
            bytearray(b'{"a": [1, {"b": 2.50}]} \n'),
            b'{"a": [1, {"b": 2.50}],CARRIER} \n',
        ),
        ("SFN", "StartExecution", "input", "{ }\r\n", "{ CARRIER}\r\n"),
        (
            "SFN",
            "StartExecution",
            "input",
            '{"big": 123456789012345678901234567890}',
            '{"big": 123456789012345678901234567890,CARRIER}',
        ),
    ],
    ids=["bytes", "bytearray", "empty-object", "big-integer"],
)
def test_payload_carrier_is_inserted_and_every_other_byte_kept(
    spans: InMemoryExporter, service: str, operation: str, field: str, document: object, expected: str | bytes
) -> None:
    """Kinesis data, Step Functions input: `_nexs` goes before the closing brace, every other byte kept."""
    params: dict[str, Any] = {field: document}
    with tracer.span("handler") as span:
        aws_operations.inject_context(service, operation, params)
    carrier = f'"_nexs":{{"traceparent":"00-{span.trace_id:032x}-{span.span_id:016x}-01"}}'
    if isinstance(expected, bytes):
        assert params[field] == expected.replace(b"CARRIER", carrier.encode())
    else:
        assert params[field] == expected.replace("CARRIER", carrier)


@pytest.mark.parametrize(
    "document",
    [
        b"[1, 2]",
        '{"a": 1} trailing',
        "{'a': 1}",
        '{"_nexs": {}}',
        '{"a":' + "[" * 100_000 + "]" * 100_000 + "}",
    ],
    ids=["array", "trailing-text", "not-json", "has-carrier", "too-deep"],
)
def test_a_payload_that_is_not_one_json_object_is_sent_unchanged(
    spans: InMemoryExporter, document: object
) -> None:
    """Not one JSON object, already carrying `_nexs`, or too deep to parse: the payload is left as it is."""
    params: dict[str, Any] = {"Data": document}
    with tracer.span("handler"):
        aws_operations.inject_context("Kinesis", "PutRecord", params)
    assert params["Data"] is document


def test_kinesis_put_record_carries_the_context_in_json_data(moto_url: str, spans: InMemoryExporter) -> None:
    """PutRecord: a `_nexs` carrier inside JSON data, read back by the Kinesis trigger."""
    kinesis = client("kinesis", moto_url)
    kinesis.create_stream(StreamName="clicks", ShardCount=1)
    with tracer.span("handler"):
        kinesis.put_record(StreamName="clicks", Data=b'{"page":"/"}', PartitionKey="k")
        kinesis.put_record(StreamName="clicks", Data=b"\x00binary", PartitionKey="k")
    put = by_name(finish(spans), "send clicks")
    shard = kinesis.describe_stream(StreamName="clicks")["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = kinesis.get_shard_iterator(
        StreamName="clicks", ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )
    first, second = kinesis.get_records(ShardIterator=iterator["ShardIterator"])["Records"]
    assert second["Data"] == b"\x00binary"  # not JSON: left alone
    record = {
        "kinesis": {"data": base64.b64encode(first["Data"]).decode(), "partitionKey": "k"},
        "eventSource": "aws:kinesis",
        "eventID": "shardId-000000000000:1",
        "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/clicks",
    }
    trigger = describe({"Records": [record]})
    assert trigger.parent is not None
    assert trigger.parent.span_id == put.span_id


def test_sns_publish_batch_puts_the_context_on_every_entry(moto_url: str, spans: InMemoryExporter) -> None:
    """PublishBatch: one span; every entry reaches the SQS subscriber with it, beside its own attributes."""
    sns, sqs = client("sns", moto_url), client("sqs", moto_url)
    url, arn = queue(sqs, "from-batch-topic")
    topic = sns.create_topic(Name="batch-topic")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})
    entries = [
        {
            "Id": str(i),
            "Message": f"m{i}",
            "MessageAttributes": {"kind": {"DataType": "String", "StringValue": f"k{i}"}},
        }
        for i in range(3)
    ]
    with tracer.span("handler"):
        sns.publish_batch(TopicArn=topic, PublishBatchRequestEntries=entries)
    publish = by_name(finish(spans), "send batch-topic")
    assert publish.kind == SpanKind.PRODUCER
    assert publish.attributes["messaging.system"] == "aws.sns"  # the conventions' value (not aws_sns)
    assert publish.attributes["messaging.batch.message_count"] == 3
    messages = receive_all(sqs, url)
    assert sorted(m["Body"] for m in messages) == ["m0", "m1", "m2"]
    for message in messages:
        attributes = message["MessageAttributes"]
        assert (
            attributes["traceparent"]["StringValue"]
            == f"00-{publish.trace_id:032x}-{publish.span_id:016x}-01"
        )
        assert attributes["kind"]["StringValue"] == f"k{message['Body'][1]}"
    assert entries[0]["MessageAttributes"] == {"kind": {"DataType": "String", "StringValue": "k0"}}


def test_kinesis_put_records_carries_the_context_in_every_json_record(
    moto_url: str, spans: InMemoryExporter
) -> None:
    """PutRecords: every JSON-object record carries the context (the trigger links them); others do not."""
    kinesis = client("kinesis", moto_url)
    kinesis.create_stream(StreamName="views", ShardCount=1)
    with tracer.span("handler"):
        kinesis.put_records(
            StreamName="views",
            Records=[
                {"Data": b'{"page":"/a"}', "PartitionKey": "k"},
                {"Data": b"[1, 2]", "PartitionKey": "k"},
                {"Data": b'{"page":"/b"}', "PartitionKey": "k"},
            ],
        )
    put = by_name(finish(spans), "send views")
    shard = kinesis.describe_stream(StreamName="views")["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = kinesis.get_shard_iterator(StreamName="views", ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    records = kinesis.get_records(ShardIterator=iterator["ShardIterator"])["Records"]
    assert [json.loads(r["Data"]).get("page") if r["Data"].startswith(b"{") else None for r in records] == [
        "/a",
        None,
        "/b",
    ]
    assert records[1]["Data"] == b"[1, 2]"  # a JSON array has no place for a carrier: left alone
    event = {
        "Records": [
            {
                "kinesis": {"data": base64.b64encode(r["Data"]).decode(), "partitionKey": "k"},
                "eventSource": "aws:kinesis",
                "eventID": f"shardId-000000000000:{i}",
                "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/views",
            }
            for i, r in enumerate(records)
        ]
    }
    trigger = describe(event)
    linked = {(link.context.trace_id, link.context.span_id) for link in trigger.links}
    assert linked == {(put.trace_id, put.span_id)}
    assert len(trigger.links) == 2


def moto_config(endpoint: str, update: dict[str, Any] | None = None) -> dict[str, Any]:
    """moto's user config (``/moto-api/config``), after POSTing `update` when given."""
    import urllib.request

    data = json.dumps(update).encode() if update is not None else None
    request = urllib.request.Request(
        f"{endpoint}/moto-api/config", data=data, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        config: dict[str, Any] = json.loads(response.read())
    return config


@pytest.fixture
def docker_free_lambda(moto_url: str) -> Iterator[str]:
    """moto's Lambda without Docker (Invoke answers with the payload); the config is restored afterwards.

    moto's config is process-wide (the server runs in this process), hence the restore.
    """
    before = moto_config(moto_url)["lambda"]
    assert moto_config(moto_url, {"lambda": {"use_docker": False}})["lambda"] == {"use_docker": False}
    try:
        yield moto_url
    finally:
        moto_config(moto_url, {"lambda": before})


def test_lambda_invoke_and_start_execution_carry_the_context(
    docker_free_lambda: str, spans: InMemoryExporter
) -> None:
    """Invoke sends ClientContext.custom; StartExecution sends traceHeader and `_nexs` in the input."""
    import io
    import zipfile

    endpoint = docker_free_lambda
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": ["lambda.amazonaws.com", "states.amazonaws.com"]},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    role = client("iam", endpoint).create_role(
        RoleName="nexs-invoke", AssumeRolePolicyDocument=json.dumps(trust)
    )["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("index.py", "def handler(event, context):\n    return event\n")
    lambda_client, sfn = client("lambda", endpoint), client("stepfunctions", endpoint)
    lambda_client.create_function(
        FunctionName="charge",
        Runtime="python3.11",
        Role=role,
        Handler="index.handler",
        Code={"ZipFile": code.getvalue()},
    )
    machine = sfn.create_state_machine(
        name="orders",
        roleArn=role,
        definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}),
    )["stateMachineArn"]
    invoked: list[Any] = []
    started: list[Any] = []
    # `before-send` sees the request as it goes out: serialized, signed, about to reach moto.
    # (The handler must return None: anything else would be taken as the response.)
    lambda_client.meta.events.register(
        "before-send.lambda.Invoke", lambda request, **_: invoked.append(request)
    )
    sfn.meta.events.register("before-send.sfn.StartExecution", lambda request, **_: started.append(request))
    with tracer.span("handler") as handler:
        answer = lambda_client.invoke(FunctionName="charge", Payload=b'{"amount": 5}')
        execution = sfn.start_execution(
            stateMachineArn=machine, input=json.dumps({"orderId": "42", "items": [1, 2]})
        )
    finished = finish(spans)
    invoke, start = by_name(finished, "Lambda.Invoke"), by_name(finished, "SFN.StartExecution")
    trace = f"{handler.trace_id:032x}"
    xray_root = f"Root=1-{trace[:8]}-{trace[8:]}"

    assert answer["StatusCode"] == 200
    assert json.loads(answer["Payload"].read()) == {"amount": 5}
    assert invoke.kind == SpanKind.CLIENT
    assert invoke.trace_id == handler.trace_id
    assert invoke.parent_span_id == handler.span_id
    assert invoke.attributes["rpc.service"] == "Lambda"
    assert invoke.attributes["rpc.method"] == "Invoke"
    assert invoke.attributes["faas.invoked_name"] == "charge"
    assert invoke.attributes["faas.invoked_provider"] == "aws"
    assert invoke.attributes["aws.request_id"]
    assert invoke.attributes["http.response.status_code"] == 200
    (request,) = invoked
    header = request.headers["X-Amz-Client-Context"]
    assert "x-amz-client-context" in request.headers["Authorization"].decode()  # signed with the request
    assert json.loads(base64.b64decode(header)) == {
        "custom": {
            "traceparent": f"00-{trace}-{invoke.span_id:016x}-01",
            "X-Amzn-Trace-Id": f"{xray_root};Parent={invoke.span_id:016x};Sampled=1",
        }
    }

    assert start.kind == SpanKind.CLIENT
    assert start.trace_id == handler.trace_id
    assert start.parent_span_id == handler.span_id
    assert start.attributes["rpc.service"] == "SFN"
    assert start.attributes["rpc.method"] == "StartExecution"
    assert start.attributes["aws.step_functions.state_machine.arn"] == machine
    assert start.attributes["aws.request_id"]
    (sent,) = started
    body = json.loads(sent.body)
    assert body["traceHeader"] == f"{xray_root};Parent={start.span_id:016x};Sampled=1"
    stored = sfn.describe_execution(executionArn=execution["executionArn"])["input"]
    assert json.loads(stored) == {
        "orderId": "42",
        "items": [1, 2],
        "_nexs": {"traceparent": f"00-{trace}-{start.span_id:016x}-01"},
    }


def test_a_failed_call_is_an_error_span_and_the_error_propagates(
    moto_url: str, spans: InMemoryExporter
) -> None:
    """An SDK error is recorded on the span (status, error.type, exception event) and raised unchanged."""
    sqs = client("sqs", moto_url)
    with tracer.span("handler"), pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.send_message(QueueUrl=f"{moto_url}/123456789012/missing", MessageBody="x")
    send = by_name(finish(spans), "send missing")
    assert send.status_code == StatusCode.ERROR
    assert send.attributes["error.type"] == "AWS.SimpleQueueService.NonExistentQueue"  # the error code
    assert send.events[0].name == "exception"
    assert send.attributes["http.response.status_code"] == 400


def test_parameter_errors_end_the_span_too(spans: InMemoryExporter) -> None:
    """botocore rejecting the parameters (no request sent) still ends the span, as an error."""
    from botocore.exceptions import ParamValidationError

    sqs = client("sqs", "http://127.0.0.1:9")
    with tracer.span("handler"), pytest.raises(ParamValidationError):
        sqs.send_message(QueueUrl="https://q", MessageBody=42)
    send = by_name(finish(spans), "send q")
    assert send.end_ns
    assert send.status_code == StatusCode.ERROR


def test_calls_outside_a_trace_are_not_traced(moto_url: str, spans: InMemoryExporter) -> None:
    """No current span (init code): no span, no context added."""
    sqs = client("sqs", moto_url)
    url, _ = queue(sqs, "orders-outside")
    sqs.send_message(QueueUrl=url, MessageBody="hello")
    (message,) = receive_all(sqs, url)
    assert "MessageAttributes" not in message
    assert finish(spans) == []


def test_calls_made_while_exporting_are_not_traced(moto_url: str, spans: InMemoryExporter) -> None:
    """The tracer's own export calls (suppressed context) get no span."""
    import time

    sqs = client("sqs", moto_url)
    with tracer.span("handler"), exporting(time.monotonic() + 5):
        sqs.list_queues()
    assert [span.name for span in finish(spans)] == ["handler"]


def test_uninstrument_restores_the_sdk(moto_url: str, spans: InMemoryExporter) -> None:
    """After `uninstrument`, calls are plain again, even on clients made while instrumented."""
    sqs = client("sqs", moto_url)
    with tracer.span("warm-up"):
        sqs.list_queues()  # the client's emitter now has our hook
    reset(exporters=[spans])
    instrumentation.uninstrument()
    with tracer.span("handler"):
        sqs.list_queues()
    assert [span.name for span in finish(spans)] == ["handler"]


def test_clients_created_before_instrumenting_are_traced(moto_url: str, spans: InMemoryExporter) -> None:
    """A client made at import time (before the first invocation) is instrumented too."""
    instrumentation.uninstrument("botocore")
    sqs = client("sqs", moto_url)
    instrumentation.instrument("botocore")
    with tracer.span("handler"):
        sqs.list_queues()
    assert sorted(span.name for span in finish(spans)) == ["SQS.ListQueues", "handler"]


def test_the_first_invocation_leaves_a_stand_in_that_installs_at_the_first_call(
    moto_url: str, spans: InMemoryExporter
) -> None:
    """Auto-install defers the SDK wrapper to the first call, which is traced like any other."""
    import botocore.client

    forget_instrumentation()  # a fresh process: `uninstrument` would opt out of `auto_install`
    original = botocore.client.BaseClient._make_api_call
    instrumentation.auto_install(runtime.settings)
    stand_in = botocore.client.BaseClient._make_api_call
    assert stand_in is not original
    assert stand_in.__wrapped__ is original
    assert not getattr(stand_in, "__nexs_traced__", False)
    sqs = client("sqs", moto_url)
    with tracer.span("handler"):
        sqs.list_queues()
        sqs.list_queues()
    wrapper = botocore.client.BaseClient._make_api_call
    assert getattr(wrapper, "__nexs_traced__", False)
    assert wrapper.__wrapped__ is original  # the wrapper wraps the SDK's method, not the stand-in
    names = sorted(span.name for span in finish(spans))
    assert names == ["SQS.ListQueues", "SQS.ListQueues", "handler"]


def test_uninstrument_removes_a_waiting_stand_in(spans: InMemoryExporter) -> None:
    """A stand-in that never saw a call is taken out by `uninstrument`, leaving the SDK's own method."""
    import botocore.client
    import urllib3.connectionpool

    forget_instrumentation()  # a fresh process: `uninstrument` would opt out of `auto_install`
    original = botocore.client.BaseClient._make_api_call
    original_urlopen = urllib3.connectionpool.HTTPConnectionPool.urlopen
    instrumentation.auto_install(runtime.settings)
    assert botocore.client.BaseClient._make_api_call is not original
    assert urllib3.connectionpool.HTTPConnectionPool.urlopen is not original_urlopen
    instrumentation.uninstrument("botocore", "urllib3")
    assert botocore.client.BaseClient._make_api_call is original
    assert urllib3.connectionpool.HTTPConnectionPool.urlopen is original_urlopen


def test_instrument_replaces_a_waiting_stand_in(moto_url: str, spans: InMemoryExporter) -> None:
    """An explicit `instrument` after auto-install wraps the SDK's method once, not the stand-in."""
    import botocore.client

    forget_instrumentation()  # a fresh process: `uninstrument` would opt out of `auto_install`
    original = botocore.client.BaseClient._make_api_call
    instrumentation.auto_install(runtime.settings)
    instrumentation.instrument("botocore")
    wrapper = botocore.client.BaseClient._make_api_call
    assert wrapper.__wrapped__ is original
    with tracer.span("handler"):
        client("sqs", moto_url).list_queues()
    assert sorted(span.name for span in finish(spans)) == ["SQS.ListQueues", "handler"]


def test_a_cold_start_without_aws_calls_loads_no_sdk_instrumentation(moto_url: str) -> None:
    """In a fresh process, the first invocation loads none of the SDK/HTTP instrumentation modules."""
    code = f"""
import sys, boto3
from nexs_serverless import configure, traced_handler
from nexs_serverless.exporters import InMemoryExporter
from nexs_serverless.testing import LambdaContext
exporter = InMemoryExporter()
configure(exporters=[exporter])
sqs = boto3.client("sqs", endpoint_url={moto_url!r}, region_name="us-east-1",
                   aws_access_key_id="testing", aws_secret_access_key="testing")
calls = []

@traced_handler
def handler(event, context):
    if calls:
        sqs.list_queues()
    calls.append(1)
    return {{"ok": True}}

handler({{}}, LambdaContext())
lazy = ["nexs_serverless.instrumentation._client", "nexs_serverless.instrumentation.botocore_hooks",
        "nexs_serverless.instrumentation.urllib3_client"]
print(sorted(name for name in lazy if name in sys.modules))
handler({{}}, LambdaContext())
print(sorted(name for name in lazy if name in sys.modules))
print(sorted(span.name for span in exporter.get_finished_spans()))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    before, after, names = out.stdout.splitlines()[-3:]
    assert before == "[]"
    assert "nexs_serverless.instrumentation.botocore_hooks" in after
    assert "SQS.ListQueues" in names


def test_a_wrapper_stacked_on_the_stand_in_does_not_loop(moto_url: str, spans: InMemoryExporter) -> None:
    """Another library wrapping ``_make_api_call`` after the first invocation put our stand-in
    there (the X-Ray SDK's ``patch``, a wrapt wrapper): every later call recursed for ever."""
    import botocore.client

    forget_instrumentation()  # a fresh process: `uninstrument` would opt out of `auto_install`
    instrumentation.auto_install(runtime.settings)  # the stand-in, as at the first invocation
    owner = botocore.client.BaseClient
    ours = owner._make_api_call

    def theirs(self: Any, *args: Any, **kwargs: Any) -> Any:  # what a later patch installs
        return ours(self, *args, **kwargs)

    owner._make_api_call = theirs  # type: ignore[method-assign]
    try:
        sqs = client("sqs", moto_url)
        assert sqs.list_queues()["ResponseMetadata"]["HTTPStatusCode"] == 200  # installs ours for real
        with tracer.span("handler"):  # then through ours, theirs, the stand-in: to the original
            assert sqs.list_queues()["ResponseMetadata"]["HTTPStatusCode"] == 200
    finally:
        instrumentation.uninstrument("botocore")
        owner._make_api_call = ours.__wrapped__ if hasattr(ours, "__wrapped__") else ours  # type: ignore[method-assign]
    assert "ListQueues" in {span.attributes.get("rpc.method") for span in finish(spans)}


def test_put_events_without_a_detail_stays_without_one(moto_url: str, spans: InMemoryExporter) -> None:
    """An entry with no ``Detail`` is sent as it was (a ``Detail: None`` made up here failed botocore's
    validation, so the user's call raised)."""
    events = client("events", moto_url)
    entries = [{"Source": "orders", "DetailType": "placed"}]
    untraced = events.put_events(Entries=entries)
    with tracer.span("handler"):
        traced = events.put_events(Entries=entries)  # raised ParamValidationError before
    assert traced["FailedEntryCount"] == untraced["FailedEntryCount"]


def test_a_record_at_the_kinesis_limit_has_no_carrier(moto_url: str, spans: InMemoryExporter) -> None:
    """A 1 MiB record (data and partition key) has no room for the carrier: sent unchanged, counted."""
    from nexs_serverless import stats

    kinesis = client("kinesis", moto_url)
    kinesis.create_stream(StreamName="limit", ShardCount=1)
    key = "k"
    data = b'{"blob": "' + b"x" * (1024 * 1024 - len(key) - 12) + b'"}'
    assert len(data) + len(key) == 1024 * 1024
    with tracer.span("handler"):
        answer = kinesis.put_records(StreamName="limit", Records=[{"Data": data, "PartitionKey": key}])
    assert answer["FailedRecordCount"] == 0
    assert stats()["carrier_skipped_size"] == 1


def test_dynamodb_spans_name_the_system_and_every_table(moto_url: str, spans: InMemoryExporter) -> None:
    """``db.system`` on every DynamoDB span; a batch names its tables too."""
    dynamodb = client("dynamodb", moto_url)
    dynamodb.create_table(
        TableName="orders",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    with tracer.span("handler"):
        dynamodb.batch_write_item(RequestItems={"orders": [{"PutRequest": {"Item": {"id": {"S": "1"}}}}]})
    batch = by_name(finish(spans), "DynamoDB.BatchWriteItem")
    assert batch.attributes["db.system"] == "dynamodb"
    assert tuple(batch.attributes["aws.dynamodb.table_names"]) == ("orders",)


def test_an_event_bus_named_by_its_arn_is_named_by_its_name() -> None:
    """``EventBusName`` may be the bus's ARN: the span names the bus, not the whole ARN."""
    arn = "arn:aws:events:eu-west-1:123456789012:event-bus/orders"
    name, _, attributes = aws_operations.describe(
        "EventBridge", "PutEvents", {"Entries": [{"EventBusName": arn}]}
    )
    assert name == "send orders"
    assert attributes["messaging.destination.name"] == "orders"


def test_the_callers_own_client_context_entries_win(spans: InMemoryExporter) -> None:
    """A ``traceparent`` the caller put in ``ClientContext.custom`` stays (ours is added only where the
    caller has none, as for SQS and SNS attributes); before, ours overwrote it."""
    custom = {"TraceParent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01", "tenant": "acme"}
    encoded = base64.b64encode(json.dumps({"custom": custom}).encode()).decode()
    params: dict[str, Any] = {"FunctionName": "charge", "ClientContext": encoded}
    with tracer.span("handler"):
        aws_operations.inject_context("Lambda", "Invoke", params)
    sent = json.loads(base64.b64decode(params["ClientContext"]))["custom"]
    assert sent["TraceParent"] == custom["TraceParent"]
    assert "traceparent" not in sent
    assert sent["tenant"] == "acme"
    assert "X-Amzn-Trace-Id" in sent  # ours, where the caller had none


def test_a_message_at_a_size_limit_goes_without_our_attributes(
    moto_url: str, spans: InMemoryExporter
) -> None:
    """SQS counts message attributes in a message's size: ours never push one past 256 KiB (or 1 MiB).

    The message goes as the application wrote it, with the X-Ray system
    attribute (not counted in the size), and the skip is counted; a smaller
    message still carries ``traceparent``.
    """
    from nexs_serverless import stats

    sqs = client("sqs", moto_url)
    url, _ = queue(sqs, "orders-at-limit")
    own = {"kind": {"DataType": "String", "StringValue": "order"}}
    body = "x" * (256 * 1024 - len("kind") - len("String") - len("order") - 10)
    with tracer.span("handler"):
        sqs.send_message(QueueUrl=url, MessageBody=body, MessageAttributes=own)
        sqs.send_message(QueueUrl=url, MessageBody="small", MessageAttributes=own)
    messages = {m["Body"]: m for m in receive_all(sqs, url)}
    assert set(messages[body]["MessageAttributes"]) == {"kind"}
    assert "AWSTraceHeader" in messages[body]["Attributes"]
    assert set(messages["small"]["MessageAttributes"]) == {"kind", "traceparent"}
    assert stats()["carrier_skipped_size"] == 1


def test_a_batch_at_its_size_limit_goes_without_our_attributes(
    moto_url: str, spans: InMemoryExporter
) -> None:
    """A batch's messages count together: ours are left off every entry when they would pass the limit."""
    from nexs_serverless import stats

    sqs = client("sqs", moto_url)
    url, _ = queue(sqs, "orders-batch-at-limit")
    half = "y" * (128 * 1024 - 20)
    with tracer.span("handler"):
        sqs.send_message_batch(
            QueueUrl=url, Entries=[{"Id": "1", "MessageBody": half}, {"Id": "2", "MessageBody": half}]
        )
    received = receive_all(sqs, url)
    assert len(received) == 2
    assert all("traceparent" not in m.get("MessageAttributes", {}) for m in received)
    assert stats()["carrier_skipped_size"] == 1


def test_sns_messages_are_kept_within_256_kib() -> None:
    """An SNS message that our attributes would push past 256 KiB keeps its own attributes only."""
    from nexs_serverless import stats

    reset()
    body = "z" * (256 * 1024 - 8)
    with tracer.span("handler"):
        near = {"TopicArn": "arn:aws:sns:us-east-1:123456789012:orders", "Message": body}
        aws_operations.inject_context("SNS", "Publish", near)
        small = {"TopicArn": "arn:aws:sns:us-east-1:123456789012:orders", "Message": "small"}
        aws_operations.inject_context("SNS", "Publish", small)
    assert "MessageAttributes" not in near
    assert "traceparent" in small["MessageAttributes"]
    assert stats()["carrier_skipped_size"] == 1
