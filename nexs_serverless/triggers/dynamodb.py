"""DynamoDB Streams batches (``eventSource: aws:dynamodb``): attributes only.

A stream record carries no trace context (the item images are user data), so
the parent can only come from the platform (X-Ray). Attributes follow
OpenTelemetry's FaaS "datasource" conventions: ``faas.document.collection``
(the table), ``faas.document.operation`` (``insert``/``edit``/``delete`` when
every record agrees), ``faas.document.time``.
"""

from __future__ import annotations

import time

from ..model import SpanKind
from . import Trigger
from ._messages import common_arn_name

__all__ = ["describe"]

_OPERATIONS = {"INSERT": "insert", "MODIFY": "edit", "REMOVE": "delete"}


def describe(event: dict[str, object]) -> Trigger:
    """Datasource attributes of the batch."""
    records = [record for record in event["Records"] if isinstance(record, dict)]  # type: ignore[attr-defined]
    table = common_arn_name(records, after="/")
    operations = {_OPERATIONS.get(str(record.get("eventName")), "") for record in records}
    operation = operations.pop() if len(operations) == 1 else ""
    attrs: dict[str, object] = {"db.system.name": "aws.dynamodb"}
    if table:
        attrs["faas.document.collection"] = table
        attrs["aws.dynamodb.table_names"] = [table]
    if operation:
        attrs["faas.document.operation"] = operation
    change = records[0].get("dynamodb") if records else None
    created = change.get("ApproximateCreationDateTime") if isinstance(change, dict) else None
    if isinstance(created, (int, float)) and not isinstance(created, bool):
        try:
            attrs["faas.document.time"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(created))
        except (OverflowError, OSError, ValueError):
            pass  # beyond time_t (1e20, inf) or NaN: the attribute is left out
    if len(records) > 1:
        attrs["nexs.batch.record_count"] = len(records)
    name = f"{operation or 'process'} {table}" if table else None
    return Trigger("datasource", SpanKind.SERVER, name=name, attributes=attrs)
