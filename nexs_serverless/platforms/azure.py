"""Azure Functions (Python worker, ``azure.functions``).

Calls: the worker passes bindings by parameter name, e.g.
``main(req: func.HttpRequest, context: func.Context)``; `split` finds the
trigger object (``HttpRequest``, ``QueueMessage``, ``ServiceBusMessage``,
``EventHubEvent``, or a list of messages/events, ``TimerRequest``, a blob's
``InputStream``) and the ``Context`` among positional and keyword arguments,
by shape (nothing is imported). A blob's ``InputStream`` is a ``datasource``
whose container and path are ``faas.document.collection`` and ``faas.document.name``.

Parent context (``NEXS_CONTEXT_PRECEDENCE``): ``headers`` are the request
headers, or a message's application properties (``traceparent``, or Azure
SDKs' ``Diagnostic-Id``, a W3C ``traceparent`` or a legacy ``Request-Id``),
read with ``OTEL_PROPAGATORS``; ``host`` is ``context.trace_context``, the
W3C context the Functions host gives the worker (its own invocation activity
when Application Insights is on). A batch of messages gives links to every
message's context, and its parent when they all share one trace, as for SQS.

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
from ..propagation._carrier import Headers, get, headers_from
from ..propagation.incoming import Incoming
from ..propagation.options import current
from ..propagation.tracecontext import parse_traceparent, parse_tracestate
from ..triggers import Trigger
from ..triggers._messages import batch_parent, headers_incoming, host_and_port, link
from ..triggers._web import http_trigger
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
    """By shape: ``servicebus``, ``eventhubs``, ``queue``, or ``http``/``timer``/``datasource``/``other``."""
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
    carrier = headers_from(headers)
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
    """A message's application properties as a carrier (``Diagnostic-Id`` read as a context)."""
    properties: object = None
    if kind == "servicebus":
        properties = getattr(message, "application_properties", None) or getattr(
            message, "user_properties", None
        )
    elif kind == "eventhubs":
        metadata = getattr(message, "metadata", None) or {}
        properties = metadata.get("Properties")
        many = metadata.get("PropertiesArray")
        if properties is None and isinstance(many, list) and index < len(many):
            properties = many[index]
    return headers_from(properties)


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


_SYSTEMS = {"servicebus": "servicebus", "eventhubs": "eventhubs", "queue": "azure_queue_storage"}


def _messages(kind: str, messages: list[Any]) -> Trigger:
    attrs: dict[str, object] = {
        "messaging.system": _SYSTEMS[kind],
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
    }
    if len(messages) > 1:
        attrs["messaging.batch.message_count"] = len(messages)
    first = messages[0]
    message_id = getattr(first, "message_id", None) or getattr(first, "id", None)
    if len(messages) == 1 and isinstance(message_id, str):
        attrs["messaging.message.id"] = message_id
    if kind == "queue" and isinstance(getattr(first, "dequeue_count", None), int):
        attrs["nexs.azure.queue.dequeue_count"] = first.dequeue_count
    if kind == "servicebus" and isinstance(getattr(first, "delivery_count", None), int):
        attrs["messaging.servicebus.message.delivery_count"] = first.delivery_count
    trigger = Trigger("pubsub", SpanKind.CONSUMER, name="process", attributes=attrs)
    found: list[tuple[Incoming, object]] = []
    for index, message in enumerate(messages):
        incoming = _message_incoming(_properties(kind, message, index))
        if incoming is not None and incoming.context is not None:
            found.append((incoming, getattr(message, "message_id", None)))
    if found and batch_parent(incoming.context for incoming, _ in found if incoming.context) is not None:
        trigger.offer("headers", found[0][0])
    if len(messages) > 1:
        trigger.links = [link(incoming.context, mid) for incoming, mid in found if incoming.context]
    return trigger


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
