"""Per-operation knowledge for AWS SDK calls: span name, attributes, and where the context goes.

Attributes follow OpenTelemetry's AWS SDK and messaging conventions
(``rpc.system=aws-api``, ``rpc.service``, ``rpc.method``, ``aws.request_id``,
``messaging.*``, ``aws.sqs.queue.url``, ``aws.sns.topic.arn``, ...). Where
the context travels, per operation (parameters are copied, never mutated):

- SQS ``SendMessage``/``SendMessageBatch``: the ``AWSTraceHeader`` system
  attribute (X-Ray format, which the Lambda conventions read and which AWS
  carries across services; it always goes), plus the ``OTEL_PROPAGATORS``
  headers as message attributes while they fit in SQS's limit of 10
  (``traceparent`` first); what does not fit is left out and counted
  (``propagation_skipped_attribute_limit``).
- SNS ``Publish``/``PublishBatch``: message attributes, the same way.
- EventBridge ``PutEvents``: each entry's ``TraceHeader`` (X-Ray), and a
  ``_nexs`` carrier in a JSON-object ``Detail``.
- Lambda ``Invoke``/``InvokeWithResponseStream``: ``ClientContext.custom``
  (base64 JSON, 3583 bytes at most), by `aws_client_context`, loaded only by
  these calls. The caller's own client context is parsed and written again, so
  it is left as it was (no context added, counted: ``carrier_skipped_inexact``)
  when that would change a value: a number a float cannot hold exactly
  (``1e400``, long decimals) or a key given twice.
- Step Functions ``StartExecution``/``StartSyncExecution``: ``traceHeader``
  (X-Ray), and a ``_nexs`` carrier in a JSON-object ``input``; not in the input
  of a ``StartExecution`` that names its execution: a standard workflow takes a
  second start with the same name and input as the same execution, and a
  carrier that differs on every call would turn that retry into
  ``ExecutionAlreadyExists``.
- Kinesis ``PutRecord``/``PutRecords``: a ``_nexs`` carrier in JSON-object
  ``Data``.

A carrier that would push a message, entry, record or request past a size
limit it was within is left out (``carrier_skipped_size``): `aws_limits`
counts each service's size its way.

A parameter of the wrong type (``MessageAttributes`` that is not a dict, a
``ClientContext`` that is not a string, ...) is left as it is, so botocore
rejects the call as it would without us, rather than ours replacing it.

Payload carriers follow ``NEXS_PAYLOAD_INJECTION`` (default true). A JSON
text gets the carrier inserted before its closing brace, every other byte as
the application wrote it: parsing and re-serialising would change its values
(``1e400`` would become ``Infinity``, which is not JSON; long decimals and big
numbers would lose digits). A payload that is not one JSON object is sent
unchanged.
"""

from __future__ import annotations

import json

from .. import _stats as stats
from ..model import SpanKind
from ..propagation import inject
from ..propagation.options import PAYLOAD_KEY, current

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from ..span import Span

__all__ = ["describe", "inject_context", "record_result"]

MAX_MESSAGE_ATTRIBUTES = 10
_SEND = {
    ("SQS", "SendMessage"),
    ("SQS", "SendMessageBatch"),
    ("SNS", "Publish"),
    ("SNS", "PublishBatch"),
    ("EventBridge", "PutEvents"),
    ("Kinesis", "PutRecord"),
    ("Kinesis", "PutRecords"),
}
# messaging.system: the conventions' well-known values for SQS and SNS; none exist for the others.
_SYSTEMS = {"SQS": "aws_sqs", "SNS": "aws.sns", "EventBridge": "aws_eventbridge", "Kinesis": "aws_kinesis"}
_PRIORITY = ("traceparent", "tracestate", "baggage")
_JSON_SPACE = " \t\n\r"  # RFC 8259 section 2: the only whitespace after a JSON text


def _tail(value: object, separator: str) -> str | None:
    """The last `separator`-separated part of a URL or ARN."""
    if not isinstance(value, str):
        return None
    return value.rstrip(separator).rsplit(separator, 1)[-1] or None


