"""Helpers shared by the triggers: carriers out of attributes and payloads, batches, request fields.

A message's context may sit in several places; these turn each into a
`Headers` carrier for `propagation.extract_incoming`, or parse AWS's own
X-Ray attribute. Nothing here raises on odd input: a missing or malformed
part reads as "no context".

A batch (SQS and Kinesis: up to 10,000 records; Azure's Service Bus and
Event Hubs batches) is read within bounds (`read_batch`): contexts are
parsed for at most ``max(link limit, 1000)`` messages, and no more links
are built than the span keeps (``OTEL_SPAN_LINK_COUNT_LIMIT``, 128 by
default).
"""

from __future__ import annotations

import json

from ..model import Link
from ..propagation import CompositePropagator, composite, extract_incoming
from ..propagation._carrier import Headers, text
from ..propagation.options import PAYLOAD_KEY

# Loaded by `import nexs_serverless` already: imported here rather than in `link_limit` and
# `http_method`, where an import statement cost 2-3 us on every invocation.
from ..runtime import runtime

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence
    from typing import TypeVar

    from ..model import SpanContext
    from ..propagation.incoming import Incoming

    _Message = TypeVar("_Message")

__all__ = [
    "Batch",
    "arn_name",
    "client_address",
    "common_arn_name",
    "headers_incoming",
    "host_and_port",
    "http_method",
    "json_object",
    "link",
    "link_limit",
    "message_incoming",
    "payload_carrier",
    "plain_attributes",
    "port_number",
    "read_batch",
    "sns_attributes",
    "sqs_attributes",
]

# Messages of a batch whose contexts are parsed, at least (the link limit, when larger, wins): a
# batch may hold 10,000 records, and each parse costs microseconds.
MAX_MESSAGES_READ = 1000
_PAYLOAD_MARK = f'"{PAYLOAD_KEY}"'
_PAYLOAD_MARK_BYTES = _PAYLOAD_MARK.encode()


def arn_name(arn: object, *, after: str = ":") -> str | None:
    """The resource name at the end of an ARN (``...:queue-name``, ``table/orders/stream/...``)."""
    if not isinstance(arn, str) or not arn.startswith("arn:"):
        return None
    resource = arn.split(":", 5)[-1]
    if after == "/":
        parts = resource.split("/")
        return parts[1] if len(parts) > 1 and parts[1] else None
    return resource or None


def common_arn_name(records: Iterable[dict[str, object]], *, after: str = ":") -> str | None:
    """The resource name of the records' ``eventSourceARN`` when they all name the same, else None.

    The distinct ARNs are collected first (a batch of 10,000 records has one or
    two), and only those are split.
    """
    arns = {
        arn if isinstance(arn, str) else None for arn in (record.get("eventSourceARN") for record in records)
    }
    names = {arn_name(arn, after=after) for arn in arns}
    return names.pop() if len(names) == 1 else None


def sqs_attributes(attributes: object) -> Headers:
    """SQS ``messageAttributes`` (Lambda's ``{"stringValue": ..., "dataType": ...}``) as a carrier."""
    return _attributes(attributes, "stringValue", "StringValue")


def sns_attributes(attributes: object) -> Headers:
    """SNS ``MessageAttributes`` (``{"Type": "String", "Value": ...}``) as a carrier."""
    return _attributes(attributes, "Value", "StringValue")


def plain_attributes(attributes: object) -> Headers:
    """Attributes whose values are the text itself as a carrier, names read as case-sensitive.

    Google Pub/Sub message attributes and Azure messages' application
    properties: the same rule as SQS and SNS attributes (`_attributes`).
    """
    return _attributes(attributes, None, None)


