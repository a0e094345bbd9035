"""Size accounting for what `aws_operations` adds to a call: the services' limits, counted their way.

A carrier must never turn a call that AWS would take into one it rejects, so
each service's size is counted as that service counts it, and ours is left
out (counted: ``carrier_skipped_size``) when it would push a message, an
entry or a request past a limit it was within:

- SQS counts a message's body and attributes (names, types, values) against
  the queue's ``MaximumMessageSize`` (256 KiB by default until 2025; 1 MiB,
  the most, since), and a batch's messages together against the same: a
  message is kept from crossing either. SNS counts the same against 256 KiB.
  The ``AWSTraceHeader`` system attribute is not counted.
- EventBridge ``PutEvents``: the entries together within 256 KiB ("Calculating
  PutEvents event entry size": ``Source``, ``DetailType``, ``Detail``,
  ``Resources``, 14 bytes for ``Time``).
- Kinesis: 1 MiB a record (data blob and partition key), 5 MiB a
  ``PutRecords`` request.
- Step Functions: 256 KiB an execution's input.

Loaded only by the operations that add a carrier to a message or payload, not
by every AWS call.
"""

from __future__ import annotations

import json

from .. import _stats as stats

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "SFN_INPUT_BYTES",
    "events_cross_limit",
    "kinesis_record_limit",
    "records_cross_limit",
    "size",
    "sized_batch",
    "sized_message",
]

# The services' size limits for what a carrier is added to (AWS quotas).
_MESSAGE_LIMITS = (256 * 1024, 1024 * 1024)  # SQS (both queue settings) and SNS
_KINESIS_RECORD_BYTES = 1024 * 1024  # data blob and partition key together
_KINESIS_REQUEST_BYTES = 5 * 1024 * 1024  # PutRecords: data blobs and partition keys together
_EVENTBRIDGE_ENTRY_BYTES = 256 * 1024  # a PutEvents request's entries together (so each one too)
SFN_INPUT_BYTES = 256 * 1024


def size(document: object) -> int:
    """Bytes of a body or payload as sent: a text's UTF-8, a dict's compact JSON."""
    if isinstance(document, (bytes, bytearray)):
        return len(document)
    if isinstance(document, str):
        return len(document.encode("utf-8", "surrogatepass"))
    return len(json.dumps(document, separators=(",", ":"), default=str).encode("utf-8"))


def kinesis_record_limit(record: dict[str, Any]) -> int:
    """What a record's data may take: 1 MiB less its partition key."""
    key = record.get("PartitionKey")
    return _KINESIS_RECORD_BYTES - (len(key.encode("utf-8")) if isinstance(key, str) else 0)


def _crosses_limit(before: int, after: int, limits: tuple[int, ...] = _MESSAGE_LIMITS) -> bool:
    """True when growing from `before` to `after` bytes passes one of `limits` it was within."""
    return any(before <= limit < after for limit in limits)


def _message_bytes(entry: dict[str, Any], body_key: str) -> int:
    """What SQS and SNS count of a message: its body and its message attributes."""
    body = entry.get(body_key)
    total = size(body) if isinstance(body, (str, bytes, bytearray)) else 0
    attributes = entry.get("MessageAttributes")
    if isinstance(attributes, dict):
        for name, value in attributes.items():
            total += len(str(name).encode("utf-8", "surrogatepass"))
            if isinstance(value, dict):
                for part in ("DataType", "StringValue", "BinaryValue"):
                    item = value.get(part)
                    if isinstance(item, str):
                        total += len(item.encode("utf-8", "surrogatepass"))
                    elif isinstance(item, (bytes, bytearray)):
                        total += len(item)
    return total


def sized_message(original: dict[str, Any], carried: dict[str, Any], body_key: str) -> dict[str, Any]:
    """`carried`, or `original`'s message attributes back when ours would pass a size limit."""
    if carried.get("MessageAttributes") is original.get("MessageAttributes"):
        return carried
    if not _crosses_limit(_message_bytes(original, body_key), _message_bytes(carried, body_key)):
        return carried
    stats.incr("carrier_skipped_size")
    return _own_attributes(original, carried)


def _own_attributes(original: dict[str, Any], carried: dict[str, Any]) -> dict[str, Any]:
    """`carried` with `original`'s message attributes (none when it had none)."""
    kept = dict(carried)
    if "MessageAttributes" in original:
        kept["MessageAttributes"] = original["MessageAttributes"]
    else:
        kept.pop("MessageAttributes", None)
    return kept


def sized_batch(entries: list[Any], carried: list[Any], body_key: str) -> list[Any]:
    """The batch with our attributes, or each entry's own back when they would pass a batch limit."""
    pairs = list(zip(entries, carried, strict=True))
    messages = [(e, c) for e, c in pairs if isinstance(e, dict) and isinstance(c, dict)]
    before = sum(_message_bytes(e, body_key) for e, _ in messages)
    after = sum(_message_bytes(c, body_key) for _, c in messages)
    if not _crosses_limit(before, after):
        return carried
    stats.incr("carrier_skipped_size")
    return [_own_attributes(e, c) if isinstance(e, dict) and isinstance(c, dict) else c for e, c in pairs]


def _event_entry_bytes(entry: object) -> int:
    """EventBridge's size of a ``PutEvents`` entry ("Calculating PutEvents event entry size")."""
    if not isinstance(entry, dict):
        return 0
    total = 14 if entry.get("Time") is not None else 0
    for key in ("Source", "DetailType", "Detail"):
        value = entry.get(key)
        if isinstance(value, str):
            total += len(value.encode("utf-8", "surrogatepass"))
    resources = entry.get("Resources")
    if isinstance(resources, list):
        total += sum(len(r.encode("utf-8", "surrogatepass")) for r in resources if isinstance(r, str))
    return total


def events_cross_limit(entries: list[Any], carried: list[Any]) -> bool:
    """True when the carriers would push a ``PutEvents`` request's entries past 256 KiB together."""
    before = sum(_event_entry_bytes(entry) for entry in entries)
    after = sum(_event_entry_bytes(entry) for entry in carried)
    return _crosses_limit(before, after, (_EVENTBRIDGE_ENTRY_BYTES,))


def _record_bytes(record: object) -> int:
    """What Kinesis counts of a record: its data blob and partition key."""
    if not isinstance(record, dict):
        return 0
    data, key = record.get("Data"), record.get("PartitionKey")
    total = size(data) if isinstance(data, (str, bytes, bytearray)) else 0
    return total + (len(key.encode("utf-8")) if isinstance(key, str) else 0)


def records_cross_limit(records: list[Any], carried: list[Any]) -> bool:
    """True when the carriers would push a ``PutRecords`` request past 5 MiB."""
    before = sum(_record_bytes(record) for record in records)
    after = sum(_record_bytes(record) for record in carried)
    return _crosses_limit(before, after, (_KINESIS_REQUEST_BYTES,))
