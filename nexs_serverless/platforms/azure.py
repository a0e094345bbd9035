"""Azure Functions (Python worker, ``azure.functions``).

Calls: the worker passes bindings by parameter name, e.g.
``main(req: func.HttpRequest, context: func.Context)``; `split` finds the
trigger object (``HttpRequest``, ``QueueMessage``, ``ServiceBusMessage``,
``EventHubEvent``, or a list of messages/events, an Event Grid event,
``TimerRequest``, a blob's ``InputStream``) and the ``Context`` among
positional and keyword arguments, by shape (nothing is imported). A blob's
``InputStream`` is a ``datasource`` whose container and path are
``faas.document.collection`` and ``faas.document.name``. An Event Grid event
(``EventGridEvent``, or ``CloudEvent`` for the CloudEvents schema) is a
``pubsub`` message of ``messaging.system=eventgrid``, with its CloudEvents
attributes (the Event Grid schema's ``eventType``, ``topic`` and ``subject``
are the CloudEvents ``type``, ``source`` and ``subject``). An Event Hubs
event's ``PartitionContext`` metadata names the event hub
(``messaging.destination.name``), partition, consumer group and namespace.

Parent context (``NEXS_CONTEXT_PRECEDENCE``): ``headers`` are the request
headers, a message's application properties (``traceparent``, or Azure
SDKs' ``Diagnostic-Id``, a W3C ``traceparent`` or a legacy ``Request-Id``),
or a CloudEvent's Distributed Tracing extension (``traceparent``, which Azure
SDKs publish to Event Grid), read with ``OTEL_PROPAGATORS``; ``host`` is
``context.trace_context``, the W3C context the Functions host gives the
worker (its own invocation activity when Application Insights is on). A
batch of messages gives links to every message's context, and its parent
when they all share one trace, within the bounds SQS has (`read_batch`:
links for the first ``OTEL_SPAN_LINK_COUNT_LIMIT`` messages, the others
counted as dropped links; contexts read for at most 1,000).

Resource attributes: ``cloud.provider=azure``, ``cloud.platform=azure_functions``,
``cloud.region`` (``REGION_NAME``), ``faas.instance`` (``WEBSITE_INSTANCE_ID``),
``faas.max_memory`` (``WEBSITE_MEMORY_LIMIT_MB``), ``service.name``'s fallback
``faas.name`` (``WEBSITE_SITE_NAME``), ``cloud.account.id`` and
``cloud.resource_id`` from ``WEBSITE_OWNER_NAME``/``WEBSITE_RESOURCE_GROUP``. Per
invocation, ``faas.name`` is ``<app>/<function>`` as the conventions define for
Azure, ``cloud.resource_id`` the invoked function's own id
(``.../sites/<app>/functions/<function>``, as the FaaS span conventions ask;
the resource keeps the app's), and ``faas.invocation_id`` the context's
invocation id. The worker gives no deadline: `remaining_ms` is None.
"""

from __future__ import annotations

# Loaded on the first call on Azure (or with one of its objects), when all of these are needed:
# imported here, not in the functions, where each relative import costs microseconds per call.
from ..model import SpanKind
from ..propagation._carrier import Headers, get
from ..propagation.incoming import Incoming
from ..propagation.options import current
from ..propagation.tracecontext import parse_traceparent, parse_tracestate
from ..triggers import Trigger
from ..triggers._messages import (
    headers_incoming,
    host_and_port,
    json_object,
    link_limit,
    plain_attributes,
    read_batch,
)
from ..triggers._web import header_lines, http_trigger
from ._requests import is_request, request_trigger

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ..config import Settings

__all__ = ["describe", "detect", "invocation_attributes", "remaining_ms", "resource_attributes", "split"]

_MIB = 1024 * 1024


def detect(settings: Settings) -> bool:
    """True inside the Azure Functions host (``FUNCTIONS_WORKER_RUNTIME`` or an App Service site)."""
    return bool(
        settings.env("FUNCTIONS_WORKER_RUNTIME")
        or (settings.env("WEBSITE_SITE_NAME") and settings.env("FUNCTIONS_EXTENSION_VERSION"))
    )


