"""Lambda triggers: for every shipped event, the trace id, parent, links and attributes of the root span."""

from __future__ import annotations

import base64
import json
import subprocess
import sys

import pytest

from nexs_serverless import SpanKind, baggage, propagation, traced_handler
from nexs_serverless.exporters import InMemoryExporter
from nexs_serverless.finished import FinishedSpan
from nexs_serverless.testing import LambdaContext, events, reset
from nexs_serverless.triggers import describe, source_of
from nexs_serverless.triggers.step_functions import derived_context

W3C_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
XRAY_TRACE = "6749f3a05759e988bd862e3fe1be46a9"
ENV_HEADER = "Root=1-11111111-222222222222222222222222;Parent=3333333333333333;Sampled=1"
ENV_TRACE = "11111111222222222222222222222222"
CONSUMER, SERVER = SpanKind.CONSUMER, SpanKind.SERVER

# name -> (faas.trigger, kind, span name, trace id, parent span id, links, attributes that must be there)
CASES: dict[str, tuple[str, int, str, str | None, str | None, int, dict[str, object]]] = {
    # REST and HTTP APIs: both traceparent and an X-Ray header with a Parent; with the default
    # OTEL_PROPAGATORS (tracecontext,baggage,xray) the later format, X-Ray, wins, as in OpenTelemetry.
    "api-gateway-v1": (
        "http",
        SERVER,
        "GET /orders/{id}",
        XRAY_TRACE,
        "53995c3f42cd8ad8",
        0,
        {"http.route": "/orders/{id}", "http.request.method": "GET", "url.path": "/orders/42"},
    ),
    "api-gateway-v2": (
        "http",
        SERVER,
        "POST /orders",
        XRAY_TRACE,
        "53995c3f42cd8ad8",
        0,
        {"url.query": "dryRun=false"},
    ),
    "function-url": (
        "http",
        SERVER,
        "POST",
        XRAY_TRACE,
        "53995c3f42cd8ad8",
        0,
        {"nexs.trigger.source": "lambda_url"},
    ),
    # ALB's X-Amzn-Trace-Id has a Root and no Parent: not a context, so traceparent is used.
    "alb": ("http", SERVER, "GET", W3C_TRACE, "00f067aa0ba902b7", 0, {"nexs.trigger.source": "alb"}),
    # Two messages from two traces: linked, and the invocation starts its own trace.
    "sqs": (
        "pubsub",
        CONSUMER,
        "process orders",
        None,
        None,
        2,
        {
            "messaging.system": "aws_sqs",
            "messaging.batch.message_count": 2,
            "messaging.destination.name": "orders",
        },
    ),
    "sns-sqs": (
        "pubsub",
        CONSUMER,
        "process orders-from-sns",
        "0af7651916cd43dd8448eb211c80319c",
        "b7ad6b7169203331",
        1,
        {"aws.sns.topic.arn": "arn:aws:sns:us-east-1:123456789012:orders-topic"},
    ),
    "sns": (
        "pubsub",
        CONSUMER,
        "process orders-topic",
        W3C_TRACE,
        "00f067aa0ba902b7",
        0,
        {"messaging.system": "aws.sns", "messaging.message.id": "95df01b4-ee98-5cb9-9903-4c221d41eb5e"},
    ),
    "eventbridge": (
        "pubsub",
        CONSUMER,
        "process com.example.orders",
        None,
        None,
        0,
        {"nexs.eventbridge.detail_type": "OrderPlaced", "messaging.system": "aws_eventbridge"},
    ),
    "eventbridge-scheduled": (
        "timer",
        SERVER,
        "Scheduled Event",
        None,
        None,
        0,
        {"faas.time": "2026-11-28T10:00:00Z"},
    ),
    "kinesis": (
        "pubsub",
        CONSUMER,
        "process orders",
        None,
        None,
        0,
        {"aws.kinesis.stream_name": "orders", "messaging.destination.partition.id": "shardId-000000000006"},
    ),
    "dynamodb": (
        "datasource",
        SERVER,
        "insert orders",
        None,
        None,
        0,
        {
            "faas.document.collection": "orders",
            "faas.document.operation": "insert",
            "aws.dynamodb.table_names": ("orders",),
        },
    ),
    "s3": (
        "datasource",
        SERVER,
        "insert orders-bucket",
        None,
        None,
        0,
        {"faas.document.name": "uploads/order-42.json", "aws.s3.bucket": "orders-bucket"},
    ),
}


