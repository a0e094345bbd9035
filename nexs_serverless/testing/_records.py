"""Event factories for message and data-source triggers: SQS, SNS, EventBridge, Kinesis, DynamoDB, S3.

Part of `nexs_serverless.testing.events` (import them from there).
"""

from __future__ import annotations

import base64
import hashlib
import numbers
import uuid
from urllib.parse import quote_plus

from ._fixtures import body_text, clone, load, payload_bytes
from ._fixtures import finish as _finish

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from typing import Any

    Event = dict[str, Any]

__all__ = ["dynamodb", "eventbridge", "kinesis", "s3", "sns", "sqs"]


def _arn(service: str, record: Mapping[str, Any], resource: str) -> str:
    region = record.get("awsRegion") or "us-east-1"
    return f"arn:aws:{service}:{region}:123456789012:{resource}"


def sqs(
    *,
    messages: Iterable[object] | None = None,
    queue: str | None = None,
    trace_headers: bool = True,
    overrides: Mapping[str, Any] | None = None,
) -> Event:
    """An SQS batch as Lambda's event source mapping delivers it.

    Args:
        messages: one body per record (dicts and lists are JSON-encoded); the
            records copy the sample's, each with a fresh ``messageId``.
        queue: queue name, in every record's ``eventSourceARN``.
        trace_headers: keep the ``AWSTraceHeader`` attribute and the
            ``traceparent`` message attribute the sample carries (False: a
            message from a producer that does not trace).
        overrides: merged into the event last.
    """
    event = load("sqs")
    templates: list[Event] = event["Records"]
    if messages is not None:
        records = []
        for index, message in enumerate(messages):
            record = clone(templates[index % len(templates)])
            record["messageId"] = str(uuid.uuid4())
            record["body"] = body_text(message) or ""
            records.append(record)
        event["Records"] = records
    for record in event["Records"]:
        if queue:
            record["eventSourceARN"] = _arn("sqs", record, queue)
        if not trace_headers:
            record["attributes"].pop("AWSTraceHeader", None)
            record["messageAttributes"].pop("traceparent", None)
        # The checksums SQS computed, so a handler that verifies them passes: of the body as text,
        # and of the message attributes (none: no such field).
        record["md5OfBody"] = hashlib.md5(record["body"].encode(), usedforsecurity=False).hexdigest()
        record.pop("md5OfMessageAttributes", None)
        if record["messageAttributes"]:
            record["md5OfMessageAttributes"] = _attributes_md5(record["messageAttributes"])
    return _finish(event, overrides)


def _attributes_md5(attributes: Mapping[str, Any]) -> str:
    """SQS's MD5 of message attributes: for each by name, its name, type and value, length-prefixed.

    String and Number values are tagged 1 and their UTF-8 bytes hashed; Binary values (base64 in
    the event) are tagged 2 and their bytes hashed.
    """
    digest = hashlib.md5(usedforsecurity=False)

    def put(data: bytes) -> None:
        digest.update(len(data).to_bytes(4, "big") + data)

    for name in sorted(attributes):
        attribute = attributes[name]
        put(name.encode())
        put(str(attribute.get("dataType", "String")).encode())
        if attribute.get("stringValue") is not None:
            digest.update(b"\x01")
            put(str(attribute["stringValue"]).encode())
        elif attribute.get("binaryValue") is not None:
            digest.update(b"\x02")
            put(base64.b64decode(attribute["binaryValue"]))
    return digest.hexdigest()