def resource_attributes(settings: Settings) -> dict[str, object]:
    """``cloud.*`` and ``faas.*`` resource attributes from the App Service environment."""
    attrs: dict[str, object] = {"cloud.provider": "azure", "cloud.platform": "azure_functions"}
    site = settings.env("WEBSITE_SITE_NAME")
    found = {
        "faas.name": site,
        "cloud.region": settings.env("REGION_NAME"),
        "faas.instance": settings.env("WEBSITE_INSTANCE_ID"),
    }
    attrs.update({key: value for key, value in found.items() if value})
    memory = settings.env("WEBSITE_MEMORY_LIMIT_MB")
    if memory.isascii() and memory.isdigit():  # "²".isdigit(), and int("²") raises
        attrs["faas.max_memory"] = int(memory) * _MIB
    owner = settings.env("WEBSITE_OWNER_NAME")  # "<subscription id>+<resource group>-<region>webspace"
    subscription = owner.partition("+")[0] if "+" in owner else ""
    group = settings.env("WEBSITE_RESOURCE_GROUP")
    if subscription:
        attrs["cloud.account.id"] = subscription
        if group and site:
            attrs["cloud.resource_id"] = (
                f"/subscriptions/{subscription}/resourceGroups/{group}/providers/Microsoft.Web/sites/{site}"
            )
    return attrs


def _is_context(value: object) -> bool:
    return hasattr(value, "invocation_id") and hasattr(value, "function_name")


