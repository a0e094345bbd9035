"""Google Cloud Functions and Azure Functions: detection, resource attributes, triggers and parents."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from support.functions_source import function_source
from support.memory import export, only_root

from nexs_serverless import SpanKind, StatusCode, config, platforms, traced_handler
from nexs_serverless.testing import AzureContext, LambdaContext, events, native

W3C_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
HOST_PARENT = "00-11111111111111111111111111111111-2222222222222222-01"
GCP_ENV = {
    "K_SERVICE": "orders-fn",
    "K_REVISION": "orders-fn-00007-abc",
    "FUNCTION_TARGET": "handle",
    "GOOGLE_CLOUD_PROJECT": "my-project",
}
AZURE_ENV = {
    "FUNCTIONS_WORKER_RUNTIME": "python",
    "WEBSITE_SITE_NAME": "my-func-app",
    "REGION_NAME": "West Europe",
    "WEBSITE_INSTANCE_ID": "a1b2c3",
    "WEBSITE_MEMORY_LIMIT_MB": "1536",
    "WEBSITE_OWNER_NAME": "0000aaaa-1111-2222-3333-444455556666+orders-rg-WestEuropewebspace",
    "WEBSITE_RESOURCE_GROUP": "orders-rg",
}


# -- detection ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"AWS_LAMBDA_FUNCTION_NAME": "f"}, "aws_lambda"),
        ({"K_SERVICE": "f"}, "gcp_cloud_functions"),
        ({"FUNCTION_TARGET": "handle"}, "gcp_cloud_functions"),
        ({"FUNCTION_NAME": "f", "GCP_PROJECT": "p"}, "gcp_cloud_functions"),
        ({"FUNCTIONS_WORKER_RUNTIME": "python"}, "azure_functions"),
        ({"WEBSITE_SITE_NAME": "app", "FUNCTIONS_EXTENSION_VERSION": "~4"}, "azure_functions"),
        ({"K_SERVICE": "f", "NEXS_PLATFORM": "azure"}, "azure_functions"),
        ({"AWS_LAMBDA_FUNCTION_NAME": "f", "NEXS_PLATFORM": "gcp"}, "gcp_cloud_functions"),
        ({}, ""),
    ],
)
def test_platform_detection_and_override(environ: dict[str, str], expected: str) -> None:
    """Each platform is detected from its runtime's variables; NEXS_PLATFORM forces one."""
    assert platforms.detect(config.load(environ)[0]) == expected


def test_an_unknown_platform_is_named_once_and_detection_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    """NEXS_PLATFORM=amazon gets one warning naming the variable, the value and the choices."""
    from nexs_serverless import _guard

    _guard.forget()
    settings = config.load({"AWS_LAMBDA_FUNCTION_NAME": "f", "NEXS_PLATFORM": "amazon"})[0]
    with caplog.at_level("WARNING", logger="nexs_serverless"):
        assert platforms.detect(settings) == "aws_lambda"
        assert platforms.detect(settings) == "aws_lambda"
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 1
    assert "NEXS_PLATFORM='amazon'" in lines[0]
    assert "aws_lambda, gcp_cloud_functions, azure_functions" in lines[0]


def test_gcp_resource_attributes_come_from_the_environment() -> None:
    """K_SERVICE, K_REVISION, FUNCTION_TARGET and GOOGLE_CLOUD_PROJECT become cloud/faas attributes."""
    assert platforms.resource_attributes(config.load(GCP_ENV)[0]) == {
        "cloud.provider": "gcp",
        "cloud.platform": "gcp_cloud_functions",
        "faas.name": "orders-fn",
        "faas.version": "orders-fn-00007-abc",
        "cloud.account.id": "my-project",
    }


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        (
            {"FUNCTION_NAME": "orders", "GCP_PROJECT": "p", "FUNCTION_REGION": "us-central1"},
            "gcp_cloud_functions",
        ),
        ({"K_SERVICE": "orders", "FUNCTION_TARGET": "handle"}, "gcp_cloud_functions"),
        ({"K_SERVICE": "orders"}, "gcp_cloud_run"),
    ],
)
def test_gcp_cloud_platform_names_either_functions_generation(environ: dict[str, str], expected: str) -> None:
    """Both generations' markers (FUNCTION_NAME + GCP_PROJECT, FUNCTION_TARGET) are Cloud Functions."""
    attrs = platforms.resource_attributes(config.load(environ)[0])
    assert attrs["cloud.platform"] == expected


