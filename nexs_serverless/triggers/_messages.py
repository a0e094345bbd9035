"""Helpers shared by the message triggers: carriers out of attributes and payloads, batch parents.

A message's context may sit in several places; these turn each into a
`Headers` carrier for `propagation.extract_incoming`, or parse AWS's own
X-Ray attribute. Nothing here raises on odd input: a missing or malformed
part reads as "no context".
"""

from __future__ import annotations

import json

from ..model import Link
from ..propagation import extract_incoming
from ..propagation._carrier import Headers
from ..propagation.options import PAYLOAD_KEY

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

    from ..model import SpanContext
    from ..propagation.incoming import Incoming

__all__ = [
    "arn_name",
    "batch_parent",
    "choose",
    "json_object",
    "link",
    "payload_carrier",
    "sns_attributes",
    "sqs_attributes",
]


def arn_name(arn: object, *, after: str = ":") -> str | None:
    """The resource name at the end of an ARN (``...:queue-name``, ``table/orders/stream/...``)."""
    if not isinstance(arn, str) or not arn.startswith("arn:"):
        return None
    resource = arn.split(":", 5)[-1]
    if after == "/":
        parts = resource.split("/")
        return parts[1] if len(parts) > 1 and parts[1] else None
    return resource or None


def sqs_attributes(attributes: object) -> Headers:
    """SQS ``messageAttributes`` (Lambda's ``{"stringValue": ..., "dataType": ...}``) as a carrier."""
    return _attributes(attributes, "stringValue", "StringValue")


def sns_attributes(attributes: object) -> Headers:
    """SNS ``MessageAttributes`` (``{"Type": "String", "Value": ...}``) as a carrier."""
    return _attributes(attributes, "Value", "StringValue")


def _attributes(attributes: object, field: str, other_field: str) -> Headers:
    """Message attributes as a carrier: the exact (lower-case) name first, another case only without it.

    Message attribute names are case-sensitive (they are not HTTP headers), so
    an application's own ``TraceParent`` is another attribute than the
    ``traceparent`` a propagator wrote, and must not replace it; it stands in
    only when there is no attribute of the exact name (a producer that wrote
    ``Traceparent``), the first such variant winning.
    """
    out = Headers()
    if not isinstance(attributes, dict):
        return out
    for name, value in attributes.items():
        if isinstance(name, str) and isinstance(value, dict):
            text = value.get(field, value.get(other_field))
            if isinstance(text, str):
                lower = name.lower()
                if lower == name or (lower not in attributes and lower not in out):
                    out[lower] = text
    return out


def json_object(payload: object) -> dict[str, object] | None:
    """`payload` as a dict: a dict itself, or text/bytes holding a JSON object; else None."""
    if isinstance(payload, dict):
        return payload
    if isinstance(payload, (bytes, bytearray)):
        if payload.lstrip()[:1] != b"{":
            return None
        try:
            payload = bytes(payload).decode("utf-8")
        except UnicodeDecodeError:
            return None
    if not isinstance(payload, str) or not payload.lstrip().startswith("{"):
        return None
    try:
        parsed = json.loads(payload)
    except Exception:  # ValueError, and RecursionError for deep nesting: no context, never a failure
        return None
    return parsed if isinstance(parsed, dict) else None


def payload_carrier(payload: object) -> Headers | None:
    """The ``_nexs`` carrier our instrumentation adds to JSON payloads, if `payload` has one."""
    document = json_object(payload)
    if document is None:
        return None
    carrier = document.get(PAYLOAD_KEY)
    if not isinstance(carrier, dict):
        return None
    return Headers({str(k).lower(): v for k, v in carrier.items() if isinstance(v, str)})


def headers_incoming(carrier: Headers | None) -> Incoming | None:
    """What `carrier` holds, read with ``OTEL_PROPAGATORS``; None for an empty carrier."""
    if not carrier:
        return None
    incoming = extract_incoming(carrier)
    if incoming.context is None and not incoming.baggage:
        return None
    return incoming


def choose(found: dict[str, Incoming], precedence: tuple[str, ...]) -> tuple[str, Incoming] | None:
    """The first source in `precedence` that found a context, with what it found."""
    for source in precedence:
        incoming = found.get(source)
        if incoming is not None and incoming.context is not None:
            return source, incoming
    return None


def batch_parent(contexts: Iterable[SpanContext]) -> SpanContext | None:
    """The first context, when every message of the batch belongs to the same trace.

    One request fanned into a batch (or a batch of one) then continues as one
    trace; messages from several traces are only linked.
    """
    first: SpanContext | None = None
    for context in contexts:
        if first is None:
            first = context
        elif context.trace_id != first.trace_id:
            return None
    return first


def link(context: SpanContext, message_id: object) -> Link:
    """A link to a message's context, carrying its id."""
    if isinstance(message_id, str) and message_id:
        return Link(context, {"messaging.message.id": message_id})
    return Link(context)