def run(event: object, context: object | None = None) -> list[FinishedSpan]:
    """Invoke a traced handler with `event` and return every exported span."""
    exporter = InMemoryExporter()
    reset(exporters=[exporter], environ=_environ)

    @traced_handler
    def handler(event: object, context: object) -> dict[str, int]:
        return {"statusCode": 200}

    handler(event, context or LambdaContext())
    return exporter.get_finished_spans()


_environ: dict[str, str] = {}


@pytest.fixture(autouse=True)
def _settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts from an empty configuration (tests put variables in `_environ`)."""
    _environ.clear()


def root_of(spans: list[FinishedSpan]) -> FinishedSpan:
    return next(span for span in spans if not span.parent_span_id or span.parent_is_remote)


@pytest.mark.parametrize("name", sorted(CASES))
def test_shipped_event_gives_trace_parent_links_and_attributes(name: str) -> None:
    """Each sample event's root span: faas.trigger, kind, name, trace, parent, links, attributes."""
    trigger, kind, span_name, trace, parent, links, attrs = CASES[name]
    (root,) = run(events.load(name))
    assert root.attributes["faas.trigger"] == trigger
    assert root.kind == kind
    assert root.name == span_name
    if trace is None:
        assert not root.parent_span_id
    else:
        assert f"{root.trace_id:032x}" == trace
        assert f"{root.parent_span_id:016x}" == parent
        assert root.parent_is_remote
    assert len(root.links) == links
    for key, value in attrs.items():
        assert root.attributes[key] == value, key


def test_sqs_links_carry_each_message_context_and_id() -> None:
    """The batch's links point at each message's producer, tagged with its message id."""
    (root,) = run(events.load("sqs"))
    assert [
        (f"{link.context.trace_id:032x}", link.attributes["messaging.message.id"]) for link in root.links
    ] == [
        ("6749f3a05759e988bd862e3fe1be46a9", "059f36b4-87a3-44ab-83d2-661975830a7d"),
        ("6749f3a14fcb6b3e9a2d4c5e8f7a6b5c", "2e1424d4-f796-459a-8184-9c92662be6da"),
    ]


def test_sqs_batch_of_one_continues_the_message_trace() -> None:
    """A single message's context is the parent as well as a link."""
    event = events.load("sqs")
    event["Records"] = event["Records"][:1]
    (root,) = run(event)
    assert f"{root.trace_id:032x}" == "6749f3a05759e988bd862e3fe1be46a9"
    assert f"{root.parent_span_id:016x}" == "53995c3f42cd8ad8"
    assert root.attributes["messaging.message.id"] == "059f36b4-87a3-44ab-83d2-661975830a7d"
    assert len(root.links) == 1


def test_sqs_aws_trace_header_alone_is_read() -> None:
    """Without message attributes, the AWSTraceHeader system attribute (X-Ray format) gives the context."""
    event = events.sqs(messages=["one"])
    event["Records"][0]["messageAttributes"] = {}
    (root,) = run(event)
    assert f"{root.trace_id:032x}" == "6749f3a05759e988bd862e3fe1be46a9"
    assert root.attributes["nexs.context.source"] == "xray"


def test_sqs_message_attributes_win_over_aws_trace_header_by_default() -> None:
    """With both, the message attributes (headers) come before AWSTraceHeader (xray)."""
    event = events.sqs(messages=["one"])
    event["Records"][0]["attributes"]["AWSTraceHeader"] = ENV_HEADER
    (root,) = run(event)
    assert f"{root.trace_id:032x}" == "6749f3a05759e988bd862e3fe1be46a9"
    _environ["NEXS_CONTEXT_PRECEDENCE"] = "xray,headers"
    (root,) = run(event)
    assert f"{root.trace_id:032x}" == ENV_TRACE


