"""EventBridge events (``detail-type`` + ``source`` + ``detail``), scheduled events and S3's included.

EventBridge has no message attributes. Its official trace carrier is the
``TraceHeader`` of ``PutEvents``, an X-Ray header that reaches a Lambda
target as ``_X_AMZN_TRACE_ID`` (the ``xray`` source, added by the platform).
Our instrumentation also puts a ``_nexs`` carrier into a JSON ``Detail``
(``NEXS_PAYLOAD_INJECTION``), read here as the ``headers`` source.
Scheduled events (``Scheduled Event`` from ``aws.events`` or
``aws.scheduler``) are ``faas.trigger=timer`` with ``faas.time``. S3 events
sent to EventBridge (``source: aws.s3``, a ``detail`` with ``bucket`` and
``object``) are ``datasource``, described as S3's own notifications are
(the key, URL-encoded there too, decoded).
"""

from __future__ import annotations

from ..model import SpanKind
from . import Trigger
from ._messages import message_incoming, payload_carrier

__all__ = ["describe"]

_SCHEDULERS = ("aws.events", "aws.scheduler")
# S3's EventBridge detail types -> faas.document.operation; other object events edit it.
_S3_OPERATIONS = {"Object Created": "insert", "Object Deleted": "delete"}


def describe(event: dict[str, object]) -> Trigger:
    """Timer, datasource or pubsub attributes, and the ``_nexs`` carrier of the detail."""
    source = event.get("source")
    source = source if isinstance(source, str) else ""
    detail_type = event.get("detail-type")
    detail_type = detail_type if isinstance(detail_type, str) else ""
    attrs: dict[str, object] = {}
    if isinstance(event.get("time"), str):
        attrs["faas.time"] = event["time"]
    if detail_type == "Scheduled Event" and source in _SCHEDULERS:
        resources = event.get("resources")
        if isinstance(resources, list) and resources and isinstance(resources[0], str):
            attrs["nexs.schedule.rule"] = resources[0]
        return Trigger("timer", SpanKind.SERVER, name=detail_type, attributes=attrs)
    attrs["nexs.eventbridge.source"] = source
    attrs["nexs.eventbridge.detail_type"] = detail_type
    if isinstance(event.get("id"), str):
        attrs["messaging.message.id"] = event["id"]
    detail = event.get("detail")
    if source == "aws.s3" and isinstance(detail, dict) and isinstance(detail.get("bucket"), dict):
        return _s3(detail, detail_type, attrs)
    attrs.update(
        {
            "messaging.system": "aws_eventbridge",
            "messaging.operation.type": "process",
            "messaging.operation.name": "process",
        }
    )
    trigger = Trigger(
        "pubsub", SpanKind.CONSUMER, name=f"process {source}" if source else "process", attributes=attrs
    )
    trigger.offer("headers", message_incoming(payload_carrier(detail)))
    return trigger


def _s3(detail: dict[str, object], detail_type: str, attrs: dict[str, object]) -> Trigger:
    """An S3 event delivered by EventBridge: the datasource attributes of `s3.describe`."""
    from urllib.parse import unquote_plus

    bucket = detail["bucket"].get("name")  # type: ignore[attr-defined]
    document = detail.get("object")
    key = document.get("key") if isinstance(document, dict) else None
    operation = _S3_OPERATIONS.get(detail_type, "edit")
    attrs.pop("messaging.message.id", None)  # an event id, not a message's
    attrs["faas.document.operation"] = operation
    if "faas.time" in attrs:
        attrs["faas.document.time"] = attrs.pop("faas.time")
    if isinstance(bucket, str):
        attrs["faas.document.collection"] = attrs["aws.s3.bucket"] = bucket
    if isinstance(key, str):
        attrs["faas.document.name"] = attrs["aws.s3.key"] = unquote_plus(key)
    name = f"{operation} {bucket}" if isinstance(bucket, str) else None
    return Trigger("datasource", SpanKind.SERVER, name=name, attributes=attrs)