def describe(service: str, operation: str, params: dict[str, Any]) -> tuple[str, int, dict[str, Any]]:
    """Span name, kind and attributes for one call."""
    attrs: dict[str, Any] = {"rpc.system": "aws-api", "rpc.service": service, "rpc.method": operation}
    destination: str | None = None
    if service == "SQS":
        url = params.get("QueueUrl")
        if isinstance(url, str):
            attrs["aws.sqs.queue.url"] = url
            destination = _tail(url, "/")
    elif service == "SNS":
        arn = params.get("TopicArn") or params.get("TargetArn")
        if isinstance(arn, str):
            attrs["aws.sns.topic.arn"] = arn
            destination = _tail(arn, ":")
    elif service == "EventBridge":
        entries = params.get("Entries")
        first = entries[0] if isinstance(entries, list) and entries and isinstance(entries[0], dict) else {}
        bus = str(first.get("EventBusName") or "default")
        # A bus may be named by its ARN (arn:aws:events:<region>:<account>:event-bus/<name>).
        destination = (_tail(bus, "/") or bus) if bus.startswith("arn:") else bus
    elif service == "Kinesis":
        stream = params.get("StreamName") or _tail(params.get("StreamARN"), "/")
        if isinstance(stream, str):
            attrs["aws.kinesis.stream_name"] = destination = stream
    elif service == "Lambda" and operation in _INVOCATIONS:
        function = params.get("FunctionName")
        if isinstance(function, str):
            name, region = _lambda_function(function)
            attrs["faas.invoked_name"] = name
            attrs["faas.invoked_provider"] = "aws"
            if region:  # else the client's, which `botocore_hooks` adds
                attrs["faas.invoked_region"] = region
    elif service == "SFN":
        arn = params.get("stateMachineArn")
        if isinstance(arn, str):
            attrs["aws.step_functions.state_machine.arn"] = arn
    elif service == "DynamoDB":
        attrs["db.system"] = "dynamodb"
        tables = _dynamodb_tables(params)
        if tables:
            attrs["aws.dynamodb.table_names"] = tables
    elif service == "S3":
        for key, name in (("Bucket", "aws.s3.bucket"), ("Key", "aws.s3.key")):
            if isinstance(params.get(key), str):
                attrs[name] = params[key]
    if (service, operation) in _SEND:
        attrs["messaging.system"] = _SYSTEMS[service]
        attrs["messaging.operation.type"] = "send"
        attrs["messaging.operation.name"] = operation
        if destination:
            attrs["messaging.destination.name"] = destination
        batch = params.get("Entries") or params.get("PublishBatchRequestEntries") or params.get("Records")
        if isinstance(batch, list) and operation.endswith(("Batch", "PutEvents", "PutRecords")):
            attrs["messaging.batch.message_count"] = len(batch)
        return (f"send {destination}" if destination else "send"), SpanKind.PRODUCER, attrs
    return f"{service}.{operation}", SpanKind.CLIENT, attrs


def _lambda_function(value: str) -> tuple[str, str | None]:
    """The function's name and, from an ARN, its region.

    ``FunctionName`` may be a name, a partial ARN or an ARN, each with a
    version or alias after a colon (``charge:prod``).
    """
    parts = value.split(":")
    if parts[0] == "arn" and len(parts) >= 7:  # arn:aws:lambda:<region>:<account>:function:<name>[:<q>]
        return parts[6] or value, parts[3] or None
    if len(parts) >= 3 and parts[1] == "function":  # <account>:function:<name>[:<qualifier>]
        return parts[2] or value, None
    return parts[0] or value, None


def _headers() -> dict[str, str]:
    carrier: dict[str, str] = {}
    inject(carrier)
    return carrier


def _with_attributes(existing: object, headers: dict[str, str], typed: str) -> dict[str, Any] | None:
    """Message attributes plus the headers that fit the limit; None when nothing is added."""
    attributes = dict(existing) if isinstance(existing, dict) else {}
    names = {str(name).lower() for name in attributes}
    ordered = sorted(headers, key=lambda name: _PRIORITY.index(name) if name in _PRIORITY else len(_PRIORITY))
    added = False
    for name in ordered:
        if name.lower() in names:
            continue
        if len(attributes) >= MAX_MESSAGE_ATTRIBUTES:
            stats.incr("propagation_skipped_attribute_limit")
            continue
        attributes[name] = {typed: "String", "StringValue": headers[name]}
        added = True
    return attributes if added else None


def _payload(document: object, headers: dict[str, str], limit: int | None = None) -> object:
    """`document` (a JSON-object text, bytes or dict) with the ``_nexs`` carrier; else unchanged.

    `limit`: the service's size limit for it, in bytes: a document the carrier would push
    past it is sent as it was (counted: ``carrier_skipped_size``), the user's call untouched.
    """
    carried = _with_carrier(document, headers)
    if limit is not None and carried is not document:
        from .aws_limits import size

        if size(carried) > limit:
            stats.incr("carrier_skipped_size")
            return document
    return carried