def test_sqs_per_message_mode_adds_one_process_span_per_message() -> None:
    """NEXS_SQS_MODE=per_message: a CONSUMER span per message, child of the root, linked to its message."""
    _environ["NEXS_SQS_MODE"] = "per_message"
    spans = run(events.load("sqs"))
    root = root_of(spans)
    messages = [span for span in spans if span is not root]
    assert not root.links
    assert len(messages) == 2
    for span, record in zip(messages, events.load("sqs")["Records"], strict=True):
        assert span.parent_span_id == root.span_id
        assert span.kind == CONSUMER
        assert span.name == "process orders"
        assert span.attributes["messaging.message.id"] == record["messageId"]
        (link,) = span.links
        assert (
            f"{link.context.trace_id:032x}" == record["messageAttributes"]["traceparent"]["stringValue"][3:35]
        )
        assert span.end_ns <= root.end_ns


def test_kinesis_records_with_our_payload_carrier_are_linked() -> None:
    """Records whose JSON data holds a `_nexs` carrier link to it; one trace becomes the parent."""
    carrier = {"traceparent": f"00-{W3C_TRACE}-00f067aa0ba902b7-01"}
    event = events.kinesis(records=[{"orderId": "1", "_nexs": carrier}, {"orderId": "2", "_nexs": carrier}])
    (root,) = run(event)
    assert f"{root.trace_id:032x}" == W3C_TRACE
    assert len(root.links) == 2
    assert root.attributes["messaging.batch.message_count"] == 2


def test_kinesis_data_that_is_not_json_is_ignored() -> None:
    """Binary or non-JSON records carry no context and break nothing."""
    event = events.kinesis(records=[b"\x00\xff binary", "plain text"])
    event["Records"][0]["kinesis"]["data"] = "not base64 !!"
    (root,) = run(event)
    assert not root.links
    assert not root.parent_span_id


def test_eventbridge_detail_carrier_gives_the_parent() -> None:
    """A `_nexs` carrier in the detail (written by our PutEvents instrumentation) is the parent."""
    event = events.eventbridge(
        detail={"orderId": "42", "_nexs": {"traceparent": f"00-{W3C_TRACE}-00f067aa0ba902b7-01"}}
    )
    (root,) = run(event)
    assert f"{root.trace_id:032x}" == W3C_TRACE


def test_step_functions_trace_is_derived_from_the_execution_arn() -> None:
    """Without a carried context, every function of one execution derives the same trace and parent."""
    first = root_of(run(events.load("step-functions")))
    event = events.load("step-functions")
    event["State"]["Name"] = "ShipOrder"
    second = root_of(run(event))
    expected = derived_context(events.load("step-functions")["Execution"]["Id"])
    assert first.trace_id == second.trace_id == expected.trace_id
    assert first.parent_span_id == second.parent_span_id == expected.span_id
    assert first.name == "ChargeCard"
    assert first.attributes["nexs.context.source"] == "derived"
    assert first.attributes["aws.step_functions.state_machine.arn"].endswith(":stateMachine:order-workflow")
    other = events.load("step-functions")
    other["Execution"]["Id"] += "-2"
    assert root_of(run(other)).trace_id != first.trace_id


def test_step_functions_input_carrier_wins_over_derivation() -> None:
    """A `_nexs` carrier in the execution input (StartExecution instrumentation) is the parent."""
    event = events.load("step-functions")
    event["Execution"]["Input"]["_nexs"] = {"traceparent": f"00-{W3C_TRACE}-00f067aa0ba902b7-01"}
    root = root_of(run(event))
    assert f"{root.trace_id:032x}" == W3C_TRACE
    assert root.attributes["nexs.context.source"] == "headers"


def test_direct_invoke_client_context_gives_the_parent() -> None:
    """A direct Invoke's clientContext.custom (written by our Invoke instrumentation) is the parent."""
    context = LambdaContext(client_context={"custom": {"traceparent": f"00-{W3C_TRACE}-00f067aa0ba902b7-01"}})
    (root,) = run({"orderId": "42"}, context)
    assert root.attributes["faas.trigger"] == "other"
    assert f"{root.trace_id:032x}" == W3C_TRACE


def test_runtime_w3c_client_context_field_is_read() -> None:
    """The runtime's `context.w3c()` (clientContext.w3c) is read like the custom fields."""
    context = LambdaContext()
    context.w3c = lambda: {"traceparent": f"00-{W3C_TRACE}-00f067aa0ba902b7-01"}  # type: ignore[attr-defined]
    (root,) = run({"orderId": "42"}, context)
    assert f"{root.trace_id:032x}" == W3C_TRACE