def test_azure_resource_attributes_come_from_the_environment() -> None:
    """Site, region, instance, memory and the resource id built from the App Service variables."""
    assert platforms.resource_attributes(config.load(AZURE_ENV)[0]) == {
        "cloud.provider": "azure",
        "cloud.platform": "azure_functions",
        "faas.name": "my-func-app",
        "cloud.region": "West Europe",
        "faas.instance": "a1b2c3",
        "faas.max_memory": 1536 * 1024 * 1024,
        "cloud.account.id": "0000aaaa-1111-2222-3333-444455556666",
        "cloud.resource_id": "/subscriptions/0000aaaa-1111-2222-3333-444455556666/resourceGroups/orders-rg"
        "/providers/Microsoft.Web/sites/my-func-app",
    }


def test_arguments_of_another_platform_are_described_by_it_off_platform() -> None:
    """With no platform in the environment (a local run, a test), a Flask request means Google."""
    exporter = export({})

    @traced_handler
    def handle(request: object) -> str:
        return "ok"

    handle(native.flask_request(events.load("gcp-http")))
    root = only_root(exporter)
    assert root.attributes["cloud.provider"] == "gcp"
    assert root.attributes["faas.trigger"] == "http"


def test_the_detected_platform_wins_over_the_arguments_types() -> None:
    """In a Lambda environment, a route called with a web framework's request is a Lambda invocation.

    Claiming it for Google made the span say ``cloud.provider=gcp`` under a
    resource that says ``aws_lambda``.
    """
    exporter = export({"AWS_LAMBDA_FUNCTION_NAME": "lambda-fn", "AWS_REGION": "eu-west-1"})

    @traced_handler
    def handle(request: object) -> str:
        return "ok"

    assert handle(native.flask_request(events.load("gcp-http"))) == "ok"
    root = only_root(exporter)
    assert root.resource.attributes["cloud.platform"] == "aws_lambda"
    assert root.attributes.get("cloud.provider", "aws") == "aws"
    assert root.attributes.get("cloud.platform", "aws_lambda") == "aws_lambda"


# -- Google Cloud Functions -----------------------------------------------------------


def test_gcp_http_function_continues_the_request_trace() -> None:
    """A Flask request: HTTP attributes, invocation id, cold start, parent from traceparent."""
    exporter = export(GCP_ENV)

    @traced_handler
    def handle(request: object) -> tuple[str, int]:
        return "created", 201

    handle(native.flask_request(events.load("gcp-http")))
    root = only_root(exporter)
    assert (root.name, root.kind) == ("POST", SpanKind.SERVER)
    assert f"{root.trace_id:032x}" == W3C_TRACE
    assert f"{root.parent_span_id:016x}" == "00f067aa0ba902b7"
    attrs = root.attributes
    assert attrs["cloud.provider"] == "gcp"
    assert attrs["faas.name"] == "orders-fn"
    assert attrs["faas.invocation_id"] == "a1b2c3d4e5f6"
    assert attrs["faas.coldstart"] is True
    assert attrs["http.request.method"] == "POST"
    assert attrs["server.address"] == "us-central1-my-project.cloudfunctions.net"
    assert attrs["url.query"] == "dryRun=false"
    assert attrs["client.address"] == "203.0.113.10"
    assert attrs["http.response.status_code"] == 201


