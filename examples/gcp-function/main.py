"""Two Google Cloud functions (functions-framework), traced with ``@traced_handler``.

``create_order`` is an HTTP function: it records the order and publishes an
``order-created`` message whose attributes carry the trace context (as
OpenTelemetry's Pub/Sub instrumentation writes ``traceparent``).
``on_order_created`` is a CloudEvent function subscribed to that topic
(Pub/Sub push through Eventarc): its span continues the same trace.

``@traced_handler`` goes *under* the functions-framework decorator, so the
framework registers the traced function. The layer recognises the Flask
request and the CloudEvent by their types; on Cloud Run functions it also
reads ``K_SERVICE`` and ``GOOGLE_CLOUD_PROJECT`` for the resource.

The publisher is a stand-in (``OUTBOX``), since this example runs without
Google Cloud: with ``google-cloud-pubsub`` it would be
``publisher.publish(topic, data, **attributes)``.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import functions_framework
from cloudevents.http import CloudEvent
from flask import Request

from nexs_serverless import SpanKind, propagation, traced_handler, tracer

OUTBOX: list[dict[str, Any]] = []  # messages "published" to the order-created topic


def publish(topic: str, data: dict[str, Any]) -> None:
    """Publish `data` with the current trace context in the message attributes."""
    attributes: dict[str, str] = {}
    with tracer.span(f"send {topic}", kind=SpanKind.PRODUCER, attributes={"messaging.system": "gcp_pubsub"}):
        propagation.inject(attributes)  # the send span's context: the consumer continues from it
        OUTBOX.append({"topic": topic, "data": json.dumps(data).encode(), "attributes": attributes})


@functions_framework.http
@traced_handler
def create_order(request: Request) -> tuple[dict[str, Any], int]:
    """POST /orders: validate, store, announce."""
    order = request.get_json()
    with tracer.span("store-order", attributes={"order.id": order["id"]}):
        stored = {**order, "status": "created"}
    publish("order-created", stored)
    return stored, 201


@functions_framework.cloud_event
@traced_handler
def on_order_created(cloud_event: CloudEvent) -> None:
    """Pub/Sub push: send the confirmation e-mail for the order in the message."""
    order = json.loads(base64.b64decode(cloud_event.data["message"]["data"]))
    with tracer.span("send-confirmation", attributes={"order.id": order["id"]}):
        print(f"confirmation sent for order {order['id']}")