def test_xray_environment_is_the_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    """When the event carries nothing, a sampled _X_AMZN_TRACE_ID is the parent."""
    monkeypatch.setenv("_X_AMZN_TRACE_ID", ENV_HEADER)
    (root,) = run(events.load("eventbridge"))
    assert f"{root.trace_id:032x}" == ENV_TRACE
    assert f"{root.parent_span_id:016x}" == "3333333333333333"
    assert root.attributes["nexs.context.source"] == "xray"


def test_unsampled_xray_environment_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    """Lambda sets Sampled=0 ids even with tracing off: they start no trace of ours."""
    monkeypatch.setenv("_X_AMZN_TRACE_ID", ENV_HEADER.replace("Sampled=1", "Sampled=0"))
    (root,) = run(events.load("eventbridge"))
    assert not root.parent_span_id


def test_event_headers_win_over_the_xray_environment_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """Default precedence: the event's own context before Lambda's X-Ray context."""
    monkeypatch.setenv("_X_AMZN_TRACE_ID", ENV_HEADER)
    (root,) = run(events.load("alb"))
    assert f"{root.trace_id:032x}" == W3C_TRACE


def test_precedence_can_put_xray_first(monkeypatch: pytest.MonkeyPatch) -> None:
    """NEXS_CONTEXT_PRECEDENCE=xray,headers makes Lambda's X-Ray context the parent."""
    monkeypatch.setenv("_X_AMZN_TRACE_ID", ENV_HEADER)
    _environ["NEXS_CONTEXT_PRECEDENCE"] = "xray,headers"
    (root,) = run(events.load("alb"))
    assert f"{root.trace_id:032x}" == ENV_TRACE


def test_a_source_left_out_of_the_precedence_is_never_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """NEXS_CONTEXT_PRECEDENCE=headers ignores X-Ray entirely."""
    monkeypatch.setenv("_X_AMZN_TRACE_ID", ENV_HEADER)
    _environ["NEXS_CONTEXT_PRECEDENCE"] = "headers"
    (root,) = run(events.load("eventbridge"))
    assert not root.parent_span_id


def test_w3c_first_when_configured_so() -> None:
    """OTEL_PROPAGATORS=xray,tracecontext: the W3C header of an API Gateway event wins."""
    _environ["OTEL_PROPAGATORS"] = "xray,tracecontext,baggage"
    (root,) = run(events.load("api-gateway-v1"))
    assert f"{root.trace_id:032x}" == W3C_TRACE
    assert f"{root.parent_span_id:016x}" == "00f067aa0ba902b7"


def test_multi_value_headers_alone_are_read() -> None:
    """A REST API event with only multiValueHeaders still gives its context."""
    event = events.load("api-gateway-v1")
    event["headers"] = None
    del event["multiValueHeaders"]["X-Amzn-Trace-Id"]
    (root,) = run(event)
    assert f"{root.trace_id:032x}" == W3C_TRACE


def test_incoming_baggage_is_readable_in_the_handler_and_goes_out_again() -> None:
    """Baggage from the request is current during the handler, written on outgoing calls, then gone."""
    event = events.api_gateway_v2(headers={"baggage": "tenant=acme", "x-amzn-trace-id": None})
    seen: list[object] = []
    reset(exporters=[InMemoryExporter()])

    @traced_handler
    def handler(event: object, context: object) -> None:
        outgoing: dict[str, str] = {}
        propagation.inject(outgoing)
        seen.extend([baggage.get("tenant"), outgoing.get("baggage")])

    handler(event, LambdaContext())
    assert seen == ["acme", "tenant=acme"]
    assert baggage.get("tenant") is None


def test_xray_lineage_goes_out_with_the_same_trace(monkeypatch: pytest.MonkeyPatch) -> None:
    """Lineage received with the X-Ray context is written again on outgoing calls of that trace."""
    monkeypatch.setenv("_X_AMZN_TRACE_ID", ENV_HEADER + ";Lineage=a87bd80c:1")
    headers: dict[str, str] = {}
    reset(exporters=[InMemoryExporter()])

    @traced_handler
    def handler(event: object, context: object) -> None:
        propagation.inject(headers)

    handler({"any": "payload"}, LambdaContext())
    assert headers["X-Amzn-Trace-Id"].startswith("Root=1-11111111-222222222222222222222222;Parent=")
    assert headers["X-Amzn-Trace-Id"].endswith(";Sampled=1;Lineage=a87bd80c:1")


