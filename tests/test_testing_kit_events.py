"""The sample events and the event factories of `nexs_serverless.testing`."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest

from nexs_serverless import config, platforms, triggers
from nexs_serverless.testing import AzureContext, LambdaContext, events, native
from nexs_serverless.testing._fixtures import source

# The `faas.trigger` OpenTelemetry gives each shipped sample's source.
EXPECTED_TRIGGERS = {
    "api-gateway-v1": "http",
    "api-gateway-v2": "http",
    "alb": "http",
    "function-url": "http",
    "sqs": "pubsub",
    "sns": "pubsub",
    "sns-sqs": "pubsub",
    "eventbridge": "pubsub",
    "eventbridge-scheduled": "timer",
    "kinesis": "pubsub",
    "dynamodb": "datasource",
    "s3": "datasource",
    "step-functions": "other",
    "gcp-http": "http",
    "gcp-pubsub": "pubsub",
    "gcp-storage": "datasource",
    "gcp-scheduler": "timer",
    "azure-http": "http",
    "azure-queue": "pubsub",
    "azure-servicebus": "pubsub",
    "azure-eventhub": "pubsub",
}
ISSUE_TRIGGERS = {  # the issue's list: each has a factory
    "api-gateway-v1",
    "api-gateway-v2",
    "alb",
    "function-url",
    "sqs",
    "sns",
    "eventbridge",
    "kinesis",
    "dynamodb",
    "s3",
    "gcp-http",
    "gcp-pubsub",
    "azure-http",
}
FACTORIES = {name: getattr(events, name.replace("-", "_")) for name in sorted(ISSUE_TRIGGERS)}
PLATFORM_MODULES = {"gcp": "gcp_cloud_functions", "azure": "azure_functions"}


def describe(event: dict[str, object], name: str) -> triggers.Trigger:
    """Describe `event` as the tracer would, passed as its platform's runtime passes it."""
    cloud = name.split("-", 1)[0] if name.startswith(("gcp-", "azure-")) else "aws"
    if cloud == "aws":
        return triggers.describe(event)
    context = AzureContext() if cloud == "azure" else None
    args = native.build_args(cloud, event, context)
    platform = platforms.load(PLATFORM_MODULES[cloud])
    described: triggers.Trigger = platform.describe(args[0], context, config.load({})[0])
    return described


def test_every_issue_trigger_has_a_sample_and_a_factory() -> None:
    """The CLI and the kit ship a sample for each trigger of the issue."""
    assert set(ISSUE_TRIGGERS) <= set(events.names())


def test_every_sample_has_an_expected_trigger() -> None:
    """A sample added without a line in EXPECTED_TRIGGERS fails here, so none goes unchecked."""
    assert set(events.names()) == set(EXPECTED_TRIGGERS)


@pytest.mark.parametrize("name", events.names())
def test_sample_event_is_a_json_object(name: str) -> None:
    """Each sample file parses to a JSON object."""
    assert isinstance(json.loads(source(name)), dict)


@pytest.mark.parametrize("name", events.names())
def test_sample_is_recognised_by_trigger_detection(name: str) -> None:
    """The tracer describes each sample, as its runtime passes it, with its OpenTelemetry `faas.trigger`."""
    assert describe(events.load(name), name).trigger == EXPECTED_TRIGGERS.get(name)


@pytest.mark.parametrize("name", sorted(ISSUE_TRIGGERS))
def test_factory_default_is_recognised_like_the_sample(name: str) -> None:
    """A factory called with no arguments gives an event of the same trigger as its sample."""
    assert describe(FACTORIES[name](), name).trigger == EXPECTED_TRIGGERS[name]


def test_load_returns_a_fresh_copy() -> None:
    """Mutating a loaded event does not change the next one."""
    first = events.load("sqs")
    first["Records"].clear()
    assert len(events.load("sqs")["Records"]) == 2


def test_unknown_sample_name_lists_the_known_ones() -> None:
    """Asking for a missing sample raises KeyError naming the samples that exist."""
    with pytest.raises(KeyError, match="api-gateway-v2"):
        events.load("no-such-event")


def test_api_gateway_v2_overrides_shape_what_the_tracer_reads() -> None:
    """Method, path, query, headers and body land where API Gateway puts them, and name the span."""
    event = events.api_gateway_v2(
        method="put", path="/orders/7", headers={"X-Tenant": "acme"}, query={"a": "1"}, body={"n": 1}
    )
    assert event["requestContext"]["http"]["method"] == "PUT"
    assert event["rawPath"] == "/orders/7"
    assert event["routeKey"] == "PUT /orders/7"
    assert event["rawQueryString"] == "a=1"
    assert event["headers"]["x-tenant"] == "acme"
    assert event["headers"]["content-length"] == str(len('{"n":1}'))
    assert json.loads(event["body"]) == {"n": 1}
    described = triggers.describe(event)
    assert described.name == "PUT /orders/7"
    assert described.attributes["url.query"] == "a=1"