def test_gcp_front_end_header_is_the_host_fallback() -> None:
    """Without traceparent, Google's X-Cloud-Trace-Context (the host source) gives the parent."""
    exporter = export(GCP_ENV)

    @traced_handler
    def handle(request: object) -> str:
        return "ok"

    request = events.gcp_http(
        headers={"traceparent": None, "X-Cloud-Trace-Context": "11111111111111111111111111111111/42;o=1"}
    )
    handle(native.flask_request(request))
    root = only_root(exporter)
    assert f"{root.trace_id:032x}" == "1" * 32
    assert root.parent_span_id == 42
    assert root.attributes["nexs.context.source"] == "host"


def test_gcp_http_5xx_marks_the_invocation_failed() -> None:
    """A 5xx response from the function sets status ERROR."""
    exporter = export(GCP_ENV)

    @traced_handler
    def handle(request: object) -> tuple[str, int]:
        return "boom", 503

    handle(native.flask_request(events.load("gcp-http")))
    assert only_root(exporter).status_code == StatusCode.ERROR


def test_gcp_pubsub_cloud_event_is_a_consumer_of_the_topic() -> None:
    """A Pub/Sub CloudEvent: messaging attributes, parent from the message attributes."""
    exporter = export(GCP_ENV)

    @traced_handler
    def handle(cloud_event: object) -> None:
        return None

    handle(native.cloud_event(events.load("gcp-pubsub")))
    root = only_root(exporter)
    assert (root.name, root.kind) == ("process orders", SpanKind.CONSUMER)
    assert root.attributes["faas.trigger"] == "pubsub"
    assert root.attributes["messaging.system"] == "gcp_pubsub"
    assert root.attributes["messaging.message.id"] == "11794302873145"
    assert root.attributes["faas.invocation_id"] == "11794302873145"
    assert f"{root.trace_id:032x}" == W3C_TRACE


def test_google_client_library_attribute_names_are_read() -> None:
    """Google's Pub/Sub client libraries write googclient_traceparent; it is read as traceparent."""
    exporter = export()
    event = events.gcp_pubsub(attributes={"traceparent": None, "googclient_traceparent": HOST_PARENT})

    @traced_handler
    def handle(cloud_event: object) -> None:
        return None

    handle(native.cloud_event(event))
    assert f"{only_root(exporter).trace_id:032x}" == "1" * 32


def test_cloud_event_tracing_extension_is_read() -> None:
    """A storage CloudEvent carries its context in the Distributed Tracing extension."""
    exporter = export()

    @traced_handler
    def handle(cloud_event: object) -> None:
        return None

    handle(native.cloud_event(events.load("gcp-storage")))
    root = only_root(exporter)
    assert root.attributes["faas.trigger"] == "datasource"
    assert root.attributes["cloudevents.event_type"] == "google.cloud.storage.object.v1.finalized"
    assert f"{root.trace_id:032x}" == W3C_TRACE


