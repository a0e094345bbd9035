"""Triggers, second review: AWS's event shapes at their edges, huge batches, where the parent comes from."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Iterator

import pytest

from nexs_serverless import SpanKind, traced_handler, tracer
from nexs_serverless.exporters import InMemoryExporter
from nexs_serverless.finished import FinishedSpan
from nexs_serverless.platforms import aws
from nexs_serverless.propagation._carrier import text
from nexs_serverless.propagation.incoming import Incoming, activate, deactivate
from nexs_serverless.runtime import runtime
from nexs_serverless.testing import LambdaContext, events, reset
from nexs_serverless.triggers import describe
from nexs_serverless.triggers._messages import MAX_MESSAGES_READ, read_batch
from nexs_serverless.triggers._web import http_trigger

W3C_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SQS_TRACE = "6749f3a05759e988bd862e3fe1be46a9"  # the sample SQS message's AWSTraceHeader and traceparent
ENV_HEADER = "Root=1-11111111-222222222222222222222222;Parent=3333333333333333;Sampled=1"
ENV_TRACE = "11111111222222222222222222222222"
# What botocore's recursion detection copies into every request from a function with X-Ray off.
UNSAMPLED = "Root=1-6749f3a0-5759e988bd862e3fe1be46a9;Parent=53995c3f42cd8ad8;Sampled=0;Lineage=a87bd80c:0"

_environ: dict[str, str] = {}


@pytest.fixture(autouse=True)
def _settings() -> Iterator[None]:
    """Each test starts from an empty configuration (tests put variables in `_environ`)."""
    _environ.clear()
    reset(environ=_environ)
    yield
    _environ.clear()


def run(event: object, context: object | None = None, result: object = None) -> list[FinishedSpan]:
    """Invoke a traced handler returning `result` with `event`; every exported span."""
    exporter = InMemoryExporter()
    reset(exporters=[exporter], environ=_environ)

    @traced_handler
    def handler(event: object, context: object) -> object:
        return result

    handler(event, context or LambdaContext())
    return exporter.get_finished_spans()


def root_of(spans: list[FinishedSpan]) -> FinishedSpan:
    return next(span for span in spans if not span.parent_span_id or span.parent_is_remote)


def traceparent(trace: int | str, span: str = "00f067aa0ba902b7") -> str:
    trace_hex = trace if isinstance(trace, str) else f"{trace:032x}"
    return f"00-{trace_hex}-{span}-01"


def sqs_batch(traces: list[int | str | None], *, message_ids: bool = True) -> dict[str, object]:
    """An SQS batch, one message per entry: a traceparent attribute of that trace, or none."""
    template = events.sqs(messages=["m"])["Records"][0]
    records = []
    for index, trace in enumerate(traces):
        record = copy.deepcopy(template)
        record["attributes"].pop("AWSTraceHeader", None)
        record["messageAttributes"] = (
            {}
            if trace is None
            else {"traceparent": {"stringValue": traceparent(trace), "dataType": "String"}}
        )
        if message_ids:
            record["messageId"] = f"m-{index}"
        else:
            del record["messageId"]
        records.append(record)
    return {"Records": records}


# -- a trigger parser never raises -------------------------------------------------------------

LAMBDA_EVENTS = [
    "alb",
    "api-gateway-v1",
    "api-gateway-v2",
    "dynamodb",
    "eventbridge",
    "eventbridge-scheduled",
    "function-url",
    "kinesis",
    "s3",
    "sns",
    "sns-sqs",
    "sqs",
    "step-functions",
]
ODD_VALUES: list[object] = [
    None,
    [],
    {},
    0,
    -1,
    1.5,
    True,
    "",
    "x",
    [None],
    [[["deep"]]],
    {"a": None},
    10**30,
]


def _paths(value: object, prefix: tuple[object, ...] = ()) -> Iterator[tuple[object, ...]]:
    if prefix:
        yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value[:2]):
            yield from _paths(item, (*prefix, index))


def _replaced(event: dict[str, object], path: tuple[object, ...], value: object) -> dict[str, object]:
    changed = copy.deepcopy(event)
    target: object = changed
    for step in path[:-1]:
        target = target[step]  # type: ignore[index]
    target[path[-1]] = copy.deepcopy(value)  # type: ignore[index]
    return changed


@pytest.mark.parametrize("name", LAMBDA_EVENTS)
def test_no_field_of_any_shipped_event_makes_describe_raise(name: str) -> None:
    """Any field replaced by null, a number, a list, a nested list: describe and on_result never raise."""
    base = events.load(name)
    with tracer.span("stand-in root") as span:
        for path in list(_paths(base)):
            for value in ODD_VALUES:
                trigger = aws.describe(_replaced(base, path, value), LambdaContext(), runtime.settings)
                assert trigger.trigger in ("http", "pubsub", "datasource", "timer", "other")
                if trigger.on_result is not None:
                    trigger.on_result(span, {"statusCode": value})
                    trigger.on_result(span, value)


@pytest.mark.parametrize(
    "result", [None, "text", [], {"statusCode": None}, {"statusCode": "abc"}, {"statusCode": 1e3}]
)
def test_odd_handler_results_never_break_the_http_root(result: object) -> None:
    """A response of any shape leaves the root span recorded and the result unchanged."""
    (root,) = run(events.load("api-gateway-v1"), result=result)
    assert root.attributes["faas.trigger"] == "http"


# -- HTTP: API Gateway REST and HTTP APIs, Function URLs, ALB ------------------------------------


def test_a_null_header_value_is_absent_not_the_text_none() -> None:
    """``"User-Agent": null`` in a REST API event records no user agent (it was the string 'None')."""
    event = events.load("api-gateway-v1")
    event["headers"]["User-Agent"] = None
    event["multiValueHeaders"].pop("User-Agent", None)
    assert "user_agent.original" not in describe(event).attributes


def test_a_host_with_a_port_gives_server_address_and_port() -> None:
    """``Host: localhost:3000`` (sam local) is server.address localhost and server.port 3000."""
    event = events.api_gateway_v1(headers={"Host": "localhost:3000"})
    event["multiValueHeaders"]["Host"] = ["localhost:3000"]
    attrs = describe(event).attributes
    assert (attrs["server.address"], attrs["server.port"]) == ("localhost", 3000)


def test_an_alb_request_has_its_client_address_from_x_forwarded_for() -> None:
    """ALB sends no sourceIp: client.address is the first X-Forwarded-For entry (the original client)."""
    event = events.load("alb")
    event["headers"]["x-forwarded-for"] = "198.51.100.7, 10.0.0.1"
    assert describe(event).attributes["client.address"] == "198.51.100.7"


@pytest.mark.parametrize(
    ("forwarded", "address"),
    [
        ("198.51.100.7:51234, 10.0.0.1", "198.51.100.7"),
        ("[2001:db8::7]:443", "2001:db8::7"),
        ("2001:db8::7", "2001:db8::7"),
    ],
)
def test_a_port_in_x_forwarded_for_is_not_part_of_the_address(forwarded: str, address: str) -> None:
    """A proxy that writes the client's port too (``ip:port``, ``[v6]:port``): the address alone."""
    event = events.load("alb")
    event["headers"]["x-forwarded-for"] = forwarded
    assert describe(event).attributes["client.address"] == address