def test_api_gateway_v2_route_template_differs_from_path() -> None:
    """`route` gives the template while the path stays concrete."""
    event = events.api_gateway_v2(method="GET", path="/orders/7", route="/orders/{id}")
    assert triggers.describe(event).name == "GET /orders/{id}"
    assert event["rawPath"] == "/orders/7"


def test_api_gateway_v1_path_without_resource_becomes_the_route() -> None:
    """A new path with no template is its own resource, with no path parameters."""
    event = events.api_gateway_v1(method="POST", path="/checkout", body="raw")
    assert event["resource"] == event["requestContext"]["resourcePath"] == "/checkout"
    assert event["pathParameters"] is None
    assert event["requestContext"]["path"] == "/prod/checkout"
    assert event["body"] == "raw"
    assert triggers.describe(event).name == "POST /checkout"


def test_headers_merge_case_insensitively_and_none_removes() -> None:
    """Header overrides replace the sample's header of any case; None deletes it."""
    event = events.api_gateway_v1(headers={"user-agent": "pytest", "traceparent": None})
    assert event["headers"]["user-agent"] == "pytest"
    assert "User-Agent" not in event["headers"]
    assert not any(key.lower() == "traceparent" for key in event["headers"])
    assert event["multiValueHeaders"]["user-agent"] == ["pytest"]


def test_function_url_keeps_its_default_route() -> None:
    """Function URLs have no route: `routeKey` stays ``$default``."""
    event = events.function_url(method="DELETE", path="/items/3")
    assert event["routeKey"] == "$default"
    assert ".lambda-url." in event["requestContext"]["domainName"]
    assert triggers.describe(event).attributes["nexs.trigger.source"] == "lambda_url"


def test_alb_overrides() -> None:
    """ALB events take method, path, query and body."""
    event = events.alb(method="post", path="/api", query={"q": "x"}, body={"a": 1})
    assert (event["httpMethod"], event["path"], event["queryStringParameters"]) == (
        "POST",
        "/api",
        {"q": "x"},
    )
    assert triggers.describe(event).attributes["nexs.trigger.source"] == "alb"


def test_overrides_merge_into_nested_dicts() -> None:
    """`overrides` merges dicts and replaces other values."""
    event = events.api_gateway_v2(overrides={"requestContext": {"stage": "prod"}, "isBase64Encoded": True})
    assert event["requestContext"]["stage"] == "prod"
    assert event["requestContext"]["http"]["method"] == "POST"
    assert event["isBase64Encoded"] is True


def test_sqs_messages_become_records_with_fresh_ids() -> None:
    """Each message is one record with its body, MD5 and a new message id."""
    event = events.sqs(messages=["plain", {"orderId": "9"}, "third"], queue="payments")
    records = event["Records"]
    assert [record["body"] for record in records] == ["plain", '{"orderId":"9"}', "third"]
    assert len({record["messageId"] for record in records}) == 3
    assert records[0]["md5OfBody"] == hashlib.md5(b"plain").hexdigest()
    assert {record["eventSourceARN"] for record in records} == {"arn:aws:sqs:us-east-1:123456789012:payments"}


def test_sqs_without_trace_headers() -> None:
    """`trace_headers=False` removes both the X-Ray system attribute and the traceparent attribute."""
    record = events.sqs(trace_headers=False)["Records"][0]
    assert "AWSTraceHeader" not in record["attributes"]
    assert "traceparent" not in record["messageAttributes"]


def test_sns_messages_subject_and_attributes() -> None:
    """SNS records carry the message, subject, topic ARN and string attributes."""
    event = events.sns(
        messages=[{"a": 1}], topic="alerts", subject="hi", attributes={"kind": "x", "order_type": None}
    )
    notification = event["Records"][0]["Sns"]
    assert notification["Message"] == '{"a":1}'
    assert notification["TopicArn"] == "arn:aws:sns:us-east-1:123456789012:alerts"
    assert notification["Subject"] == "hi"
    assert notification["MessageAttributes"]["kind"] == {"Type": "String", "Value": "x"}
    assert "order_type" not in notification["MessageAttributes"]


