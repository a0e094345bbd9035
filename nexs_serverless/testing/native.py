"""The objects Google's and Azure's Python runtimes pass to a function, built from sample events.

Lambda hands a handler plain dicts, but ``functions-framework`` passes a Flask
request or a CloudEvent, and the Azure Functions worker an
``azure.functions.HttpRequest`` or a queue, Service Bus or Event Hubs
message. These builders turn the factories' plain descriptions
(`events.gcp_http`, `events.gcp_pubsub`, `events.azure_http`, and the
``azure-queue``, ``azure-servicebus`` and ``azure-eventhub`` samples) into
those objects, so a test calls the function exactly as the runtime does.
Each imports its framework when called: install ``functions-framework`` or
``azure-functions`` to use it.
"""

from __future__ import annotations

import json

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

__all__ = [
    "azure_eventhub_event",
    "azure_queue_message",
    "azure_request",
    "azure_servicebus_message",
    "build_args",
    "cloud_event",
    "flask_request",
]


def _body_bytes(body: object) -> bytes:
    if body is None:
        return b""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()
    return json.dumps(body, separators=(",", ":")).encode()


def flask_request(event: Mapping[str, Any]) -> Any:
    """A ``flask.Request`` for `event` (shape of `events.gcp_http`), as an HTTP function receives it."""
    from flask import Request
    from werkzeug.test import EnvironBuilder

    headers = dict(event.get("headers") or {})
    builder = EnvironBuilder(
        method=str(event.get("method") or "GET"),
        path=str(event.get("path") or "/"),
        base_url="https://" + str(headers.get("Host") or "localhost"),
        headers=headers,
        query_string=dict(event.get("query") or {}),
        data=_body_bytes(event.get("body")),
    )
    try:
        return builder.get_request(Request)
    finally:
        builder.close()


def cloud_event(event: Mapping[str, Any]) -> Any:
    """A ``cloudevents.http.CloudEvent`` for `event` (structured JSON, as `events.gcp_pubsub`)."""
    from cloudevents.http import CloudEvent

    attributes = {key: value for key, value in event.items() if key != "data"}
    return CloudEvent(attributes, event.get("data"))


def azure_request(event: Mapping[str, Any]) -> Any:
    """An ``azure.functions.HttpRequest`` for `event` (shape of `events.azure_http`)."""
    import azure.functions as func

    return func.HttpRequest(
        method=str(event.get("method") or "GET"),
        url=str(event["url"]),
        headers=dict(event.get("headers") or {}),
        params=dict(event.get("params") or {}),
        route_params=dict(event.get("route_params") or {}),
        body=_body_bytes(event.get("body")),
    )


def _time(value: object) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(value) if isinstance(value, str) else None


def azure_queue_message(event: Mapping[str, Any]) -> Any:
    """The ``QueueMessage`` the Azure worker passes to a Storage queue trigger (`azure-queue` sample)."""
    from azure.functions.queue import QueueMessage

    return QueueMessage(  # type: ignore[no-untyped-call]
        id=event.get("id"),
        body=event.get("body"),
        dequeue_count=event.get("dequeue_count"),
        expiration_time=_time(event.get("expiration_time")),
        insertion_time=_time(event.get("insertion_time")),
        pop_receipt=event.get("pop_receipt"),
    )


def azure_servicebus_message(event: Mapping[str, Any]) -> Any:
    """The ``ServiceBusMessage`` the worker passes to a Service Bus trigger (`azure-servicebus` sample)."""
    from azure.functions.servicebus import ServiceBusMessage

    return ServiceBusMessage(
        body=_body_bytes(event.get("body")),
        message_id=str(event.get("message_id") or ""),
        content_type=event.get("content_type"),
        correlation_id=event.get("correlation_id"),
        delivery_count=event.get("delivery_count"),
        enqueued_sequence_number=event.get("enqueued_sequence_number"),
        sequence_number=event.get("sequence_number"),
        application_properties=dict(event.get("application_properties") or {}),
        user_properties=dict(event.get("user_properties") or {}),
    )


def azure_eventhub_event(event: Mapping[str, Any]) -> Any:
    """The ``EventHubEvent`` the worker passes to an Event Hubs trigger (`azure-eventhub` sample).

    The event's ``properties`` become the trigger metadata's ``Properties``,
    where the worker puts the application properties (and trace context).
    """
    from azure.functions._eventhub import EventHubEvent
    from azure.functions.meta import Datum

    properties = event.get("properties")
    metadata = {"Properties": Datum(json.dumps(properties), "json")} if properties is not None else None
    return EventHubEvent(
        body=_body_bytes(event.get("body")),
        trigger_metadata=metadata,
        enqueued_time=_time(event.get("enqueued_time")),
        partition_key=event.get("partition_key"),
        sequence_number=event.get("sequence_number"),
        offset=event.get("offset"),
    )


def _azure_trigger(event: Mapping[str, Any]) -> Any:
    """The Azure binding object `event` describes, told apart by its fields."""
    if "url" in event:
        return azure_request(event)
    if "pop_receipt" in event or "dequeue_count" in event:
        return azure_queue_message(event)
    if "message_id" in event:
        return azure_servicebus_message(event)
    if "partition_key" in event or "offset" in event:
        return azure_eventhub_event(event)
    raise ValueError("not an Azure HTTP request, queue, Service Bus or Event Hubs message")


def build_args(platform: str, event: Mapping[str, Any], context: object) -> tuple[object, ...]:
    """The positional arguments a function on `platform` receives for `event`.

    ``aws`` passes ``(event, context)``; ``gcp`` passes the Flask request, or
    the CloudEvent when `event` is one (it has ``specversion``); ``azure``
    passes ``(binding, context)``, the binding being the HTTP request or
    message the event describes.

    Raises:
        ValueError: for an unknown platform name, or an Azure event of no known shape.
    """
    if platform == "aws":
        return (dict(event), context)
    if platform == "gcp":
        return (cloud_event(event) if "specversion" in event else flask_request(event),)
    if platform == "azure":
        return (_azure_trigger(event), context)
    raise ValueError(f"unknown platform {platform!r}; expected aws, gcp or azure")