def test_api_gateway_source_ip_wins_over_x_forwarded_for() -> None:
    """The address API Gateway saw is the client's; a header the client may have written is not used."""
    event = events.load("api-gateway-v1")
    event["headers"]["X-Forwarded-For"] = "192.0.2.99"
    event["multiValueHeaders"]["X-Forwarded-For"] = ["192.0.2.99"]
    assert describe(event).attributes["client.address"] == event["requestContext"]["identity"]["sourceIp"]


def test_a_rest_api_query_is_percent_encoded_again_with_every_value() -> None:
    """Decoded parameters holding & = and space are encoded again; repeated keys keep every value."""
    event = events.load("api-gateway-v1")
    event["queryStringParameters"] = {"q": "a&b=c d", "x": "2"}
    event["multiValueQueryStringParameters"] = {"q": ["a&b=c d"], "x": ["1", "2"]}
    assert describe(event).attributes["url.query"] == "q=a%26b%3Dc%20d&x=1&x=2"


def test_an_alb_query_is_kept_as_the_client_sent_it() -> None:
    """ALB does not decode parameters: they are joined as they came, not encoded twice."""
    event = events.load("alb")
    event["queryStringParameters"] = {"q": "a%20b", "tag": "x%26y"}
    assert describe(event).attributes["url.query"] == "q=a%20b&tag=x%26y"