def test_eventbridge_detail() -> None:
    """EventBridge factory sets detail, detail-type and source, with a fresh id."""
    event = events.eventbridge(detail={"x": 1}, detail_type="Shipped", source="com.example.shipping")
    assert (event["detail"], event["detail-type"], event["source"]) == (
        {"x": 1},
        "Shipped",
        "com.example.shipping",
    )
    assert event["id"] != events.eventbridge()["id"]


def test_kinesis_records_are_base64_encoded() -> None:
    """Kinesis payloads are base64 in `kinesis.data`, with distinct sequence numbers."""
    event = events.kinesis(records=[b"\x00\x01", {"k": "v"}], partition_key="p", stream="clicks")
    first, second = event["Records"]
    assert base64.b64decode(first["kinesis"]["data"]) == b"\x00\x01"
    assert json.loads(base64.b64decode(second["kinesis"]["data"])) == {"k": "v"}
    assert first["kinesis"]["sequenceNumber"] != second["kinesis"]["sequenceNumber"]
    assert second["kinesis"]["partitionKey"] == "p"
    assert second["eventSourceARN"].endswith(":stream/clicks")


def test_dynamodb_plain_values_become_typed_json() -> None:
    """Plain Python values are converted to DynamoDB's attribute-value JSON."""
    event = events.dynamodb(
        keys={"id": 7}, new_image={"id": 7, "ok": True, "tags": ["a"], "meta": {"n": None}}
    )
    change = event["Records"][0]["dynamodb"]
    assert change["Keys"] == {"id": {"N": "7"}}
    assert change["NewImage"] == {
        "id": {"N": "7"},
        "ok": {"BOOL": True},
        "tags": {"L": [{"S": "a"}]},
        "meta": {"M": {"n": {"NULL": True}}},
    }


def test_dynamodb_remove_has_only_the_old_image() -> None:
    """A REMOVE record has an old image and no new one."""
    change = events.dynamodb(event_name="remove", table="carts")["Records"][0]
    assert change["eventName"] == "REMOVE"
    assert "NewImage" not in change["dynamodb"]
    assert change["dynamodb"]["OldImage"]
    assert ":table/carts/stream/" in change["eventSourceARN"]


def test_s3_object() -> None:
    """The S3 factory sets bucket, key, size and event name."""
    record = events.s3(bucket="b", key="k.txt", size=3, event_name="ObjectRemoved:Delete")["Records"][0]
    assert record["s3"]["bucket"] == {**record["s3"]["bucket"], "name": "b", "arn": "arn:aws:s3:::b"}
    assert (record["s3"]["object"]["key"], record["s3"]["object"]["size"]) == ("k.txt", 3)
    assert record["eventName"] == "ObjectRemoved:Delete"


def test_s3_key_is_url_encoded_as_s3_sends_it() -> None:
    """S3 notifications carry the key ``quote_plus``-encoded; the tracer reads back the stored key."""
    key = "reports/2026 Q1/my file+v1 (final).csv"
    event = events.s3(key=key)
    assert event["Records"][0]["s3"]["object"]["key"] == "reports/2026+Q1/my+file%2Bv1+%28final%29.csv"
    assert triggers.describe(event).attributes["aws.s3.key"] == key


@pytest.mark.parametrize("factory", [events.api_gateway_v2, events.function_url])
def test_payload_2_cookies_are_in_cookies_not_a_header(factory: Any) -> None:
    """Payload 2.0 delivers request cookies as ``cookies`` (``name=value`` each) and no cookie header."""
    event = factory(headers={"Cookie": "session=abc; theme=dark;", "X-Other": "1"})
    assert event["cookies"] == ["session=abc", "theme=dark"]
    assert not any(name.lower() == "cookie" for name in event["headers"])
    assert event["headers"]["x-other"] == "1"
    assert "cookies" not in factory(headers={"cookie": None})  # None removes them, as for headers


BINARY = bytes(range(256))  # not UTF-8: a lossy decode cannot give it back


@pytest.mark.parametrize("name", ["api-gateway-v1", "api-gateway-v2", "function-url", "alb"])
def test_binary_http_bodies_are_base64_encoded(name: str) -> None:
    """Bytes are binary: base64 with ``isBase64Encoded``, as API Gateway, ALB and Function URLs send them."""
    factory = getattr(events, name.replace("-", "_"))
    event = factory(body=BINARY)
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == BINARY
    if "content-length" in event["headers"]:
        assert event["headers"]["content-length"] == str(len(BINARY))
    text = factory(body={"a": 1})
    assert (text["body"], text["isBase64Encoded"]) == ('{"a":1}', False)