def sns(
    *,
    messages: Iterable[object] | None = None,
    topic: str | None = None,
    subject: str | None = None,
    attributes: Mapping[str, str | None] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Event:
    """An SNS notification event (one record per message).

    Args:
        messages: one message per record (dicts and lists are JSON-encoded).
        topic: topic name, in ``TopicArn``.
        subject: the ``Subject``.
        attributes: string message attributes merged over the sample's (None removes one).
        overrides: merged into the event last.
    """
    event = load("sns")
    template = event["Records"][0]
    if messages is not None:
        event["Records"] = []
        for message in messages:
            record = clone(template)
            record["Sns"]["MessageId"] = str(uuid.uuid4())
            record["Sns"]["Message"] = body_text(message) or ""
            event["Records"].append(record)
    for record in event["Records"]:
        notification = record["Sns"]
        if topic:
            notification["TopicArn"] = _arn("sns", {}, topic)
            record["EventSubscriptionArn"] = f"{notification['TopicArn']}:{uuid.uuid4()}"
            base = notification["UnsubscribeUrl"].split("SubscriptionArn=", 1)[0]
            notification["UnsubscribeUrl"] = f"{base}SubscriptionArn={record['EventSubscriptionArn']}"
        if subject is not None:
            notification["Subject"] = subject
        for key, value in (attributes or {}).items():
            if value is None:
                notification["MessageAttributes"].pop(key, None)
            else:
                notification["MessageAttributes"][key] = {"Type": "String", "Value": value}
    return _finish(event, overrides)


def eventbridge(
    *,
    detail: Mapping[str, Any] | None = None,
    detail_type: str | None = None,
    source: str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Event:
    """An EventBridge event.

    Args:
        detail: the event's ``detail`` (replaces the sample's).
        detail_type: ``detail-type``.
        source: ``source``.
        overrides: merged into the event last.
    """
    event = load("eventbridge")
    event["id"] = str(uuid.uuid4())
    if detail is not None:
        event["detail"] = dict(detail)
    if detail_type:
        event["detail-type"] = detail_type
    if source:
        event["source"] = source
    return _finish(event, overrides)


def kinesis(
    *,
    records: Iterable[object] | None = None,
    partition_key: str | None = None,
    stream: str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Event:
    """A Kinesis Data Streams batch.

    Args:
        records: one payload per record (bytes, text, or JSON-encoded dicts);
            base64-encoded into ``kinesis.data`` as Lambda delivers it.
        partition_key: every record's partition key.
        stream: stream name, in ``eventSourceARN``.
        overrides: merged into the event last.
    """
    event = load("kinesis")
    template = event["Records"][0]
    if records is not None:
        event["Records"] = []
        for index, payload in enumerate(records):
            record = clone(template)
            record["kinesis"]["data"] = base64.b64encode(payload_bytes(payload)).decode("ascii")
            sequence = str(int(record["kinesis"]["sequenceNumber"]) + index)
            record["kinesis"]["sequenceNumber"] = sequence
            record["eventID"] = f"shardId-000000000006:{sequence}"
            event["Records"].append(record)
    for record in event["Records"]:
        if partition_key:
            record["kinesis"]["partitionKey"] = partition_key
        if stream:
            record["eventSourceARN"] = _arn("kinesis", record, f"stream/{stream}")
    return _finish(event, overrides)


def _attribute_value(value: object) -> dict[str, Any]:
    """A plain value in DynamoDB's typed JSON (``{"S": "x"}``, ``{"N": "1"}``, ``{"SS": [...]}``, ...).

    Numbers include `decimal.Decimal` (what boto3 reads them as); a set becomes a string, number or
    binary set by what it holds.
    """
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, numbers.Number):
        return {"N": str(value)}
    if isinstance(value, (bytes, bytearray)):
        return {"B": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, dict):
        return {"M": {str(k): _attribute_value(v) for k, v in value.items()}}
    if isinstance(value, (list, tuple)):
        return {"L": [_attribute_value(item) for item in value]}
    if isinstance(value, (set, frozenset)):
        typed = [_attribute_value(item) for item in value]
        kinds = {next(iter(item)) for item in typed}
        if len(kinds) == 1 and kinds <= {"S", "N", "B"}:
            kind = kinds.pop()
            return {kind + "S": sorted(item[kind] for item in typed)}
        raise TypeError(f"a DynamoDB set holds strings, numbers or bytes of one kind, got {value!r}")
    return {"S": str(value)}


def _image(values: Mapping[str, object]) -> dict[str, Any]:
    return {str(key): _attribute_value(value) for key, value in values.items()}


def dynamodb(
    *,
    event_name: str | None = None,
    keys: Mapping[str, object] | None = None,
    new_image: Mapping[str, object] | None = None,
    old_image: Mapping[str, object] | None = None,
    table: str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Event:
    """A DynamoDB Streams record; plain values are converted to DynamoDB's typed JSON.

    Args:
        event_name: ``INSERT``, ``MODIFY`` or ``REMOVE`` (``REMOVE`` drops the new image).
        keys: the item's key attributes.
        new_image: the item after the change.
        old_image: the item before the change.
        table: table name, in ``eventSourceARN``.
        overrides: merged into the event last.
    """
    event = load("dynamodb")
    record = event["Records"][0]
    change = record["dynamodb"]
    if event_name:
        record["eventName"] = event_name.upper()
        if record["eventName"] == "REMOVE":
            change["OldImage"] = change.pop("NewImage", {})
    if keys is not None:
        change["Keys"] = _image(keys)
    if new_image is not None:
        change["NewImage"] = _image(new_image)
    if old_image is not None:
        change["OldImage"] = _image(old_image)
    if table:
        record["eventSourceARN"] = _arn("dynamodb", record, f"table/{table}/stream/2026-11-28T10:00:00.000")
    return _finish(event, overrides)


def s3(
    *,
    bucket: str | None = None,
    key: str | None = None,
    size: int | None = None,
    event_name: str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Event:
    """An S3 event notification.

    Args:
        bucket: bucket name (and ARN).
        key: object key as stored; the record carries it URL-encoded as S3 sends it (``quote_plus``,
            ``/`` kept: ``my file+v1.csv`` is ``my+file%2Bv1.csv``), which the tracer decodes.
        size: object size in bytes.
        event_name: such as ``ObjectCreated:Put`` or ``ObjectRemoved:Delete`` (an ``ObjectRemoved``
            record has no ``size`` or ``eTag``, as S3 sends it, unless `size` is given).
        overrides: merged into the event last.
    """
    event = load("s3")
    record = event["Records"][0]
    if bucket:
        record["s3"]["bucket"]["name"] = bucket
        record["s3"]["bucket"]["arn"] = f"arn:aws:s3:::{bucket}"
    if key:
        record["s3"]["object"]["key"] = quote_plus(key, safe="/")
    if event_name:
        record["eventName"] = event_name
        if event_name.startswith("ObjectRemoved:"):  # a removed object has no size or ETag in the record
            record["s3"]["object"].pop("size", None)
            record["s3"]["object"].pop("eTag", None)
    if size is not None:
        record["s3"]["object"]["size"] = size
    return _finish(event, overrides)