@pytest.mark.parametrize(
    ("method", "original"), [("PURGE", "PURGE"), ("get", "get"), (None, None), (7, None)]
)
def test_a_method_not_known_is_other_and_the_span_is_named_http(method: object, original: str | None) -> None:
    """Unknown or non-text methods: _OTHER, the sent one kept as original, span name HTTP (+ route)."""
    event = events.load("api-gateway-v1")
    event["httpMethod"] = method
    trigger = describe(event)
    assert trigger.attributes["http.request.method"] == "_OTHER"
    assert trigger.attributes.get("http.request.method_original") == original
    assert trigger.name == "HTTP /orders/{id}"


def test_known_methods_follow_otel_instrumentation_http_known_methods() -> None:
    """The server side reads the same override as the outgoing calls: PURGE known, GET no longer."""
    _environ["OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS"] = "PURGE,POST"
    reset(environ=_environ)
    event = events.load("api-gateway-v1")
    event["httpMethod"] = "PURGE"
    assert describe(event).attributes["http.request.method"] == "PURGE"
    event["httpMethod"] = "GET"
    assert describe(event).attributes["http.request.method"] == "_OTHER"


def test_a_request_object_with_an_unknown_method_is_other_too() -> None:
    """Google and Azure requests (`http_trigger`) name and record methods the same way."""
    trigger = http_trigger("PURGE", "https://example.com:8443/cache", {"X-Forwarded-For": "203.0.113.1"})
    assert (trigger.name, trigger.attributes["http.request.method"]) == ("HTTP", "_OTHER")
    assert trigger.attributes["server.port"] == 8443
    assert trigger.attributes["client.address"] == "203.0.113.1"


@pytest.mark.parametrize("name", ["api-gateway-v2", "function-url"])
@pytest.mark.parametrize("result", [{"ok": True}, "plain text", None])
def test_http_api_and_url_results_without_status_code_are_200(name: str, result: object) -> None:
    """Payload 2.0 and Function URLs answer 200 for any other JSON: the span records it."""
    (root,) = run(events.load(name), result=result)
    assert root.attributes["http.response.status_code"] == 200


def test_a_rest_api_result_without_status_code_records_no_status() -> None:
    """A REST API (or ALB) gets no status from such a result (API Gateway answers 502): none is invented."""
    (root,) = run(events.load("api-gateway-v1"), result={"ok": True})
    assert "http.response.status_code" not in root.attributes


def test_the_rest_api_protocol_version_and_the_first_forwarded_scheme_are_recorded() -> None:
    """requestContext.protocol HTTP/1.1 gives 1.1; ``X-Forwarded-Proto: HTTP, https`` gives http."""
    event = events.load("api-gateway-v1")
    event["requestContext"]["protocol"] = "HTTP/1.1"
    event["headers"]["X-Forwarded-Proto"] = "HTTP, https"
    event["multiValueHeaders"]["X-Forwarded-Proto"] = ["HTTP, https"]
    attrs = describe(event).attributes
    assert (attrs["network.protocol.version"], attrs["url.scheme"]) == ("1.1", "http")


