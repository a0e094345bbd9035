"""Kinesis Data Streams batches (``eventSource: aws:kinesis``).

Kinesis records have no attributes: a context travels only inside the data,
as the ``_nexs`` carrier our instrumentation adds to JSON records
(``NEXS_PAYLOAD_INJECTION``). Like SQS, the invocation span links to every
record's context and continues the trace when all records share one, within
the same bounds (links for the first ``OTEL_SPAN_LINK_COUNT_LIMIT`` records,
contexts read for at most 1,000; see `_messages.read_batch`). A record's data
is decoded, and parsed only when it holds ``"_nexs"``.
"""

from __future__ import annotations

import base64
import binascii

from ..model import SpanKind
from . import Trigger
from ._messages import common_arn_name, link_limit, message_incoming, payload_carrier, read_batch

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..propagation.incoming import Incoming

__all__ = ["describe"]

_MAX_DECODED = 1024 * 1024  # Kinesis' record limit; anything bigger is not ours to parse


def _read(record: dict[str, object]) -> tuple[str, Incoming] | None:
    """The context of one record's data (the ``headers`` source), if it has one."""
    data = record.get("kinesis")
    payload = data.get("data") if isinstance(data, dict) else None
    if not isinstance(payload, str) or len(payload) > _MAX_DECODED * 4 // 3 + 4:
        return None
    try:
        raw = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        return None
    incoming = message_incoming(payload_carrier(raw))
    return ("headers", incoming) if incoming is not None and incoming.context is not None else None


def _shard(event_id: object) -> str:
    """The shard of a record's ``eventID`` (``shardId-000000000006:<sequence number>``), or ''.

    An id without the separator, or no text at all (a JSON null once read as
    the shard ``"None"``), names no shard.
    """
    if not isinstance(event_id, str):
        return ""
    shard, separator, _ = event_id.partition(":")
    return shard if separator else ""


def describe(event: dict[str, object]) -> Trigger:
    """Messaging attributes, links to each record's context, the batch's parent."""
    records = [record for record in event["Records"] if isinstance(record, dict)]  # type: ignore[attr-defined]
    stream = common_arn_name(records, after="/")
    attrs: dict[str, object] = {
        "messaging.system": "aws_kinesis",
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
    }
    if stream:
        attrs["messaging.destination.name"] = stream
        attrs["aws.kinesis.stream_name"] = stream
    shards = {_shard(record.get("eventID")) for record in records}
    if len(shards) == 1 and "" not in shards:
        attrs["messaging.destination.partition.id"] = shards.pop()
    if len(records) > 1:
        attrs["messaging.batch.message_count"] = len(records)
    batch = read_batch(records, _read, link_limit())
    trigger = Trigger(
        "pubsub", SpanKind.CONSUMER, name=f"process {stream}" if stream else "process", attributes=attrs
    )
    if batch.parent is not None:
        trigger.offer(*batch.parent)
    trigger.links = batch.links(lambda index: records[index].get("eventID"))
    trigger.dropped_links = batch.dropped
    return trigger