def _attributes(attributes: object, field: str | None, other_field: str | None) -> Headers:
    """Message attributes as a carrier: the exact (lower-case) name first, another case only without it.

    Message attribute names are case-sensitive (they are not HTTP headers), so
    an application's own ``TraceParent`` is another attribute than the
    ``traceparent`` a propagator wrote, and must not replace it; it stands in
    only when there is no attribute of the exact name (a producer that wrote
    ``Traceparent``), the first such variant winning. A `field` of None
    means each value is the text itself (text or bytes).
    """
    out = Headers()
    if not isinstance(attributes, dict):
        return out
    for name, value in attributes.items():
        if not isinstance(name, str):
            continue
        if field is None:
            found = text(value)
        elif isinstance(value, dict):
            found = value.get(field, value.get(other_field))
        else:
            continue
        if isinstance(found, str):
            lower = name.lower()
            if lower == name or (lower not in attributes and lower not in out):
                out[lower] = found
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
    """The ``_nexs`` carrier our instrumentation adds to JSON payloads, if `payload` has one.

    Text without the key written out (``"_nexs"``, as our instrumentation writes
    it) is not parsed: most payloads carry none, and parsing each record of a
    batch cost more than everything else the trigger does.
    """
    if isinstance(payload, str):
        if _PAYLOAD_MARK not in payload:
            return None
    elif isinstance(payload, (bytes, bytearray)) and _PAYLOAD_MARK_BYTES not in payload:
        return None
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


def message_incoming(carrier: Headers | None) -> Incoming | None:
    """What a message's own carrier holds (attributes, a payload's ``_nexs``); None for none.

    As `headers_incoming`, but ``xray-lambda`` reads as ``xray`` here: its fallback
    to ``_X_AMZN_TRACE_ID`` is the invocation's context, never a message's (each
    message would otherwise be linked to the invocation's own X-Ray segment, and
    only when it happened to have some attribute). The platform offers that
    variable as the ``xray`` source of the invocation.
    """
    if not carrier:
        return None
    reader = _message_reader()
    if reader is None:
        return headers_incoming(carrier)
    try:
        incoming = reader.extract(carrier)
    except Exception:  # the composite's formats never raise; kept as `extract_incoming` keeps it
        return None
    if incoming.context is None and not incoming.baggage:
        return None
    return incoming


# (the configured composite, the one `message_incoming` reads with, or None: the same); swapped whole.
_readers: list[tuple[object, CompositePropagator | None]] = [(None, None)]


def _message_reader() -> CompositePropagator | None:
    """The configured formats with ``xray-lambda`` as ``xray``; None when that changes nothing."""
    configured = composite()
    cached, reader = _readers[0]
    if cached is configured:
        return reader
    names = configured.names
    if "xray-lambda" in names:
        # At xray-lambda's place (its order matters: a later format's context wins); a plain
        # "xray" listed as well would then be a repeat.
        reader = CompositePropagator(
            tuple("xray" if name == "xray-lambda" else name for name in names if name != "xray")
        )
    else:
        reader = None
    _readers[0] = (configured, reader)
    return reader


class Batch:
    """What `read_batch` learned from a batch's messages.

    Attributes:
        found: ``(index, source, incoming)`` of the first messages with a context,
            no more than the links wanted; ``index`` is the record's position.
        parent: ``(source, incoming)`` of the first message when every message of
            the batch was read and all belong to one trace, else None.
        dropped: messages read whose context found no room among the links.
    """

    __slots__ = ("dropped", "found", "parent")

    def __init__(self) -> None:
        self.found: list[tuple[int, str, Incoming]] = []
        self.parent: tuple[str, Incoming] | None = None
        self.dropped = 0

    def links(self, id_of: Callable[[int], object]) -> list[Link]:
        """A link per context found, carrying the message id `id_of(index)` gives."""
        return [link(incoming.context, id_of(index)) for index, _, incoming in self.found if incoming.context]


def link_limit() -> int:
    """The links a span keeps (``OTEL_SPAN_LINK_COUNT_LIMIT``)."""
    limit = runtime.settings.limits.link_count
    return limit if type(limit) is int and limit > 0 else 0


