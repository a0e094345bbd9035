"""Kinesis Data Streams batches (``eventSource: aws:kinesis``).

Kinesis records have no attributes: a context travels only inside the data,
as the ``_nexs`` carrier our instrumentation adds to JSON records
(``NEXS_PAYLOAD_INJECTION``). Like SQS, the invocation span links to every
record's context and continues the trace when all records share one.
"""

from __future__ import annotations

import base64
import binascii

from ..model import SpanKind
from . import Trigger
from ._messages import arn_name, batch_parent, headers_incoming, link, payload_carrier

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..propagation.incoming import Incoming

__all__ = ["describe"]

_MAX_DECODED = 1024 * 1024  # Kinesis' record limit; anything bigger is not ours to parse


def _incoming(record: dict[str, object]) -> Incoming | None:
    data = record.get("kinesis")
    payload = data.get("data") if isinstance(data, dict) else None
    if not isinstance(payload, str) or len(payload) > _MAX_DECODED * 4 // 3 + 4:
        return None
    try:
        raw = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        return None
    return headers_incoming(payload_carrier(raw))


def describe(event: dict[str, object]) -> Trigger:
    """Messaging attributes, links to each record's context, the batch's parent."""
    records = [record for record in event["Records"] if isinstance(record, dict)]  # type: ignore[attr-defined]
    streams = {arn_name(record.get("eventSourceARN"), after="/") for record in records}
    stream = streams.pop() if len(streams) == 1 else None
    attrs: dict[str, object] = {
        "messaging.system": "aws_kinesis",
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
    }
    if stream:
        attrs["messaging.destination.name"] = stream
        attrs["aws.kinesis.stream_name"] = stream
    shards = {str(record.get("eventID", "")).partition(":")[0] for record in records}
    if len(shards) == 1 and "" not in shards:
        attrs["messaging.destination.partition.id"] = shards.pop()
    if len(records) > 1:
        attrs["messaging.batch.message_count"] = len(records)
    found: list[tuple[Incoming, object]] = []
    for record in records:
        incoming = _incoming(record)
        if incoming is not None and incoming.context is not None:
            found.append((incoming, record.get("eventID")))
    trigger = Trigger(
        "pubsub", SpanKind.CONSUMER, name=f"process {stream}" if stream else "process", attributes=attrs
    )
    if batch_parent(incoming.context for incoming, _ in found if incoming.context) is not None:
        trigger.offer("headers", found[0][0])
    trigger.links = [link(incoming.context, record_id) for incoming, record_id in found if incoming.context]
    return trigger