def test_kinesis_base64_of_payload_carrier_round_trips() -> None:
    """The sample's base64 data decodes to the JSON the factories encode (guards the fixture)."""
    data = events.load("kinesis")["Records"][0]["kinesis"]["data"]
    assert json.loads(base64.b64decode(data)) == {"orderId": "42", "status": "placed"}


@pytest.mark.parametrize("source", ["sqs", "kinesis"])
def test_json_too_deep_to_parse_is_no_context_and_the_invocation_is_traced(source: str) -> None:
    """A payload whose nesting makes the JSON parser raise RecursionError reads as no context."""
    deep = '{"a":' + "[" * 100_000 + "]" * 100_000 + "}"
    if source == "sqs":  # the body is read for an SNS notification when the attributes carry nothing
        event = events.sqs(messages=["one"], trace_headers=False)
        event["Records"][0]["body"] = deep
    else:
        event = events.kinesis(records=[{"orderId": "1"}])
        event["Records"][0]["kinesis"]["data"] = base64.b64encode(deep.encode()).decode()
    (root,) = run(event)
    assert not root.parent_span_id
    assert not root.links


def test_rest_api_header_lines_repeated_in_multi_value_headers_are_all_read() -> None:
    """tracestate and baggage sent on two lines count in full, not only the last line `headers` keeps."""
    event = events.api_gateway_v1(headers={"X-Amzn-Trace-Id": None})
    event["headers"].update(tracestate="vendorb=2", baggage="b=2")
    event["multiValueHeaders"].update(tracestate=["vendora=1", "vendorb=2"], baggage=["a=1", "b=2"])
    trigger = describe(event)
    assert trigger.parent is not None
    assert trigger.parent.trace_state == (("vendora", "1"), ("vendorb", "2"))
    assert trigger.candidates["headers"].baggage == {"a": ("1", ""), "b": ("2", "")}


def test_alb_multi_value_headers_and_query_give_the_http_attributes() -> None:
    """An ALB with multi-value headers on sends only the multi-value maps: host, agent, scheme, query read."""
    event = events.load("alb")
    event["multiValueHeaders"] = {key: [value] for key, value in event.pop("headers").items()}
    event["multiValueHeaders"]["x-forwarded-proto"] = ["http"]
    del event["queryStringParameters"]
    event["multiValueQueryStringParameters"] = {"verbose": ["1"], "id": ["7", "8"]}
    (root,) = run(event)
    assert f"{root.trace_id:032x}" == W3C_TRACE
    assert root.attributes["server.address"] == "lambda-alb-123578498.us-east-1.elb.amazonaws.com"
    assert str(root.attributes["user_agent.original"]).startswith("Mozilla/5.0")
    assert root.attributes["url.scheme"] == "http"
    assert root.attributes["url.query"] == "verbose=1&id=7&id=8"


@pytest.mark.parametrize("case", ["own-after", "own-before", "variant-only"])
def test_sqs_message_attribute_names_are_case_sensitive(case: str) -> None:
    """An application's own ``TraceParent`` never replaces ``traceparent``; alone, a variant is read."""
    event = events.sqs(messages=["one"])
    record = event["Records"][0]
    record["attributes"].pop("AWSTraceHeader")
    real = record["messageAttributes"]["traceparent"]
    own = {"stringValue": "legacy-app-value", "dataType": "String"}
    record["messageAttributes"] = {
        "own-after": {"traceparent": real, "TraceParent": own},
        "own-before": {"TraceParent": own, "traceparent": real},
        "variant-only": {"Traceparent": real},
    }[case]
    (root,) = run(event)
    assert f"{root.trace_id:032x}" == "6749f3a05759e988bd862e3fe1be46a9"