def test_functions_framework_http_and_cloud_event_functions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Served by functions-framework itself (its test client), both signatures are traced."""
    import functions_framework

    source = function_source(
        tmp_path,
        monkeypatch,
        """
        import functions_framework
        from nexs_serverless import traced_handler

        @functions_framework.http
        @traced_handler
        def hello(request):
            return "hello " + request.args.get("name", "world")

        @functions_framework.cloud_event
        @traced_handler
        def on_message(cloud_event):
            return None
        """,
    )
    exporter = export(GCP_ENV)
    http = functions_framework.create_app("hello", source).test_client()
    response = http.get("/?name=nexs", headers={"traceparent": f"00-{W3C_TRACE}-00f067aa0ba902b7-01"})
    assert response.get_data(as_text=True) == "hello nexs"
    pubsub = events.load("gcp-pubsub")
    ce_headers = {
        f"ce-{key}": value for key, value in pubsub.items() if key not in ("data", "datacontenttype")
    }
    ce_headers["Content-Type"] = "application/json"
    events_client = functions_framework.create_app("on_message", source).test_client()
    assert events_client.post("/", headers=ce_headers, data=json.dumps(pubsub["data"])).status_code == 200
    http_root, event_root = exporter.get_finished_spans()
    assert http_root.attributes["http.response.status_code"] == 200
    assert f"{http_root.trace_id:032x}" == W3C_TRACE
    assert event_root.attributes["messaging.destination.name"] == "orders"
    assert f"{event_root.trace_id:032x}" == W3C_TRACE


# -- Azure Functions ------------------------------------------------------------------


def _servicebus(event: dict[str, object]) -> object:
    from azure.functions.servicebus import ServiceBusMessage

    return ServiceBusMessage(
        body=str(event["body"]).encode(),
        message_id=str(event["message_id"]),
        application_properties=dict(event["application_properties"]),  # type: ignore[call-overload]
        user_properties=dict(event["user_properties"]),  # type: ignore[call-overload]
        content_type=str(event["content_type"]),
        correlation_id=str(event["correlation_id"]),
        delivery_count=int(event["delivery_count"]),  # type: ignore[call-overload]
    )


def _eventhub(event: dict[str, object]) -> object:
    import azure.functions as func
    from azure.functions import meta

    metadata = {"Properties": meta.Datum(value=json.dumps(event["properties"]), type="json")}
    return func.EventHubEvent(
        body=str(event["body"]).encode(),
        trigger_metadata=metadata,
        partition_key=str(event["partition_key"]),
        sequence_number=int(event["sequence_number"]),  # type: ignore[call-overload]
    )


def _queue(event: dict[str, object]) -> object:
    from azure.functions.queue import QueueMessage

    return QueueMessage(
        id=event["id"],
        body=event["body"],
        dequeue_count=event["dequeue_count"],
        pop_receipt=event["pop_receipt"],
    )


def test_azure_http_function_with_keyword_bindings() -> None:
    """Called as the worker calls it (bindings by name): HTTP attributes, app/function name, status."""
    import azure.functions as func

    exporter = export(AZURE_ENV)

    @traced_handler
    def main(req: object, context: object) -> object:
        return func.HttpResponse("created", status_code=201)

    context = AzureContext(function_name="orders", invocation_id="inv-1")
    main(req=native.azure_request(events.load("azure-http")), context=context)
    root = only_root(exporter)
    assert root.attributes["cloud.provider"] == "azure"
    assert root.attributes["faas.name"] == "my-func-app/orders"
    assert root.attributes["faas.invocation_id"] == "inv-1"
    assert root.attributes["url.path"] == "/api/orders"
    # Azure's X-Forwarded-For carries the client's port: the address alone, the port apart.
    assert (root.attributes["client.address"], root.attributes["client.port"]) == ("203.0.113.10", 51234)
    assert root.attributes["http.response.status_code"] == 201
    assert f"{root.trace_id:032x}" == W3C_TRACE
    assert root.attributes["nexs.context.source"] == "headers"


def test_azure_host_trace_context_when_preferred() -> None:
    """NEXS_CONTEXT_PRECEDENCE=host,headers makes the host's context.trace_context the parent."""
    exporter = export({**AZURE_ENV, "NEXS_CONTEXT_PRECEDENCE": "host,headers"})

    @traced_handler
    def main(req: object, context: object) -> str:
        return "ok"

    main(native.azure_request(events.load("azure-http")), AzureContext(trace_parent=HOST_PARENT))
    root = only_root(exporter)
    assert f"{root.trace_id:032x}" == "1" * 32
    assert f"{root.parent_span_id:016x}" == "2" * 16
    assert root.attributes["nexs.context.source"] == "host"