def _with_carrier(document: object, headers: dict[str, str]) -> object:
    if not current().payload_injection:
        return document
    from ..triggers._messages import json_object

    parsed = json_object(document)
    if parsed is None or PAYLOAD_KEY in parsed:
        return document
    carrier = {name: value for name, value in headers.items() if name.lower() != "x-amzn-trace-id"}
    if isinstance(document, dict):
        return {**parsed, PAYLOAD_KEY: carrier}
    member = f"{json.dumps(PAYLOAD_KEY)}:{json.dumps(carrier, separators=(',', ':'))}"
    if parsed:
        member = "," + member
    if isinstance(document, str):
        end = len(document.rstrip(_JSON_SPACE)) - 1
        if document[end] != "}":
            return document
        return document[:end] + member + document[end:]
    if not isinstance(document, (bytes, bytearray)):
        return document
    data = bytes(document)
    end = len(data.rstrip(_JSON_SPACE.encode())) - 1
    if data[end : end + 1] != b"}":
        return document
    return data[:end] + member.encode("ascii") + data[end:]


def _dynamodb_tables(params: dict[str, Any]) -> list[str]:
    """The tables a call names: ``TableName``, a batch's ``RequestItems``, a transaction's items."""
    if isinstance(params.get("TableName"), str):
        return [params["TableName"]]
    items = params.get("RequestItems")
    if isinstance(items, dict):
        return sorted(name for name in items if isinstance(name, str))
    tables: set[str] = set()
    for item in params.get("TransactItems") or ():
        if isinstance(item, dict):
            for action in item.values():
                if isinstance(action, dict) and isinstance(action.get("TableName"), str):
                    tables.add(action["TableName"])
    return sorted(tables)


def _xray(headers: dict[str, str]) -> str | None:
    found = headers.get("X-Amzn-Trace-Id")
    if found is not None:
        return found
    from ..context import _current
    from ..propagation.xray import format_header

    span = _current.get()
    if span is None:
        return None
    return format_header(span.trace_id, span.span_id, span.trace_flags)


_INVOCATIONS = frozenset(("Invoke", "InvokeAsync", "InvokeWithResponseStream"))
# The invocations whose request takes a ClientContext (botocore's Lambda model; not InvokeAsync).
_CLIENT_CONTEXT = frozenset((("Lambda", "Invoke"), ("Lambda", "InvokeWithResponseStream")))


def _wrong_type(entry: dict[str, Any], key: str, expected: type) -> bool:
    """True when the caller gave `key` a value botocore will reject: it stays theirs to see fail."""
    return key in entry and not isinstance(entry[key], expected)