def test_gcp_http_becomes_a_flask_request() -> None:
    """The Cloud Functions HTTP event builds the Flask request functions-framework passes."""
    request = native.flask_request(
        events.gcp_http(method="put", path="/v1/x", query={"a": "b"}, body={"n": 2})
    )
    assert (request.method, request.path, request.args["a"]) == ("PUT", "/v1/x", "b")
    assert request.get_json() == {"n": 2}
    assert request.headers["traceparent"].startswith("00-")


def test_gcp_pubsub_becomes_a_cloud_event() -> None:
    """The Pub/Sub sample builds a CloudEvent whose message data and attributes are set."""
    event = native.cloud_event(
        events.gcp_pubsub(data={"n": 3}, attributes={"k": "v"}, topic="t", subscription="s")
    )
    message = event.data["message"]
    assert event["type"] == "google.cloud.pubsub.topic.v1.messagePublished"
    assert event["source"] == "//pubsub.googleapis.com/projects/my-project/topics/t"
    assert json.loads(base64.b64decode(message["data"])) == {"n": 3}
    assert message["attributes"]["k"] == "v"
    assert event.data["subscription"] == "projects/my-project/subscriptions/s"


def test_azure_http_becomes_an_http_request() -> None:
    """The Azure HTTP event builds an `azure.functions.HttpRequest` with URL, params and body."""
    request = native.azure_request(
        events.azure_http(method="get", path="/api/items", params={"p": "1"}, body="")
    )
    assert request.method == "GET"
    assert request.url == "https://my-func-app.azurewebsites.net/api/items?p=1"
    assert request.params["p"] == "1"
    assert request.get_body() == b""


def test_build_args_per_platform() -> None:
    """Lambda gets (event, context), Google one object, Azure (request, context)."""
    context = LambdaContext()
    assert native.build_args("aws", {"a": 1}, context) == ({"a": 1}, context)
    assert len(native.build_args("gcp", events.gcp_pubsub(), None)) == 1
    azure = AzureContext()
    assert native.build_args("azure", events.azure_http(), azure)[1] is azure
    with pytest.raises(ValueError, match="unknown platform"):
        native.build_args("heroku", {}, None)
    with pytest.raises(ValueError, match="not an Azure HTTP request"):
        native.build_args("azure", {"foo": 1}, azure)


@pytest.mark.parametrize(
    ("name", "attribute", "value"),
    [
        ("azure-queue", "dequeue_count", 1),
        ("azure-servicebus", "delivery_count", 1),
        ("azure-eventhub", "partition_key", "order-42"),
    ],
)
def test_azure_messages_become_worker_objects(name: str, attribute: str, value: object) -> None:
    """Queue, Service Bus and Event Hubs samples build the objects the Azure worker passes."""
    message = native.build_args("azure", events.load(name), AzureContext())[0]
    assert getattr(message, attribute) == value
    assert json.loads(message.get_body()) == {"orderId": "42", "status": "placed"}


def test_lambda_context_client_context_and_fake_clock() -> None:
    """The Lambda stand-in builds client_context like the runtime and counts down with the clock."""
    now = [100.0]
    context = LambdaContext(timeout_ms=1000, clock=lambda: now[0], client_context={"custom": {"k": "v"}})
    now[0] += 0.25
    assert context.get_remaining_time_in_millis() == 750
    assert context.client_context is not None
    assert context.client_context.custom == {"k": "v"}
    assert context.client_context.env is None


def test_azure_context_carries_the_host_trace_context() -> None:
    """The Azure stand-in exposes the host's traceparent the way the worker does."""
    context = AzureContext(trace_parent="00-" + "1" * 32 + "-" + "2" * 16 + "-01")
    assert context.trace_context.trace_parent.endswith("-01")
    assert context.invocation_id


def test_shipped_sqs_samples_carry_the_checksums_sqs_computes() -> None:
    """The sample files' md5OfBody and md5OfMessageAttributes are those of their own bodies and
    attributes, as moto computes them like SQS (they were made up, and another body's)."""
    import hashlib

    from moto.sqs.models import Message

    from nexs_serverless.testing import events as kit_events

    for name in ("sqs", "sns-sqs"):
        for record in kit_events.load(name)["Records"]:
            assert record["md5OfBody"] == hashlib.md5(record["body"].encode()).hexdigest(), name
            if record.get("messageAttributes"):
                reference = Message("id", record["body"])
                reference.message_attributes = {
                    key: {"DataType": value["dataType"], "StringValue": value["stringValue"]}
                    for key, value in record["messageAttributes"].items()
                }
                assert record["md5OfMessageAttributes"] == reference.attribute_md5, name