# -- SQS: AWSTraceHeader, SNS through SQS, huge batches -----------------------------------------


def test_an_unsampled_aws_trace_header_does_not_drop_the_consumers_trace() -> None:
    """Sampled=0 (botocore copies Lambda's untraced id into each send) is no parent: the root is recorded."""
    event = events.sqs(messages=["one"], trace_headers=False)
    event["Records"][0]["attributes"]["AWSTraceHeader"] = UNSAMPLED
    (root,) = run(event)
    assert not root.parent_span_id
    assert not root.links
    assert "nexs.context.source" not in root.attributes


def test_with_an_unsampled_aws_trace_header_lambdas_sampled_variable_is_the_parent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The message's unsampled header no longer hides Lambda's own sampled X-Ray context."""
    monkeypatch.setenv("_X_AMZN_TRACE_ID", ENV_HEADER)
    event = events.sqs(messages=["one"], trace_headers=False)
    event["Records"][0]["attributes"]["AWSTraceHeader"] = UNSAMPLED
    (root,) = run(event)
    assert f"{root.trace_id:032x}" == ENV_TRACE
    assert root.attributes["nexs.context.source"] == "xray"


@pytest.mark.parametrize(
    "header",
    [
        "Root=1-5759e988-bd862e3fe1be46a99427279;Parent=53995c3f42cd8ad8;Sampled=1",  # Root one digit short
        "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad;Sampled=1",  # Parent one digit short
        "Root=2-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",  # version 2
        "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1",  # no Parent (ALB's form)
        "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled",  # a pair without =
        "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=?",  # receiver decides
        "Self=1-67891234-12456789abcdef012345678",
        "",
    ],
)
def test_a_malformed_or_undecided_aws_trace_header_gives_no_parent_and_the_invocation_is_recorded(
    header: str,
) -> None:
    """Bad lengths, versions, missing parts or Sampled=? are no context; the root is still exported."""
    event = events.sqs(messages=["one"], trace_headers=False)
    event["Records"][0]["attributes"]["AWSTraceHeader"] = header
    (root,) = run(event)
    assert not root.parent_span_id


def test_a_sampled_aws_trace_header_keeps_its_lineage_for_outgoing_calls() -> None:
    """The AWSTraceHeader parent brings Lambda's Lineage along, written back on calls of that trace."""
    from nexs_serverless import propagation

    event = events.sqs(messages=["one"], trace_headers=False)
    event["Records"][0]["attributes"]["AWSTraceHeader"] = UNSAMPLED.replace("Sampled=0", "Sampled=1")
    headers: dict[str, str] = {}
    reset(exporters=[InMemoryExporter()], environ=_environ)

    @traced_handler
    def handler(event: object, context: object) -> None:
        propagation.inject(headers)

    handler(event, LambdaContext())
    assert headers["X-Amzn-Trace-Id"].startswith("Root=1-6749f3a0-5759e988bd862e3fe1be46a9;")
    assert headers["X-Amzn-Trace-Id"].endswith(";Lineage=a87bd80c:0")


def test_sns_through_sqs_with_raw_delivery_reads_the_attributes_sqs_received() -> None:
    """Raw message delivery: SNS attributes arrive as SQS message attributes, the body is the bare message."""
    event = sqs_batch([W3C_TRACE])
    event["Records"][0]["body"] = "order 42 placed"
    (root,) = run(event)
    assert f"{root.trace_id:032x}" == W3C_TRACE


def test_an_sqs_body_that_merely_looks_like_json_gives_no_topic_and_no_context() -> None:
    """A JSON body that is not an SNS notification is the application's: no topic, no context read from it."""
    event = sqs_batch([None])
    event["Records"][0]["body"] = json.dumps({"Type": "Order", "MessageAttributes": {"traceparent": "x"}})
    (root,) = run(event)
    assert "aws.sns.topic.arn" not in root.attributes
    assert not root.parent_span_id


