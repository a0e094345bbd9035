"""EventBridge events (``detail-type`` + ``source`` + ``detail``), scheduled events included.

EventBridge has no message attributes. Its official trace carrier is the
``TraceHeader`` of ``PutEvents``, an X-Ray header that reaches a Lambda
target as ``_X_AMZN_TRACE_ID`` (the ``xray`` source, added by the platform).
Our instrumentation also puts a ``_nexs`` carrier into a JSON ``Detail``
(``NEXS_PAYLOAD_INJECTION``), read here as the ``headers`` source.
Scheduled events (``Scheduled Event`` from ``aws.events`` or
``aws.scheduler``) are ``faas.trigger=timer`` with ``faas.time``.
"""

from __future__ import annotations

from ..model import SpanKind
from . import Trigger
from ._messages import headers_incoming, payload_carrier

__all__ = ["describe"]

_SCHEDULERS = ("aws.events", "aws.scheduler")


def describe(event: dict[str, object]) -> Trigger:
    """Timer or pubsub attributes, and the ``_nexs`` carrier of the detail."""
    source = str(event.get("source") or "")
    detail_type = str(event.get("detail-type") or "")
    attrs: dict[str, object] = {}
    if isinstance(event.get("time"), str):
        attrs["faas.time"] = event["time"]
    if detail_type == "Scheduled Event" and source in _SCHEDULERS:
        resources = event.get("resources")
        if isinstance(resources, list) and resources and isinstance(resources[0], str):
            attrs["nexs.schedule.rule"] = resources[0]
        return Trigger("timer", SpanKind.SERVER, name=detail_type, attributes=attrs)
    attrs.update(
        {
            "messaging.system": "aws_eventbridge",
            "messaging.operation.type": "process",
            "messaging.operation.name": "process",
            "nexs.eventbridge.source": source,
            "nexs.eventbridge.detail_type": detail_type,
        }
    )
    if isinstance(event.get("id"), str):
        attrs["messaging.message.id"] = event["id"]
    trigger = Trigger(
        "pubsub", SpanKind.CONSUMER, name=f"process {source}" if source else "process", attributes=attrs
    )
    trigger.offer("headers", headers_incoming(payload_carrier(event.get("detail"))))
    return trigger
