"""SQS batches (``eventSource: aws:sqs``), including SNS notifications delivered through SQS.

Follows OpenTelemetry's "Instrumenting AWS Lambda", section SQS: the
invocation span is a ``CONSUMER`` span named ``process <queue>`` with
``messaging.system=aws_sqs`` and ``messaging.operation.type=process``.

Each message's context is read from, by ``NEXS_CONTEXT_PRECEDENCE``:

- ``headers``: its message attributes (``traceparent`` & co., as our
  instrumentation and OpenTelemetry SDKs write them); for an SNS notification
  delivered without raw message delivery, the SNS message attributes inside
  the body;
- ``xray``: the ``AWSTraceHeader`` system attribute, as the semantic
  conventions prescribe (AWS sets it from the sender's X-Ray header).

``NEXS_SQS_MODE=links`` (default) links the invocation span to every
message's context; ``per_message`` instead starts one ``process <queue>``
span per message (the conventions' "SQS Message" span: child of the
invocation span, linked to its message), lasting as long as the invocation,
since the handler's own loop over the batch cannot be seen. In both modes,
when every message belongs to one trace (always so for a batch of one), the
invocation continues that trace: its parent is the first message's context.
"""

from __future__ import annotations

from ..model import SpanKind
from ..propagation.options import current
from ..propagation.xray import incoming_from as xray_incoming
from . import Trigger
from ._messages import (
    arn_name,
    batch_parent,
    choose,
    headers_incoming,
    json_object,
    link,
    sns_attributes,
    sqs_attributes,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..model import Link, SpanContext
    from ..propagation.incoming import Incoming
    from ..span import Span

__all__ = ["describe"]


def _found(record: dict[str, object]) -> tuple[dict[str, Incoming], str | None]:
    """What one message carries, by source, and the SNS topic when it is an SNS notification."""
    found: dict[str, Incoming] = {}
    topic: str | None = None
    incoming = headers_incoming(sqs_attributes(record.get("messageAttributes")))
    if incoming is None:
        notification = json_object(record.get("body"))
        if notification is not None and notification.get("Type") == "Notification":
            arn = notification.get("TopicArn")
            topic = arn if isinstance(arn, str) else None
            incoming = headers_incoming(sns_attributes(notification.get("MessageAttributes")))
    if incoming is not None:
        found["headers"] = incoming
    attributes = record.get("attributes")
    if isinstance(attributes, dict):
        xray = xray_incoming(attributes.get("AWSTraceHeader"))
        if xray is not None:
            found["xray"] = xray
    return found, topic


def describe(event: dict[str, object]) -> Trigger:
    """Messaging attributes, links (or per-message spans) and the batch's parent."""
    options = current()
    records = [record for record in event["Records"] if isinstance(record, dict)]  # type: ignore[attr-defined]
    queues = {arn_name(record.get("eventSourceARN")) for record in records}
    queue = queues.pop() if len(queues) == 1 else None
    attrs: dict[str, object] = {
        "messaging.system": "aws_sqs",
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
    }
    if queue:
        attrs["messaging.destination.name"] = queue
    if len(records) == 1:
        message_id = records[0].get("messageId")
        if isinstance(message_id, str):
            attrs["messaging.message.id"] = message_id
    else:
        attrs["messaging.batch.message_count"] = len(records)
    chosen: list[tuple[str, Incoming, object]] = []
    topics: set[str] = set()
    for record in records:
        found, topic = _found(record)
        if topic:
            topics.add(topic)
        picked = choose(found, options.precedence)
        if picked is not None:
            chosen.append((picked[0], picked[1], record.get("messageId")))
    if len(topics) == 1:
        attrs["aws.sns.topic.arn"] = next(iter(topics))
    trigger = Trigger(
        "pubsub", SpanKind.CONSUMER, name=f"process {queue}" if queue else "process", attributes=attrs
    )
    contexts: list[SpanContext] = [
        incoming.context for _, incoming, _ in chosen if incoming.context is not None
    ]
    parent = batch_parent(contexts)
    if parent is not None:
        source, incoming, _ = chosen[0]
        trigger.offer(source, incoming)
    links = [link(incoming.context, message_id) for _, incoming, message_id in chosen if incoming.context]
    if options.sqs_mode == "per_message":
        _per_message_spans(trigger, records, links, attrs)
    else:
        trigger.links = links
    return trigger


def _per_message_spans(
    trigger: Trigger, records: list[dict[str, object]], links: list[Link], attrs: dict[str, object]
) -> None:
    """One ``process`` span per message, children of the root, each linked to its message."""
    by_id = {str(one.attributes.get("messaging.message.id")): one for one in links}
    started: list[Span] = []
    base = {key: value for key, value in attrs.items() if key != "messaging.batch.message_count"}

    def on_start(root: Span) -> None:
        from ..tracing import tracer

        for record in records:
            message_id = record.get("messageId")
            span_attrs = dict(base)
            if isinstance(message_id, str):
                span_attrs["messaging.message.id"] = message_id
            own = by_id.get(str(message_id))
            started.append(
                tracer.span(
                    root.name,
                    kind=SpanKind.CONSUMER,
                    attributes=span_attrs,
                    links=[own] if own is not None else None,
                    parent=root,
                )
            )

    def on_end(root: Span) -> None:
        for span in started:
            span.end()
        started.clear()

    trigger.on_start = on_start
    trigger.on_end = on_end
