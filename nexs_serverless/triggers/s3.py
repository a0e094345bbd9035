"""S3 event notifications (``eventSource: aws:s3``): attributes only.

Datasource attributes (``faas.document.collection`` = bucket,
``faas.document.name`` = key, ``faas.document.operation``,
``faas.document.time``) and ``aws.s3.bucket``/``aws.s3.key``. Keys arrive
URL-encoded (spaces as ``+``) and are decoded. An S3 notification carries no
trace context; the parent can only come from the platform (X-Ray).
"""

from __future__ import annotations

from ..model import SpanKind
from . import Trigger

__all__ = ["describe"]


def _operation(event_name: str) -> str:
    if event_name.startswith("ObjectCreated"):
        return "insert"
    if event_name.startswith(("ObjectRemoved", "LifecycleExpiration")):
        return "delete"
    return "edit"


def _dict(value: object) -> dict[str, object]:
    return value if isinstance(value, dict) else {}


def describe(event: dict[str, object]) -> Trigger:
    """Datasource attributes of the first record (and the record count)."""
    from urllib.parse import unquote_plus

    records = [record for record in event["Records"] if isinstance(record, dict)]  # type: ignore[attr-defined]
    record = records[0]
    detail = _dict(record.get("s3"))
    bucket = _dict(detail.get("bucket")).get("name")
    key = _dict(detail.get("object")).get("key")
    operation = _operation(str(record.get("eventName") or ""))
    attrs: dict[str, object] = {"faas.document.operation": operation}
    if isinstance(bucket, str):
        attrs["faas.document.collection"] = bucket
        attrs["aws.s3.bucket"] = bucket
    if isinstance(key, str):
        attrs["faas.document.name"] = attrs["aws.s3.key"] = unquote_plus(key)
    if isinstance(record.get("eventTime"), str):
        attrs["faas.document.time"] = record["eventTime"]
    if len(records) > 1:
        attrs["nexs.batch.record_count"] = len(records)
    name = f"{operation} {bucket}" if isinstance(bucket, str) else None
    return Trigger("datasource", SpanKind.SERVER, name=name, attributes=attrs)