def test_a_huge_batch_of_many_traces_keeps_only_the_link_limit_and_no_parent() -> None:
    """10,000 messages from as many traces: 128 links (the limit), no parent, the batch count intact."""
    (root,) = run(sqs_batch(list(range(1, 10_001))))
    assert len(root.links) == 128
    assert [link.attributes["messaging.message.id"] for link in root.links[:2]] == ["m-0", "m-1"]
    assert not root.parent_span_id
    assert root.attributes["messaging.batch.message_count"] == 10_000


def test_one_trace_beyond_the_link_limit_is_continued_and_the_extra_links_counted() -> None:
    """300 messages of one trace: the invocation continues it, 128 links kept, 172 counted as dropped."""
    (root,) = run(sqs_batch([W3C_TRACE] * 300))
    assert f"{root.trace_id:032x}" == W3C_TRACE
    assert (len(root.links), root.dropped_links) == (128, 172)


def test_a_batch_larger_than_the_read_budget_continues_no_trace() -> None:
    """Past 1,000 messages not every one is read, so one trace cannot be claimed for the batch."""
    (root,) = run(sqs_batch([W3C_TRACE] * (MAX_MESSAGES_READ + 1)))
    assert not root.parent_span_id
    assert len(root.links) == 128


def test_a_larger_link_limit_raises_what_is_read_and_linked() -> None:
    """OTEL_SPAN_LINK_COUNT_LIMIT=2000: a 1,500-message batch of one trace is read in full and continued."""
    _environ["OTEL_SPAN_LINK_COUNT_LIMIT"] = "2000"
    (root,) = run(sqs_batch([W3C_TRACE] * 1500))
    assert f"{root.trace_id:032x}" == W3C_TRACE
    assert len(root.links) == 1500


def test_reading_a_batch_is_bounded_and_stops_once_nothing_more_can_be_learned() -> None:
    """Reading stops once the links are found and no parent is claimable; within budget all is read."""
    calls: list[int] = []

    def read(record: dict[str, object]) -> tuple[str, Incoming] | None:
        calls.append(1)
        from nexs_serverless.model import SpanContext

        return "headers", Incoming(SpanContext(int(record["trace"]), 1, 1, (), True))  # type: ignore[call-overload]

    mixed = [{"trace": index % 2 + 1} for index in range(10_000)]
    batch = read_batch(mixed, read, 5)
    assert (len(calls), len(batch.found), batch.parent) == (5, 5, None)
    calls.clear()
    batch = read_batch([{"trace": 1}] * 10_000, read, 5)  # one trace, but larger than the budget
    assert (len(calls), batch.parent, batch.dropped) == (5, None, 9995)  # the unread count as dropped
    calls.clear()
    batch = read_batch([{"trace": 1}] * 800, read, 5)  # within the budget: read whole, the parent claimed
    assert (len(calls), batch.dropped) == (800, 795)
    assert batch.parent is not None


def test_per_message_spans_stop_at_the_link_limit() -> None:
    """NEXS_SQS_MODE=per_message with a limit of 3: three message spans, not one per message of the batch."""
    _environ.update(NEXS_SQS_MODE="per_message", OTEL_SPAN_LINK_COUNT_LIMIT="3")
    spans = run(sqs_batch([1, 2, 3, 4, 5]))
    root = root_of(spans)
    assert len([span for span in spans if span is not root]) == 3
    assert root.attributes["messaging.batch.message_count"] == 5


def test_per_message_spans_link_their_own_message_when_message_ids_are_missing() -> None:
    """Without messageId each message span still links to its own message (all shared the last link)."""
    _environ["NEXS_SQS_MODE"] = "per_message"
    spans = run(sqs_batch([1, 2, 3], message_ids=False))
    root = root_of(spans)
    messages = sorted((span for span in spans if span is not root), key=lambda span: span.start_ns)
    assert [span.links[0].context.trace_id for span in messages] == [1, 2, 3]
    assert all(span.kind == SpanKind.CONSUMER for span in messages)