def split(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[object, object]:
    """The trigger object and the ``Context``, wherever the worker put them."""
    values = list(args) + list(kwargs.values())
    context = kwargs.get("context")
    if not _is_context(context):
        context = next((value for value in values if _is_context(value)), None)
    event = next((value for value in values if value is not context and _kind(value) != "other"), None)
    if event is None:
        event = next((value for value in values if value is not context), None)
    return event, context


def _kind(value: object) -> str:
    """By shape: a message kind (``servicebus``, ``eventhubs``, ``queue``, ``eventgrid``) or a trigger's."""
    if isinstance(value, list) and value:
        return _kind(value[0])
    if (
        hasattr(value, "method")
        and hasattr(value, "url")
        and (hasattr(value, "get_body") or is_request(value))
    ):
        return "http"  # func.HttpRequest, or a FastAPI (Starlette) request: the HTTP streams extension
    if hasattr(value, "application_properties") and hasattr(value, "message_id"):
        return "servicebus"
    if hasattr(value, "partition_key") and hasattr(value, "sequence_number") and hasattr(value, "get_body"):
        return "eventhubs"
    if hasattr(value, "dequeue_count") and hasattr(value, "pop_receipt"):
        return "queue"
    if hasattr(value, "past_due"):  # func.TimerRequest
        return "timer"
    if hasattr(value, "uri") and hasattr(value, "length") and hasattr(value, "read"):  # a blob's InputStream
        return "datasource"
    if (
        hasattr(value, "get_json")
        and hasattr(value, "id")
        and hasattr(value, "subject")
        and (hasattr(value, "event_type") or hasattr(value, "specversion"))
    ):
        return "eventgrid"  # func.EventGridEvent (Event Grid schema) or func.CloudEvent (CloudEvents schema)
    return "other"


def describe(event: object, context: object, settings: Settings) -> Trigger:
    """The trigger of a request or message(s), and its parent (message, host)."""
    kind = _kind(event)
    if kind == "http":
        request: Any = event
        headers, port = _without_forwarded_port(request.headers)
        if is_request(request):
            trigger = request_trigger(request, headers)
        else:
            trigger = http_trigger(str(request.method or ""), str(request.url or ""), headers)
        if port is not None and "client.address" in trigger.attributes:
            trigger.attributes["client.port"] = port
    elif kind == "datasource":
        trigger = Trigger(kind, SpanKind.SERVER, attributes=_blob_document(event))
    elif kind in ("other", "timer"):
        trigger = Trigger(kind, SpanKind.SERVER)
    else:
        trigger = _messages(kind, event if isinstance(event, list) else [event])
    trigger.offer("host", _host(context))
    if trigger.candidates:
        trigger.resolve(current(settings).precedence)
    return trigger


def _blob_document(blob: object) -> dict[str, object]:
    """``faas.document.collection`` (the container) and ``faas.document.name`` of a blob trigger.

    The worker names the blob by its path, container first
    (``orders/2026/o.json``). A blob trigger fires for new and overwritten
    blobs alike, so no ``faas.document.operation`` is claimed, and no
    ``faas.document.time`` (the worker gives no event time).
    """
    path = getattr(blob, "name", None)
    if not isinstance(path, str):
        return {}
    container, _, name = path.partition("/")
    attrs: dict[str, object] = {}
    if container:
        attrs["faas.document.collection"] = container
    if name:
        attrs["faas.document.name"] = name
    return attrs


def _without_forwarded_port(headers: object) -> tuple[object, int | None]:
    """The request's headers with the first ``X-Forwarded-For`` address alone, and its port.

    Azure's front end writes the client as ``203.0.113.7:51234`` (``[2001:db8::1]:51234``);
    OpenTelemetry's HTTP conventions want the address in ``client.address`` and the
    port, the client's behind the intermediaries, in ``client.port``. The headers
    are copied only when there is a port to take off.
    """
    forwarded = get(headers, "x-forwarded-for")
    if not forwarded:
        return headers, None
    first, comma, rest = forwarded.partition(",")
    first = first.strip()
    name, port = host_and_port(first)
    digits = port.isascii() and port.isdigit()
    if not name or not (digits or first.startswith("[")):
        return headers, None
    carrier = header_lines(headers)
    carrier["x-forwarded-for"] = name + comma + rest
    return carrier, int(port) if digits and int(port) <= 65535 else None


def _host(context: object) -> Incoming | None:
    """``context.trace_context`` (W3C ``traceparent``/``tracestate`` from the host)."""
    trace_context = getattr(context, "trace_context", None)
    if trace_context is None:
        return None
    state = getattr(trace_context, "trace_state", None)
    parsed = parse_tracestate(state) if isinstance(state, str) and state else ()
    found = parse_traceparent(getattr(trace_context, "trace_parent", None), parsed or ())
    return Incoming(found) if found is not None else None


def _properties(kind: str, message: Any, index: int) -> Headers:
    """A message's application properties (a CloudEvent's extensions) as a carrier.

    Application property names are case-sensitive (AMQP's, not HTTP headers):
    read as `plain_attributes` reads them, so ``Diagnostic-Id`` is found under
    ``diagnostic-id`` and an application's ``TraceParent`` does not replace a
    propagator's ``traceparent``.
    """
    properties: object = None
    if kind == "servicebus":
        properties = getattr(message, "application_properties", None) or getattr(
            message, "user_properties", None
        )
    elif kind == "eventhubs":
        metadata = _metadata(message)
        properties = metadata.get("Properties")
        many = metadata.get("PropertiesArray")
        if properties is None and isinstance(many, list) and index < len(many):
            properties = many[index]
    elif kind == "eventgrid":
        properties = getattr(message, "extension_attrs", None)  # CloudEvents schema only
    return plain_attributes(properties)


def _metadata(message: object) -> dict[str, object]:
    """The trigger metadata of an Event Hubs event (a dict in ``azure.functions``), else empty."""
    metadata = getattr(message, "metadata", None)
    return metadata if isinstance(metadata, dict) else {}


def _message_incoming(carrier: Headers) -> Incoming | None:
    incoming = headers_incoming(carrier)
    diagnostic = carrier.get("diagnostic-id")
    if (incoming is None or incoming.context is None) and diagnostic:
        from ..propagation.request_id import parse_header

        found = parse_traceparent(diagnostic) or parse_header(diagnostic)
        if found is not None:
            fallback = Incoming(found)
            fallback.baggage = incoming.baggage if incoming is not None else None
            return fallback
    return incoming


_SYSTEMS = {
    "servicebus": "servicebus",
    "eventhubs": "eventhubs",
    "queue": "azure_queue_storage",
    "eventgrid": "eventgrid",
}


def _message_id(message: object) -> str | None:
    """A message's id: Service Bus' ``message_id``, a queue message's or an event's ``id``."""
    found = getattr(message, "message_id", None) or getattr(message, "id", None)
    return found if isinstance(found, str) and found else None


def _messages(kind: str, messages: list[Any]) -> Trigger:
    """A ``pubsub`` trigger for one message or a batch; a batch is read as `read_batch` bounds it."""
    attrs: dict[str, object] = {
        "messaging.system": _SYSTEMS[kind],
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
    }
    if len(messages) > 1:
        attrs["messaging.batch.message_count"] = len(messages)
    first = messages[0]
    message_id = _message_id(first)
    if len(messages) == 1 and message_id is not None:
        attrs["messaging.message.id"] = message_id
    if kind == "queue" and isinstance(getattr(first, "dequeue_count", None), int):
        attrs["nexs.azure.queue.dequeue_count"] = first.dequeue_count
    if kind == "servicebus" and isinstance(getattr(first, "delivery_count", None), int):
        attrs["messaging.servicebus.message.delivery_count"] = first.delivery_count
    if kind == "eventhubs":
        _partition_attributes(first, attrs)
    elif kind == "eventgrid":
        _event_grid_attributes(first, attrs)
    destination = attrs.get("messaging.destination.name")
    name = f"process {destination}" if destination else "process"
    trigger = Trigger("pubsub", SpanKind.CONSUMER, name=name, attributes=attrs)

    def read(index: int) -> tuple[str, Incoming] | None:
        incoming = _message_incoming(_properties(kind, messages[index], index))
        return ("headers", incoming) if incoming is not None and incoming.context is not None else None

    batch = read_batch(range(len(messages)), read, link_limit())
    if batch.parent is not None:
        trigger.offer(*batch.parent)
    if len(messages) > 1:
        trigger.links = batch.links(lambda index: _message_id(messages[index]))
        trigger.dropped_links = batch.dropped
    return trigger


# An Event Hubs trigger's ``PartitionContext`` field -> attribute (OpenTelemetry's Event Hubs conventions).
_PARTITION_FIELDS = (
    ("EventHubName", "messaging.destination.name"),
    ("PartitionId", "messaging.destination.partition.id"),
    ("ConsumerGroup", "messaging.consumer.group.name"),
    ("FullyQualifiedNamespace", "server.address"),
)


def _partition_attributes(event: object, attrs: dict[str, object]) -> None:
    """The event hub, partition, consumer group and namespace the trigger read, from its metadata.

    The Functions host puts them in the trigger metadata's ``PartitionContext``
    (one for the whole batch: a batch comes from one partition).
    """
    partition = json_object(_metadata(event).get("PartitionContext"))
    if partition is None:
        return
    for field, key in _PARTITION_FIELDS:
        value = partition.get(field)
        if isinstance(value, str) and value:
            attrs[key] = value


def _event_grid_attributes(event: object, attrs: dict[str, object]) -> None:
    """CloudEvents attributes of an Event Grid event, either schema; the topic's name as destination.

    Event Grid maps its schema onto CloudEvents' (``eventType`` is ``type``,
    ``topic`` is ``source``). Only the Event Grid schema names the topic (a
    resource id, ``.../topics/orders``: its last segment is the destination);
    a CloudEvent's ``source`` is whatever the publisher wrote.
    """
    for key, names in (
        ("cloudevents.event_id", ("id",)),
        ("cloudevents.event_type", ("event_type", "type")),
        ("cloudevents.event_source", ("topic", "source")),
        ("cloudevents.event_subject", ("subject",)),
        ("cloudevents.event_spec_version", ("specversion",)),
    ):
        for name in names:
            value = getattr(event, name, None)
            if isinstance(value, str) and value:
                attrs[key] = value
                break
    topic = getattr(event, "topic", None)
    if isinstance(topic, str) and topic.strip("/"):
        attrs["messaging.destination.name"] = topic.strip("/").rpartition("/")[2]


def invocation_attributes(event: object, context: object, settings: Settings) -> dict[str, object]:
    """The resource attributes plus ``faas.invocation_id``, and the function's ``faas.name`` and id."""
    attrs = resource_attributes(settings)
    invocation_id = getattr(context, "invocation_id", None)
    if isinstance(invocation_id, str) and invocation_id:
        attrs["faas.invocation_id"] = invocation_id
    function = getattr(context, "function_name", None)
    if isinstance(function, str) and function:
        site = settings.env("WEBSITE_SITE_NAME")
        attrs["faas.name"] = f"{site}/{function}" if site else function
        if "cloud.resource_id" in attrs:
            attrs["cloud.resource_id"] = f"{attrs['cloud.resource_id']}/functions/{function}"
    return attrs


def remaining_ms(context: object) -> float | None:
    """None: the Functions worker gives the function no deadline to read."""
    return None
