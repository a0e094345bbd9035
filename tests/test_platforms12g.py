"""Google and Azure calls a demanding user makes: repeated header lines, proxies' schemes, odd ports,
Azure batches within bounds, Event Hubs' partition, Event Grid events."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from support.memory import export, only_root

from nexs_serverless import SpanKind, baggage, stats, traced_handler
from nexs_serverless.testing import AzureContext, events, native

W3C_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{W3C_TRACE}-00f067aa0ba902b7-01"
GCP_ENV = {"K_SERVICE": "orders-fn", "FUNCTION_TARGET": "handle", "GOOGLE_CLOUD_PROJECT": "my-project"}
AZURE_ENV = {"FUNCTIONS_WORKER_RUNTIME": "python", "WEBSITE_SITE_NAME": "my-func-app"}


def starlette_request(lines: list[tuple[str, str]]) -> Any:
    """A real ``starlette.requests.Request`` (``functions_framework.aio``) whose headers are `lines`."""
    from starlette.requests import Request

    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": "GET",
        "scheme": "https",
        "path": "/orders",
        "query_string": b"",
        "headers": [(b"host", b"orders-fn.a.run.app")]
        + [(name.encode("latin-1"), value.encode("latin-1")) for name, value in lines],
        "server": ("orders-fn.a.run.app", 443),
        "client": ("10.0.0.1", 40000),
    }
    return Request(scope)


def internal_errors() -> float:
    return stats().get("internal_errors", 0)


# -- HTTP requests as objects (Google, Azure) -------------------------------------------------


def test_a_header_sent_on_several_lines_is_read_in_full() -> None:
    """Two ``tracestate`` and two ``baggage`` lines of an ASGI request: every member arrives (the last
    line alone was read, and the first line's vendor and baggage were lost)."""
    exporter = export(GCP_ENV)
    seen: dict[str, str] = {}

    @traced_handler
    async def hello(request: object) -> str:
        seen.update(baggage.get_all())
        return "ok"

    request = starlette_request(
        [
            ("traceparent", TRACEPARENT),
            ("tracestate", "congo=t61rcWkgMzE"),
            ("tracestate", "rojo=00f067aa0ba902b7"),
            ("baggage", "tenant=acme"),
            ("baggage", "region=eu"),
        ]
    )
    asyncio.run(hello(request))
    root = only_root(exporter)
    assert f"{root.trace_id:032x}" == W3C_TRACE
    assert dict(root.trace_state) == {"congo": "t61rcWkgMzE", "rojo": "00f067aa0ba902b7"}
    assert seen == {"tenant": "acme", "region": "eu"}


@pytest.mark.parametrize("forwarded", ["HTTPS", "https, http", " https ,http"])
def test_the_forwarded_scheme_is_the_first_proxys_in_lower_case(forwarded: str) -> None:
    """``X-Forwarded-Proto: https, http`` (each proxy appends its own) gives ``url.scheme=https``."""
    exporter = export(GCP_ENV)

    @traced_handler
    def handle(request: object) -> str:
        return "ok"

    handle(native.flask_request(events.gcp_http(headers={"X-Forwarded-Proto": forwarded})))
    assert only_root(exporter).attributes["url.scheme"] == "https"


@pytest.mark.parametrize(("host", "port"), [("orders.example:²", None), ("orders.example:99999", None)])
def test_an_azure_host_port_that_is_no_port_number_is_left_out(host: str, port: int | None) -> None:
    """A ``Host`` port in other digits (``int("²")`` raised, and the call went untraced) or past
    65535 is no ``server.port``; the request is still described."""
    exporter = export(AZURE_ENV)
    before = internal_errors()

    @traced_handler
    def main(req: object, context: object) -> str:
        return "ok"

    main(req=native.azure_request(events.azure_http(headers={"Host": host})), context=AzureContext())
    attrs = only_root(exporter).attributes
    assert (attrs["faas.trigger"], attrs["server.address"]) == ("http", "orders.example")
    assert attrs.get("server.port") == port
    assert internal_errors() == before


def test_a_returned_status_in_other_digits_records_no_status_and_no_error() -> None:
    """Flask's text status ``"² OK"`` is no code: nothing recorded, nothing raised in the tracer."""
    exporter = export(GCP_ENV)
    before = internal_errors()

    @traced_handler
    def handle(request: object) -> tuple[str, str]:
        return "odd", "² OK"

    handle(native.flask_request(events.load("gcp-http")))
    assert "http.response.status_code" not in only_root(exporter).attributes
    assert internal_errors() == before


# -- Azure message batches --------------------------------------------------------------------


def _servicebus_batch(count: int, *, traces: int) -> tuple[list[Any], list[int]]:
    """`count` Service Bus messages over `traces` traces, and a list counting property reads."""
    from azure.functions.servicebus import ServiceBusMessage

    reads = [0]

    class Counted(ServiceBusMessage):
        @property
        def application_properties(self) -> dict[str, Any]:
            reads[0] += 1
            return super().application_properties

    messages = [
        Counted(
            body=b"{}",
            message_id=f"m{index}",
            application_properties={"traceparent": f"00-{index % traces + 1:032x}-{index + 1:016x}-01"},
            user_properties={},
        )
        for index in range(count)
    ]
    return messages, reads


def test_a_huge_azure_batch_is_read_within_bounds() -> None:
    """3,000 Service Bus messages: links for the first 128 only, the rest counted dropped, and no more
    messages read than needed (every message was parsed and linked, whatever the limit)."""
    from nexs_serverless.platforms import azure
    from nexs_serverless.runtime import runtime

    export(AZURE_ENV)
    messages, reads = _servicebus_batch(3000, traces=3000)
    trigger = azure.describe(messages, AzureContext(), runtime.settings)
    assert (len(trigger.links), trigger.dropped_links) == (128, 3000 - 128)
    assert [link.attributes["messaging.message.id"] for link in trigger.links[:2]] == ["m0", "m1"]
    assert reads[0] <= 200
    assert trigger.parent is None  # several traces: linked, not continued


def test_a_huge_azure_batch_keeps_the_link_limit_on_the_exported_span() -> None:
    """End to end: the root carries 128 links and counts the others as dropped."""
    exporter = export(AZURE_ENV)

    @traced_handler
    def main(msgs: object, context: object) -> None:
        return None

    messages, _ = _servicebus_batch(500, traces=2)
    main(msgs=messages, context=AzureContext())
    root = only_root(exporter)
    assert (len(root.links), root.dropped_links) == (128, 500 - 128)
    assert root.attributes["messaging.batch.message_count"] == 500


def _event_hub_batch(partition: object) -> list[Any]:
    """Two events decoded by the worker's own converter (cardinality many), with trigger metadata."""
    from azure.functions.eventhub import EventHubTriggerConverter
    from azure.functions.meta import Datum

    system = [{"PartitionKey": "k", "SequenceNumber": n, "Offset": n * 10} for n in (1, 2)]
    metadata = {
        "SystemPropertiesArray": Datum(json.dumps(system), "json"),
        "PropertiesArray": Datum(
            json.dumps([{"traceparent": TRACEPARENT}, {"traceparent": TRACEPARENT}]), "json"
        ),
        "PartitionContext": Datum(json.dumps(partition), "json"),
    }
    batch: list[Any] = EventHubTriggerConverter.decode(
        Datum(json.dumps(['{"n": 1}', '{"n": 2}']), "json"), trigger_metadata=metadata
    )
    return batch


def test_an_event_hubs_batch_names_its_event_hub_partition_and_consumer_group() -> None:
    """The host's ``PartitionContext`` gives ``messaging.destination.name`` (and the span's name), the
    partition, the consumer group and the namespace; each event's properties its link."""
    exporter = export(AZURE_ENV)

    @traced_handler
    def main(events_batch: object, context: object) -> None:
        return None

    partition = {
        "ConsumerGroup": "$Default",
        "EventHubName": "orders",
        "FullyQualifiedNamespace": "orders-ns.servicebus.windows.net",
        "PartitionId": "3",
    }
    main(events_batch=_event_hub_batch(partition), context=AzureContext())
    root = only_root(exporter)
    attrs = root.attributes
    assert (root.name, root.kind) == ("process orders", SpanKind.CONSUMER)
    assert attrs["messaging.destination.name"] == "orders"
    assert attrs["messaging.destination.partition.id"] == "3"
    assert attrs["messaging.consumer.group.name"] == "$Default"
    assert attrs["server.address"] == "orders-ns.servicebus.windows.net"
    assert len(root.links) == 2
    assert f"{root.trace_id:032x}" == W3C_TRACE


@pytest.mark.parametrize("partition", [None, "not json", {"EventHubName": 7}])
def test_an_event_hubs_batch_without_a_readable_partition_context_is_still_described(
    partition: object,
) -> None:
    """No (or an odd) ``PartitionContext``: no destination, the batch still linked and continued."""
    exporter = export(AZURE_ENV)

    @traced_handler
    def main(events_batch: object, context: object) -> None:
        return None

    main(events_batch=_event_hub_batch(partition), context=AzureContext())
    root = only_root(exporter)
    assert (root.name, "messaging.destination.name" in root.attributes) == ("process", False)
    assert f"{root.trace_id:032x}" == W3C_TRACE


# -- Azure Event Grid ------------------------------------------------------------------------------


def _event_grid(body: dict[str, object]) -> Any:
    """The event the worker passes to an Event Grid trigger for `body`, decoded by its own converter."""
    from azure.functions.eventgrid import EventGridEventInConverter
    from azure.functions.meta import Datum

    return EventGridEventInConverter.decode(Datum(json.dumps(body), "json"), trigger_metadata={})


TOPIC = "/subscriptions/0000/resourceGroups/orders-rg/providers/Microsoft.EventGrid/topics/orders"


def test_an_event_grid_cloud_event_is_a_pubsub_message_continuing_its_publishers_trace() -> None:
    """CloudEvents schema: ``pubsub``, ``messaging.system=eventgrid``, and the parent from the
    Distributed Tracing extension that Azure SDKs publish (it was ``other``, the context lost)."""
    exporter = export(AZURE_ENV)

    @traced_handler
    def main(event: object, context: object) -> None:
        return None

    cloud_event = {
        "specversion": "1.0",
        "id": "e-1",
        "source": "/orders/api",
        "type": "Orders.Placed",
        "subject": "orders/42",
        "time": "2026-11-28T10:00:00Z",
        "data": {"orderId": "42"},
        "traceparent": TRACEPARENT,
    }
    main(
        event=_event_grid(cloud_event),
        context=AzureContext(trace_parent="00-" + "1" * 32 + "-" + "2" * 16 + "-01"),
    )
    root = only_root(exporter)
    attrs = root.attributes
    assert (attrs["faas.trigger"], root.kind, root.name) == ("pubsub", SpanKind.CONSUMER, "process")
    assert attrs["messaging.system"] == "eventgrid"
    assert attrs["messaging.message.id"] == "e-1"
    assert (attrs["cloudevents.event_type"], attrs["cloudevents.event_source"]) == (
        "Orders.Placed",
        "/orders/api",
    )
    assert attrs["cloudevents.event_subject"] == "orders/42"
    assert f"{root.trace_id:032x}" == W3C_TRACE
    assert attrs["nexs.context.source"] == "headers"


def test_an_event_grid_schema_event_names_its_topic_and_takes_the_host_context() -> None:
    """Event Grid schema: the topic's name is the destination; no extension, so the host's context."""
    exporter = export(AZURE_ENV)

    @traced_handler
    def main(event: object, context: object) -> None:
        return None

    event = {
        "id": "e-2",
        "topic": TOPIC,
        "subject": "orders/42",
        "eventType": "Orders.Placed",
        "eventTime": "2026-11-28T10:00:00Z",
        "data": {"orderId": "42"},
        "dataVersion": "1",
    }
    main(_event_grid(event), AzureContext(trace_parent="00-" + "1" * 32 + "-" + "2" * 16 + "-01"))
    root = only_root(exporter)
    attrs = root.attributes
    assert (attrs["faas.trigger"], root.name) == ("pubsub", "process orders")
    assert attrs["messaging.destination.name"] == "orders"
    assert (attrs["cloudevents.event_type"], attrs["cloudevents.event_source"]) == ("Orders.Placed", TOPIC)
    assert f"{root.trace_id:032x}" == "1" * 32
    assert attrs["nexs.context.source"] == "host"


# -- message attribute names are case-sensitive --------------------------------------------------

OTHER_PARENT = "00-11111111111111111111111111111111-2222222222222222-01"


def test_a_pubsub_applications_own_trace_parent_attribute_does_not_replace_the_propagators() -> None:
    """Pub/Sub attribute names are case-sensitive: ``TraceParent`` written after ``traceparent`` is
    another attribute (it won, as an HTTP header of another case would), as for SQS and SNS."""
    exporter = export(GCP_ENV)

    @traced_handler
    def handle(cloud_event: object) -> None:
        return None

    handle(
        native.cloud_event(
            events.gcp_pubsub(attributes={"traceparent": TRACEPARENT, "TraceParent": OTHER_PARENT})
        )
    )
    assert f"{only_root(exporter).trace_id:032x}" == W3C_TRACE


def test_a_pubsub_attribute_of_another_case_stands_in_without_the_exact_one() -> None:
    """A producer that wrote ``Traceparent`` (and no ``traceparent``) is still continued."""
    exporter = export(GCP_ENV)

    @traced_handler
    def handle(cloud_event: object) -> None:
        return None

    handle(
        native.cloud_event(events.gcp_pubsub(attributes={"traceparent": None, "Traceparent": OTHER_PARENT}))
    )
    assert f"{only_root(exporter).trace_id:032x}" == "1" * 32


def test_a_service_bus_applications_own_trace_parent_property_does_not_replace_the_propagators() -> None:
    """Application property names are case-sensitive too; ``Diagnostic-Id`` is still read."""
    exporter = export(AZURE_ENV)

    @traced_handler
    def main(msg: object, context: object) -> None:
        return None

    sample = events.load("azure-servicebus")
    sample["application_properties"] = {"traceparent": TRACEPARENT, "TraceParent": OTHER_PARENT}
    main(msg=native.azure_servicebus_message(sample), context=AzureContext())
    assert f"{only_root(exporter).trace_id:032x}" == W3C_TRACE
    sample["application_properties"] = {"Diagnostic-Id": OTHER_PARENT}
    exporter = export(AZURE_ENV)
    main(msg=native.azure_servicebus_message(sample), context=AzureContext())
    assert f"{only_root(exporter).trace_id:032x}" == "1" * 32


# -- Pub/Sub ordering key ------------------------------------------------------------------------


def test_a_pubsub_message_published_with_an_ordering_key_records_it() -> None:
    """``orderingKey`` of an ordered message is ``messaging.gcp_pubsub.message.ordering_key``."""
    exporter = export(GCP_ENV)

    @traced_handler
    def handle(cloud_event: object) -> None:
        return None

    event = events.gcp_pubsub()
    event["data"]["message"]["orderingKey"] = "customer-42"
    handle(native.cloud_event(event))
    assert only_root(exporter).attributes["messaging.gcp_pubsub.message.ordering_key"] == "customer-42"
    exporter = export(GCP_ENV)
    handle(native.cloud_event(events.gcp_pubsub()))
    assert "messaging.gcp_pubsub.message.ordering_key" not in only_root(exporter).attributes


def test_an_azure_batch_larger_than_the_read_budget_continues_no_trace() -> None:
    """1,500 messages of one trace: 1,000 are read (as for SQS), so the batch is linked, not continued:
    a message not read could belong to another trace."""
    from nexs_serverless.platforms import azure
    from nexs_serverless.runtime import runtime
    from nexs_serverless.triggers._messages import MAX_MESSAGES_READ

    export(AZURE_ENV)
    messages, reads = _servicebus_batch(1500, traces=1)
    trigger = azure.describe(messages, AzureContext(), runtime.settings)
    assert reads[0] <= MAX_MESSAGES_READ + 5  # `_kind` looks at the first message's properties too
    assert (len(trigger.links), trigger.dropped_links) == (128, 1500 - 128)
    assert trigger.parent is None
    messages, _ = _servicebus_batch(MAX_MESSAGES_READ, traces=1)
    assert azure.describe(messages, AzureContext(), runtime.settings).parent is not None
