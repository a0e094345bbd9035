"""SNS notifications (``EventSource: aws:sns``).

Lambda receives one notification per invocation; its context is read from
the message attributes (``headers``), where our instrumentation and
OpenTelemetry SDKs put ``traceparent`` & co. when publishing. An SNS topic
with X-Ray active tracing passes its context in ``_X_AMZN_TRACE_ID`` instead
(the ``xray`` source, added by the platform). Should a test or a replay send
several records, only the first one's context is used.
"""

from __future__ import annotations

from ..model import SpanKind
from . import Trigger
from ._messages import arn_name, message_incoming, sns_attributes

__all__ = ["describe"]


def describe(event: dict[str, object]) -> Trigger:
    """Messaging attributes and the first notification's context."""
    record = event["Records"][0]  # type: ignore[index]
    notification = record.get("Sns") if isinstance(record.get("Sns"), dict) else {}
    topic_arn = notification.get("TopicArn")
    topic = arn_name(topic_arn)
    attrs: dict[str, object] = {
        "messaging.system": "aws.sns",  # semantic conventions: "aws.sns" (and "aws_sqs")
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
    }
    if topic:
        attrs["messaging.destination.name"] = topic
    if isinstance(topic_arn, str):
        attrs["aws.sns.topic.arn"] = topic_arn
    message_id = notification.get("MessageId")
    if isinstance(message_id, str):
        attrs["messaging.message.id"] = message_id
    records = event["Records"]
    if isinstance(records, list) and len(records) > 1:
        attrs["messaging.batch.message_count"] = len(records)
    trigger = Trigger(
        "pubsub", SpanKind.CONSUMER, name=f"process {topic}" if topic else "process", attributes=attrs
    )
    trigger.offer("headers", message_incoming(sns_attributes(notification.get("MessageAttributes"))))
    return trigger