def read_batch(
    records: Sequence[_Message],
    read: Callable[[_Message], tuple[str, Incoming] | None],
    wanted: int,
) -> Batch:
    """Each message's context (`read` gives it, with its source), within bounds.

    The work is bounded: at most ``max(wanted, MAX_MESSAGES_READ)`` messages are
    read, and reading stops as soon as nothing more can be learned (the links
    wanted are found and the batch already spans two traces). The parent is
    claimed only for a batch read in full: a message not read could belong to
    another trace.
    """
    batch = Batch()
    budget = max(wanted, MAX_MESSAGES_READ)
    found = batch.found
    first: tuple[str, Incoming] | None = None
    first_trace = 0
    one_trace = len(records) <= budget
    for index, record in enumerate(records):
        if index >= budget or (not one_trace and len(found) >= wanted):
            # Not read: each would have been a link (most messages carry a context), so each
            # counts as one dropped, as the docs promise, rather than vanishing from the count.
            batch.dropped += len(records) - index
            break
        picked = read(record)
        if picked is None or picked[1].context is None:
            continue
        trace_id = picked[1].context.trace_id
        if first is None:
            first = picked
            first_trace = trace_id
        elif trace_id != first_trace:
            one_trace = False
        if len(found) < wanted:
            found.append((index, picked[0], picked[1]))
        else:
            batch.dropped += 1
    if one_trace:
        batch.parent = first
    return batch


def link(context: SpanContext, message_id: object) -> Link:
    """A link to a message's context, carrying its id."""
    if isinstance(message_id, str) and message_id:
        return Link(context, {"messaging.message.id": message_id})
    return Link(context)


def host_and_port(host: str) -> tuple[str, str]:
    """``host[:port]`` split; an IPv6 literal comes bracketed (RFC 3986) and leaves without brackets."""
    if host.startswith("["):
        name, _, rest = host[1:].partition("]")
        return name, rest[1:] if rest.startswith(":") else ""
    if host.count(":") == 1:  # more than one colon: an unbracketed IPv6 address, no port to split off
        name, _, port = host.rpartition(":")
        return name, port
    return host, ""


def port_number(port: str) -> int | None:
    """A port as `host_and_port` splits it off: ASCII digits up to 65535, else None.

    ``str.isdigit`` also takes ``"²"`` and other Unicode digits, which ``int``
    refuses: a ``Host`` header holding one raised, and the invocation went
    untraced.
    """
    if port.isascii() and port.isdigit():
        number = int(port)
        if number <= 65535:
            return number
    return None


def client_address(forwarded_for: str | None) -> str | None:
    """The client a request came from, by ``X-Forwarded-For``: its first address (the original client).

    Proxies append what they saw, so the first entry is the client behind all of
    them (OpenTelemetry's HTTP conventions, ``client.address``); it is what the
    client claims, as the conventions accept.
    """
    if not forwarded_for:
        return None
    first = forwarded_for.split(",", 1)[0].strip()
    # Some proxies write the client's port too (Azure: ``203.0.113.7:51234``, ``[2001:db8::1]:443``):
    # ``client.address`` is the address alone.
    if first.startswith("["):
        first = first[1:].partition("]")[0]
    elif first.count(":") == 1:
        first = first.partition(":")[0]
    return first or None


# OpenTelemetry's known methods (``http.request.method``): RFC 9110's, PATCH and QUERY; the same
# list as the outgoing calls' (`instrumentation._client.DEFAULT_KNOWN_METHODS`), which also reads
# ``OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS`` (loaded only when that is set).
_METHODS = frozenset(
    ("CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "QUERY", "TRACE")
)
_KNOWN_METHODS_VARIABLE = "OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS"


def http_method(attrs: dict[str, object], method: str) -> str:
    """Set ``http.request.method`` (and ``_original``) for `method`; returns the verb of the span name.

    Methods are case-sensitive (RFC 9110 section 9.1): one outside the known
    list (``OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS`` replaces it) is
    ``_OTHER``, the one sent kept in ``http.request.method_original``, and the
    span name says ``HTTP``, as OpenTelemetry's HTTP conventions ask.
    """
    settings = runtime.settings
    known = _METHODS
    if _KNOWN_METHODS_VARIABLE in settings.environ:
        from ..instrumentation._client import known_methods

        known = known_methods(settings)
    if method in known:
        attrs["http.request.method"] = method
        return method
    attrs["http.request.method"] = "_OTHER"
    if method:
        attrs["http.request.method_original"] = method
    return "HTTP"