def test_sns_message_attribute_names_are_case_sensitive() -> None:
    """SNS attribute names too: a later ``TraceParent`` does not replace ``traceparent``."""
    (root,) = run(events.sns(attributes={"TraceParent": "legacy-app-value"}))
    assert f"{root.trace_id:032x}" == W3C_TRACE


@pytest.mark.parametrize("created", [1e20, -1e20, float("inf"), float("nan"), 10**30])
def test_dynamodb_creation_time_out_of_range_is_left_out(created: float) -> None:
    """A stream timestamp beyond what the clock can convert drops only ``faas.document.time``."""
    event = events.dynamodb()
    event["Records"][0]["dynamodb"]["ApproximateCreationDateTime"] = created
    (root,) = run(event)
    assert "faas.document.time" not in root.attributes
    assert root.attributes["db.system.name"] == "aws.dynamodb"


# Which module describes each shipped Lambda event (the other clouds' events are not Lambda's).
SOURCES = {
    "alb": ".http",
    "api-gateway-v1": ".http",
    "api-gateway-v2": ".http",
    "function-url": ".http",
    "dynamodb": ".dynamodb",
    "eventbridge": ".eventbridge",
    "eventbridge-scheduled": ".eventbridge",
    "kinesis": ".kinesis",
    "s3": ".s3",
    "sns": ".sns",
    "sns-sqs": ".sqs",
    "sqs": ".sqs",
    "step-functions": ".step_functions",
}


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_each_shipped_event_is_told_apart_by_its_shape(name: str) -> None:
    assert source_of(events.load(name)) == SOURCES[name]


@pytest.mark.parametrize(
    "event",
    [
        {"order": "42"},
        [],
        "text",
        {"Records": []},
        {"Records": ["not a record"]},
        {"Records": [{"eventSource": "aws:unknown"}]},
        {"requestContext": {"stage": "prod"}},
        {"detail-type": "x", "source": "y"},
        {"Execution": {"Id": "arn:aws:lambda:us-east-1:1:function:f"}},
    ],
)
def test_events_of_no_known_shape_have_no_source(event: object) -> None:
    assert source_of(event) is None


def test_an_sns_record_is_known_by_its_sns_object_alone() -> None:
    assert source_of({"Records": [{"Sns": {"Message": "m"}}]}) == ".sns"


_LOADED_SOURCES = """
import json, sys
from nexs_serverless.testing import events
from nexs_serverless.triggers import describe
describe(events.load(sys.argv[1]) if sys.argv[1] != "none" else {"order": "42"})
print(json.dumps(sorted(m for m in sys.modules if m.startswith("nexs_serverless.triggers."))))
"""


@pytest.mark.parametrize(("name", "expected"), [("none", []), ("sqs", ["sqs"]), ("api-gateway-v2", ["http"])])
def test_an_invocation_loads_only_its_own_source_module(name: str, expected: list[str]) -> None:
    """A cold start pays for the module of its trigger, not for all eight."""
    out = subprocess.run(
        [sys.executable, "-c", _LOADED_SOURCES, name], capture_output=True, text=True, check=True
    )
    loaded = {module.rsplit(".", 1)[1] for module in json.loads(out.stdout)}
    sources = {source.lstrip(".") for source in SOURCES.values()}
    assert sorted(loaded & sources) == expected


_DIRECT_INVOKE = """
import json, os, sys
os.environ["_X_AMZN_TRACE_ID"] = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
from nexs_serverless.platforms import aws
from nexs_serverless.runtime import runtime
from nexs_serverless.testing import LambdaContext
trigger = aws.describe({"order": "42"}, LambdaContext(), runtime.settings)
print(json.dumps({
    "parent": "%032x" % trigger.parent.trace_id,
    "source": trigger.attributes.get("nexs.context.source"),
    "messages_loaded": "nexs_serverless.triggers._messages" in sys.modules,
}))
"""


def test_a_direct_invocation_continues_the_xray_trace_without_loading_message_readers() -> None:
    """No client context, no event carrier: the X-Ray variable is read and nothing else is loaded."""
    out = subprocess.run([sys.executable, "-c", _DIRECT_INVOKE], capture_output=True, text=True, check=True)
    report = json.loads(out.stdout)
    expected = {"parent": "5759e988bd862e3fe1be46a994272793", "source": "xray", "messages_loaded": False}
    assert report == expected