# -- xray-lambda: the invocation's variable is not a message's context ---------------------------


def test_with_xray_lambda_a_message_carries_only_its_own_context(monkeypatch: pytest.MonkeyPatch) -> None:
    """Messages with attributes but no context are not linked to Lambda's variable; it is the xray parent."""
    monkeypatch.setenv("_X_AMZN_TRACE_ID", ENV_HEADER)
    _environ["OTEL_PROPAGATORS"] = "tracecontext,baggage,xray-lambda"
    event = sqs_batch([None, None])
    for record in event["Records"]:
        record["messageAttributes"] = {"tenant": {"stringValue": "acme", "dataType": "String"}}
    (root,) = run(event)
    assert not root.links
    assert f"{root.trace_id:032x}" == ENV_TRACE
    assert root.attributes["nexs.context.source"] == "xray"


def test_with_xray_lambda_a_messages_own_x_ray_attribute_is_still_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """xray-lambda reads as xray for a message: an X-Amzn-Trace-Id attribute of its own is its context."""
    monkeypatch.setenv("_X_AMZN_TRACE_ID", ENV_HEADER)
    _environ["OTEL_PROPAGATORS"] = "xray-lambda"
    event = sqs_batch([None])
    header = "Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=00f067aa0ba902b7;Sampled=1"
    event["Records"][0]["messageAttributes"] = {
        "X-Amzn-Trace-Id": {"stringValue": header, "dataType": "String"}
    }
    (root,) = run(event)
    assert f"{root.trace_id:032x}" == W3C_TRACE
    assert root.attributes["nexs.context.source"] == "headers"


def test_with_xray_lambda_an_http_request_still_continues_lambdas_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The invocation's own carrier (the request) keeps xray-lambda's fallback to _X_AMZN_TRACE_ID."""
    monkeypatch.setenv("_X_AMZN_TRACE_ID", ENV_HEADER)
    _environ["OTEL_PROPAGATORS"] = "tracecontext,baggage,xray-lambda"
    event = events.api_gateway_v2(headers={"x-amzn-trace-id": None, "traceparent": None})
    (root,) = run(event)
    assert f"{root.trace_id:032x}" == ENV_TRACE


# -- Kinesis, EventBridge, S3 --------------------------------------------------------------------


def test_a_kinesis_batch_beyond_the_link_limit_links_the_first_records_and_counts_the_rest() -> None:
    """300 records of one trace: the invocation continues it, 128 links kept, 172 counted as dropped."""
    carrier = {"traceparent": traceparent(W3C_TRACE)}
    event = events.kinesis(records=[{"n": 1, "_nexs": carrier}] * 300)
    (root,) = run(event)
    assert f"{root.trace_id:032x}" == W3C_TRACE
    assert (len(root.links), root.dropped_links) == (128, 172)


def test_kinesis_data_mentioning_the_carrier_key_only_in_text_is_no_context() -> None:
    """Data whose text holds "_nexs" but no carrier object reads as no context."""
    event = events.kinesis(records=[{"note": 'the "_nexs" key'}])
    event["Records"][0]["kinesis"]["data"] = base64.b64encode(b'{"note": "\\"_nexs\\""}').decode()
    (root,) = run(event)
    assert not root.parent_span_id


def test_an_s3_event_delivered_by_eventbridge_is_a_datasource_with_the_decoded_key() -> None:
    """source aws.s3 through EventBridge: datasource, insert, bucket and the URL-decoded key, as S3's own."""
    event = events.eventbridge(
        detail={"bucket": {"name": "uploads"}, "object": {"key": "caf%C3%A9+menu%2B1.pdf"}}
    )
    event.update({"source": "aws.s3", "detail-type": "Object Created"})
    (root,) = run(event)
    assert (root.attributes["faas.trigger"], root.kind, root.name) == (
        "datasource",
        SpanKind.SERVER,
        "insert uploads",
    )
    assert root.attributes["faas.document.name"] == root.attributes["aws.s3.key"] == "café menu+1.pdf"
    assert root.attributes["faas.document.collection"] == "uploads"
    assert "messaging.system" not in root.attributes