def _sqs_entry(entry: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    original = entry
    entry = dict(entry)
    if not _wrong_type(entry, "MessageAttributes", dict):
        rest = {name: value for name, value in headers.items() if name != "X-Amzn-Trace-Id"}
        attributes = _with_attributes(entry.get("MessageAttributes"), rest, "DataType")
        if attributes is not None:
            from .aws_limits import sized_message

            entry = sized_message(original, {**entry, "MessageAttributes": attributes}, "MessageBody")
    if _wrong_type(entry, "MessageSystemAttributes", dict):
        return entry
    system = dict(entry.get("MessageSystemAttributes") or {})
    xray = _xray(headers)
    if xray and "AWSTraceHeader" not in system:
        system["AWSTraceHeader"] = {"DataType": "String", "StringValue": xray}
        entry["MessageSystemAttributes"] = system
    return entry


def _sns_entry(entry: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    if _wrong_type(entry, "MessageAttributes", dict):
        return entry
    attributes = _with_attributes(entry.get("MessageAttributes"), headers, "DataType")
    if attributes is None:
        return entry
    from .aws_limits import sized_message

    return sized_message(entry, {**entry, "MessageAttributes": attributes}, "Message")


def _put_events(entries: list[Any], headers: dict[str, str]) -> list[Any]:
    """Entries with ``TraceHeader`` and ``_nexs``; no carriers if they would pass 256 KiB together."""
    xray = _xray(headers)
    carried: list[Any] = []
    for entry in entries:
        if isinstance(entry, dict):
            updated = dict(entry)
            if "Detail" in entry:  # a Detail made up here (None) fails botocore's validation
                updated["Detail"] = _with_carrier(entry["Detail"], headers)
            if xray and "TraceHeader" not in entry:  # not counted in the size
                updated["TraceHeader"] = xray
            carried.append(updated)
        else:
            carried.append(entry)
    from .aws_limits import events_cross_limit

    if events_cross_limit(entries, carried):
        stats.incr("carrier_skipped_size")
        for entry, updated in zip(entries, carried, strict=True):
            if isinstance(entry, dict) and "Detail" in entry:
                updated["Detail"] = entry["Detail"]
    return carried


def _put_records(records: list[Any], headers: dict[str, str]) -> list[Any]:
    """Records with ``_nexs`` in JSON data, within 1 MiB each and 5 MiB together."""
    from .aws_limits import kinesis_record_limit, records_cross_limit

    carried = [
        {**r, "Data": _payload(r["Data"], headers, kinesis_record_limit(r))}
        if isinstance(r, dict) and "Data" in r
        else r
        for r in records
    ]
    if records_cross_limit(records, carried):
        stats.incr("carrier_skipped_size")
        return records
    return carried


def inject_context(service: str, operation: str, params: dict[str, Any]) -> None:
    """Put the current span's context into `params` for this operation (see the module docstring)."""
    key = (service, operation)
    if key == ("SQS", "SendMessage"):
        params.update(_sqs_entry(params, _headers()))
    elif key == ("SQS", "SendMessageBatch") and isinstance(params.get("Entries"), list):
        params["Entries"] = _message_batch(params["Entries"], _sqs_entry, "MessageBody")
    elif key == ("SNS", "Publish"):
        params.update(_sns_entry(params, _headers()))
    elif key == ("SNS", "PublishBatch") and isinstance(params.get("PublishBatchRequestEntries"), list):
        entries = params["PublishBatchRequestEntries"]
        params["PublishBatchRequestEntries"] = _message_batch(entries, _sns_entry, "Message")
    elif key == ("EventBridge", "PutEvents") and isinstance(params.get("Entries"), list):
        params["Entries"] = _put_events(params["Entries"], _headers())
    elif key in _CLIENT_CONTEXT and not _wrong_type(params, "ClientContext", str):
        from .aws_client_context import client_context

        encoded = client_context(params.get("ClientContext"), _headers())
        if encoded is not None:
            params["ClientContext"] = encoded
    elif key in (("SFN", "StartExecution"), ("SFN", "StartSyncExecution")):
        headers = _headers()
        xray = _xray(headers)
        if xray and "traceHeader" not in params:
            params["traceHeader"] = xray
        # A named standard execution is idempotent on (name, input): see the module docstring.
        if "input" in params and not (operation == "StartExecution" and "name" in params):
            from .aws_limits import SFN_INPUT_BYTES

            params["input"] = _payload(params["input"], headers, SFN_INPUT_BYTES)
    elif key == ("Kinesis", "PutRecord") and "Data" in params:
        from .aws_limits import kinesis_record_limit

        params["Data"] = _payload(params["Data"], _headers(), kinesis_record_limit(params))
    elif key == ("Kinesis", "PutRecords") and isinstance(params.get("Records"), list):
        params["Records"] = _put_records(params["Records"], _headers())


def _message_batch(
    entries: list[Any], carry: Callable[[dict[str, Any], dict[str, str]], dict[str, Any]], body_key: str
) -> list[Any]:
    """A SQS or SNS batch with each entry's carriers, within the batch's size limits."""
    from .aws_limits import sized_batch

    headers = _headers()
    carried = [carry(e, headers) if isinstance(e, dict) else e for e in entries]
    return sized_batch(entries, carried, body_key)


def record_result(span: Span, result: object) -> None:
    """Response attributes: ``aws.request_id``, status code, and the message id of a single send."""
    if not isinstance(result, dict):
        return
    metadata = result.get("ResponseMetadata")
    if isinstance(metadata, dict):
        if isinstance(metadata.get("RequestId"), str):
            span.set_attribute("aws.request_id", metadata["RequestId"])
        if isinstance(metadata.get("HTTPStatusCode"), int):
            span.set_attribute("http.response.status_code", metadata["HTTPStatusCode"])
    message_id = result.get("MessageId")
    if isinstance(message_id, str):
        span.set_attribute("messaging.message.id", message_id)