def test_azure_queue_message_takes_the_host_context() -> None:
    """A Storage Queue message has no properties: the host's trace context is the parent."""
    exporter = export(AZURE_ENV)

    @traced_handler
    def main(msg: object, context: object) -> None:
        return None

    main(msg=_queue(events.load("azure-queue")), context=AzureContext(trace_parent=HOST_PARENT))
    root = only_root(exporter)
    assert root.attributes["faas.trigger"] == "pubsub"
    assert root.attributes["messaging.system"] == "azure_queue_storage"
    assert root.attributes["messaging.message.id"] == "5b2a7c3e-1f4d-4e6b-9a8c-7d6e5f4a3b2c"
    assert f"{root.trace_id:032x}" == "1" * 32


def test_azure_service_bus_diagnostic_id_is_the_parent() -> None:
    """Azure SDKs' Diagnostic-Id application property (a traceparent) continues the producer's trace."""
    exporter = export(AZURE_ENV)

    @traced_handler
    def main(msg: object, context: object) -> None:
        return None

    main(msg=_servicebus(events.load("azure-servicebus")), context=AzureContext(trace_parent=HOST_PARENT))
    root = only_root(exporter)
    assert root.attributes["messaging.system"] == "servicebus"
    assert root.attributes["messaging.servicebus.message.delivery_count"] == 1
    assert f"{root.trace_id:032x}" == W3C_TRACE
    assert f"{root.parent_span_id:016x}" == "00f067aa0ba902b7"


def test_azure_event_hub_batch_links_every_event() -> None:
    """A batch of Event Hubs events: links to each event's context, parent when they share a trace."""
    exporter = export(AZURE_ENV)

    @traced_handler
    def main(events_batch: object, context: object) -> None:
        return None

    sample = events.load("azure-eventhub")
    main(events_batch=[_eventhub(sample), _eventhub(sample)], context=AzureContext())
    root = only_root(exporter)
    assert root.attributes["messaging.system"] == "eventhubs"
    assert root.attributes["messaging.batch.message_count"] == 2
    assert len(root.links) == 2
    assert f"{root.trace_id:032x}" == W3C_TRACE


def test_legacy_request_id_diagnostic_id_is_read() -> None:
    """A hierarchical Diagnostic-Id (old Application Insights SDKs) still gives a context."""
    exporter = export(AZURE_ENV)
    sample = events.load("azure-servicebus")
    sample["application_properties"] = {"Diagnostic-Id": "|abc123.1."}

    @traced_handler
    def main(msg: object, context: object) -> None:
        return None

    main(msg=_servicebus(sample), context=AzureContext())
    assert only_root(exporter).parent_is_remote


def test_lambda_handlers_are_unaffected_by_other_platforms() -> None:
    """A plain Lambda event and context keep the AWS platform when nothing else is claimed."""
    exporter = export({"AWS_LAMBDA_FUNCTION_NAME": "f"})

    @traced_handler
    def handler(event: object, context: object) -> None:
        return None

    handler({"key": "value"}, LambdaContext())
    assert only_root(exporter).attributes["cloud.provider"] == "aws"


def test_pubsub_data_fixture_is_base64_json() -> None:
    """The Pub/Sub sample's message data decodes to JSON (guards the shared fixture)."""
    data = events.load("gcp-pubsub")["data"]["message"]["data"]
    assert json.loads(base64.b64decode(data))["orderId"] == "42"


def test_an_azure_batch_run_off_platform_is_claimed_by_its_messages() -> None:
    """A list of Event Hubs events (a batch binding) in a local run, with no Azure environment,
    is still an Azure batch (it was taken for a Lambda call: trigger other, no links)."""
    exporter = export({})

    @traced_handler
    def main(events_batch: object, context: object) -> None:
        return None

    sample = events.load("azure-eventhub")
    main([_eventhub(sample), _eventhub(sample)], AzureContext())
    root = only_root(exporter)
    assert root.attributes["cloud.provider"] == "azure"
    assert root.attributes["messaging.system"] == "eventhubs"
    assert len(root.links) == 2