@pytest.mark.parametrize(
    ("detail_type", "operation"), [("Object Deleted", "delete"), ("Object Tags Added", "edit")]
)
def test_s3_eventbridge_detail_types_map_to_document_operations(detail_type: str, operation: str) -> None:
    """Deleted is delete; the other object events (tags, ACL, restore) edit the object."""
    event = events.eventbridge(detail={"bucket": {"name": "b"}, "object": {"key": "k"}})
    event.update({"source": "aws.s3", "detail-type": detail_type})
    assert describe(event).attributes["faas.document.operation"] == operation


def test_an_s3_key_with_spaces_plus_signs_and_unicode_is_decoded() -> None:
    """S3 encodes a space as +, a + as %2B and UTF-8 as %XX: the document name is the real key."""
    event = events.load("s3")
    event["Records"][0]["s3"]["object"]["key"] = "2026/r%C3%A9sum%C3%A9+final%2Bv2.pdf"
    assert describe(event).attributes["faas.document.name"] == "2026/résumé final+v2.pdf"


@pytest.mark.parametrize(
    "event",
    [
        {"awslogs": {"data": "H4sIAAAAAAAAAA=="}},  # CloudWatch Logs
        {
            "version": "1",
            "triggerSource": "PreSignUp_SignUp",
            "userPoolId": "u",
            "request": {},
            "response": {},
        },
        {"Records": [{"eventSource": "aws:ses", "ses": {"mail": {}}}]},
        {"Records": [{"cf": {"request": {"uri": "/"}}}]},  # CloudFront Lambda@Edge
        {"eventSource": "aws:kafka", "records": {"t-0": []}},
        {
            "requestContext": {"routeKey": "$default", "eventType": "MESSAGE", "connectionId": "c"}
        },  # WebSocket
        {"RequestType": "Create", "ServiceToken": "arn:aws:lambda:us-east-1:1:function:f"},
        {"temperature": 21, "topic": "sensors/1"},  # IoT rule
    ],
)
def test_events_of_other_services_are_other(event: dict[str, object]) -> None:
    """Cognito, CloudWatch Logs, SES, Lambda@Edge, MSK, WebSocket, CloudFormation, IoT: faas.trigger other."""
    (root,) = run(event)
    assert root.attributes["faas.trigger"] == "other"
    assert root.kind == SpanKind.SERVER


# -- carriers and incoming context -------------------------------------------------------------


def test_a_nested_list_header_value_reads_as_absent_without_recursing() -> None:
    """multiValueHeaders hold flat lists; a list nested 100,000 deep is absent, not a RecursionError."""
    deep: list[object] = []
    for _ in range(100_000):
        deep = [deep]
    assert text(deep) is None
    assert text(["a", b"b"]) == "a,b"


def test_deactivating_twice_does_not_raise() -> None:
    """A token already used (a double exit) resets the extras instead of raising RuntimeError."""
    tokens = activate(Incoming())
    deactivate(tokens)
    deactivate(tokens)


def test_messages_left_unread_count_as_dropped_links() -> None:
    """Links full and the batch already two traces: reading stops, and the messages not read count
    as dropped links (they were not counted at all), as with one trace."""
    from nexs_serverless.testing import capture_spans

    @traced_handler
    def consume(event: object, context: object) -> None:
        return None

    with capture_spans(environ={"OTEL_SPAN_LINK_COUNT_LIMIT": "2"}) as spans:
        consume(events.sqs(messages=[1, 2, 3, 4]), LambdaContext())  # two traces, alternating
        root = spans.spans[0]
    assert (len(root.links), root.dropped_links) == (2, 2)
