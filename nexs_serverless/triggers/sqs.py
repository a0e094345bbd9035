"""SQS batches (``eventSource: aws:sqs``), including SNS notifications delivered through SQS.

Follows OpenTelemetry's "Instrumenting AWS Lambda", section SQS: the
invocation span is a ``CONSUMER`` span named ``process <queue>`` with
``messaging.system=aws_sqs`` and ``messaging.operation.type=process``.

Each message's context is read from, by ``NEXS_CONTEXT_PRECEDENCE`` (a
source is read only when the ones before it found no context):

- ``headers``: its message attributes (``traceparent`` & co., as our
  instrumentation and OpenTelemetry SDKs write them; with raw message
  delivery, an SNS notification's attributes arrive as these); for an SNS
  notification delivered without raw message delivery, the SNS message
  attributes inside the body;
- ``xray``: the ``AWSTraceHeader`` system attribute, as the semantic
  conventions prescribe (AWS sets it from the sender's X-Ray header), when it
  says ``Sampled=1``. An unsampled one is no context: AWS SDKs inside Lambda
  copy the sender's ``_X_AMZN_TRACE_ID`` into every request (botocore's
  recursion detection), and Lambda fills that with an unsampled id even when
  X-Ray tracing is off, so a parent-based sampler following it would drop
  every message sent by an untraced function (the rule Lambda's own variable
  follows, see `nexs_serverless.propagation.options`).

``NEXS_SQS_MODE=links`` (default) links the invocation span to every
message's context; ``per_message`` instead starts one ``process <queue>``
span per message (the conventions' "SQS Message" span: child of the
invocation span, linked to its message), lasting as long as the invocation,
since the handler's own loop over the batch cannot be seen. In both modes,
when every message belongs to one trace (always so for a batch of one), the
invocation continues that trace: its parent is the first message's context.

A batch holds up to 10,000 messages; the work stays bounded: links (and
``per_message`` spans) for the first ``OTEL_SPAN_LINK_COUNT_LIMIT`` (128)
messages only, the others counted as dropped links, and contexts parsed
for at most 1,000 messages (or the link limit, when larger); a batch larger
than that continues no trace (see `_messages.read_batch`).
"""

from __future__ import annotations

from ..model import SpanKind
from ..propagation.options import current
from ..propagation.xray import incoming_from as xray_incoming
from . import Trigger
from ._messages import (
    common_arn_name,
    json_object,
    link,
    link_limit,
    message_incoming,
    read_batch,
    sns_attributes,
    sqs_attributes,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from ..model import Link
    from ..propagation.incoming import Incoming
    from ..span import Span

__all__ = ["describe"]


def _notification(body: object) -> dict[str, object] | None:
    """The SNS notification an SQS body holds (SNS to SQS without raw delivery), or None.

    A body that does not even contain ``"Notification"`` is not parsed: most
    bodies are the application's own, and a batch may hold thousands.
    """
    if isinstance(body, str) and '"Notification"' not in body:
        return None
    notification = json_object(body)
    if notification is None or notification.get("Type") != "Notification":
        return None
    return notification


def _reader(
    precedence: tuple[str, ...], topics: set[str]
) -> Callable[[dict[str, object]], tuple[str, Incoming] | None]:
    """Reads one message's context: the first source in `precedence` that has one, and which."""

    def read(record: dict[str, object]) -> tuple[str, Incoming] | None:
        for source in precedence:
            incoming: Incoming | None = None
            if source == "headers":
                incoming = message_incoming(sqs_attributes(record.get("messageAttributes")))
                if incoming is None:
                    notification = _notification(record.get("body"))
                    if notification is not None:
                        arn = notification.get("TopicArn")
                        if isinstance(arn, str):
                            topics.add(arn)
                        incoming = message_incoming(sns_attributes(notification.get("MessageAttributes")))
            elif source == "xray":
                attributes = record.get("attributes")
                if isinstance(attributes, dict):
                    incoming = xray_incoming(attributes.get("AWSTraceHeader"))
                    if incoming is not None and (incoming.context is None or not incoming.context.sampled):
                        incoming = None
            if incoming is not None and incoming.context is not None:
                return source, incoming
        return None

    return read


def describe(event: dict[str, object]) -> Trigger:
    """Messaging attributes, links (or per-message spans) and the batch's parent."""
    options = current()
    records = [record for record in event["Records"] if isinstance(record, dict)]  # type: ignore[attr-defined]
    queue = common_arn_name(records)
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
    topics: set[str] = set()
    limit = link_limit()
    batch = read_batch(records, _reader(options.precedence, topics), limit)
    if len(topics) == 1:
        attrs["aws.sns.topic.arn"] = next(iter(topics))
    trigger = Trigger(
        "pubsub", SpanKind.CONSUMER, name=f"process {queue}" if queue else "process", attributes=attrs
    )
    if batch.parent is not None:
        trigger.offer(*batch.parent)
    if options.sqs_mode == "per_message":
        own: dict[int, Link] = {
            index: link(incoming.context, records[index].get("messageId"))
            for index, _, incoming in batch.found
            if incoming.context is not None
        }
        _per_message_spans(trigger, records[:limit], own, attrs)
    else:
        trigger.links = batch.links(lambda index: records[index].get("messageId"))
        trigger.dropped_links = batch.dropped
    return trigger


def _per_message_spans(
    trigger: Trigger, records: list[dict[str, object]], own: dict[int, Link], attrs: dict[str, object]
) -> None:
    """One ``process`` span per message of `records`, children of the root, each linked to its message.

    `own` maps a record's position to the link to its context: positions, not
    message ids, which may be missing or repeated (a redelivered message).
    """
    started: list[Span] = []
    base = {key: value for key, value in attrs.items() if key != "messaging.batch.message_count"}

    def on_start(root: Span) -> None:
        from ..tracing import tracer

        for index, record in enumerate(records):
            message_id = record.get("messageId")
            span_attrs = dict(base)
            if isinstance(message_id, str):
                span_attrs["messaging.message.id"] = message_id
            found = own.get(index)
            started.append(
                tracer.span(
                    root.name,
                    kind=SpanKind.CONSUMER,
                    attributes=span_attrs,
                    links=[found] if found is not None else None,
                    parent=root,
                )
            )

    def on_end(root: Span) -> None:
        for span in started:
            span.end()
        started.clear()

    trigger.on_start = on_start
    trigger.on_end = on_end
