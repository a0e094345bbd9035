"""Google Cloud Functions / Cloud Run functions (``functions-framework``).

Calls: an HTTP function receives a Flask request (a Starlette one under
``functions_framework.aio``), a CloudEvent function a ``CloudEvent`` (Pub/Sub
push through Eventarc: the message with its attributes in ``data``), a
legacy background function ``(data, context)``; a decorated method gets
``self`` first, so `split` finds them by shape, not by position.

A Pub/Sub message's ordering key, when it was published with one, is
``messaging.gcp_pubsub.message.ordering_key``.

Parent context (``NEXS_CONTEXT_PRECEDENCE``): ``headers`` are the request
headers, or for Pub/Sub the message attributes (OpenTelemetry SDKs write
``traceparent``; Google's client libraries ``googclient_traceparent``, used
only when there is no ``traceparent``, the name the publisher's own
propagator chose) over the CloudEvent's Distributed Tracing extension
(``traceparent``), read with
``OTEL_PROPAGATORS``; ``host`` is ``X-Cloud-Trace-Context``, which Google's
front end sets on every request, used when no configured format found one.

Resource attributes follow OpenTelemetry's cloud/FaaS conventions:
``cloud.provider=gcp``, ``cloud.platform`` ``gcp_cloud_functions`` (with
``FUNCTION_TARGET``, or 1st gen's ``FUNCTION_NAME`` and ``GCP_PROJECT``) or
``gcp_cloud_run``, ``faas.name`` from ``K_SERVICE``
(``FUNCTION_NAME`` on 1st gen), ``faas.version`` from ``K_REVISION``,
``cloud.account.id`` from ``GOOGLE_CLOUD_PROJECT`` (``GCP_PROJECT``),
``cloud.region`` from ``FUNCTION_REGION`` when set (1st gen). The platform
gives no deadline to read, so `remaining_ms` is None (flush uses its own
budget).

Triggers other than HTTP and Pub/Sub: a Cloud Storage object event is a
``datasource`` with ``faas.document.*`` (bucket, object name, operation,
event time), and so is a Firestore document or Realtime Database reference
event (collection path, document id, operation: none for ``written``, event
time; from the event's attributes, never its protobuf body), a Cloud Scheduler job's event
(``google.cloud.scheduler.job.v1.executed``) a ``timer`` with ``faas.time``
(the event does not carry the schedule, so there is no ``faas.cron``). A
scheduler job that publishes to a Pub/Sub topic stays ``pubsub``: nothing in
the message tells it from any other publisher's.
"""

from __future__ import annotations

# Loaded on the first call on Google (or with one of its objects), when all of these are needed:
# imported here, not in the functions, where each relative import costs microseconds per call.
from ..model import SpanKind
from ..propagation._carrier import Headers, get
from ..propagation.cloud_trace import parse_header
from ..propagation.incoming import Incoming
from ..propagation.options import current
from ..triggers import Trigger
from ..triggers._messages import headers_incoming, plain_attributes
from ._requests import is_request as _is_request
from ._requests import request_trigger

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ..config import Settings

__all__ = ["describe", "detect", "invocation_attributes", "remaining_ms", "resource_attributes", "split"]

_MIB = 1024 * 1024
PUBSUB_PUBLISHED = "google.cloud.pubsub.topic.v1.messagePublished"
_SCHEDULER_EXECUTED = "google.cloud.scheduler.job.v1.executed"
# Cloud Storage object events: CloudEvent (``...object.v1.finalized``) and legacy (``...object.finalize``).
_STORAGE_TYPES = ("google.cloud.storage.object.", "google.storage.object.")
_STORAGE_OPERATIONS = {"finalized": "insert", "finalize": "insert", "deleted": "delete", "delete": "delete"}
# Firestore document and Realtime Database reference events: the CloudEvent types
# (``google.cloud.firestore.document.v1.created``, ``google.firebase.database.ref.v1.created``)
# and the legacy ones (``providers/cloud.firestore/eventTypes/document.create``).
_DATABASE_TYPES = (
    "google.cloud.firestore.document.",
    "google.firebase.database.ref.",
    "providers/cloud.firestore/",
    "providers/google.firebase.database/",
)
# ``written`` (``write``) is any of the three: only the body (before and after values) says which.
_DATABASE_OPERATIONS = {
    "created": "insert",
    "create": "insert",
    "updated": "edit",
    "update": "edit",
    "deleted": "delete",
    "delete": "delete",
}


def detect(settings: Settings) -> bool:
    """True on Cloud Functions / Cloud Run (``K_SERVICE``, ``FUNCTION_TARGET`` or 1st gen's variables)."""
    return bool(
        settings.env("K_SERVICE")
        or settings.env("FUNCTION_TARGET")
        or (settings.env("FUNCTION_NAME") and settings.env("GCP_PROJECT"))
    )


def resource_attributes(settings: Settings) -> dict[str, object]:
    """``cloud.*`` and ``faas.*`` resource attributes from the environment."""
    # 2nd gen sets FUNCTION_TARGET; 1st gen (python37) only FUNCTION_NAME and GCP_PROJECT.
    # K_SERVICE alone is a Cloud Run service.
    functions = settings.env("FUNCTION_TARGET") or (
        settings.env("FUNCTION_NAME") and settings.env("GCP_PROJECT")
    )
    platform = "gcp_cloud_functions" if functions else "gcp_cloud_run"
    attrs: dict[str, object] = {"cloud.provider": "gcp", "cloud.platform": platform}
    for key, variables in (
        ("faas.name", ("K_SERVICE", "FUNCTION_NAME", "FUNCTION_TARGET")),
        ("faas.version", ("K_REVISION", "X_GOOGLE_FUNCTION_VERSION")),
        ("cloud.account.id", ("GOOGLE_CLOUD_PROJECT", "GCP_PROJECT")),
        ("cloud.region", ("FUNCTION_REGION",)),
    ):
        for variable in variables:
            value = settings.env(variable)
            if value:
                attrs[key] = value
                break
    memory = settings.env("FUNCTION_MEMORY_MB")
    if memory.isascii() and memory.isdigit():  # "²".isdigit(), and int("²") raises
        attrs["faas.max_memory"] = int(memory) * _MIB
    return attrs


def split(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[object, object]:
    """``fn(request)``, ``fn(cloud_event)`` or ``fn(data, context)``, after ``self`` for a method.

    A request or CloudEvent is found wherever it is; a background event is the
    argument before its context (``event_type``), so ``self`` is never taken
    for the event.
    """
    values = (*args, *kwargs.values())
    for value in values:
        if _is_request(value) or callable(getattr(value, "get_attributes", None)):
            return value, None
    for index, value in enumerate(values):
        if isinstance(getattr(value, "event_type", None), str):
            return (values[index - 1] if index else kwargs.get("data")), value
    event = args[0] if args else next(iter(kwargs.values()), None)
    context = args[1] if len(args) > 1 else kwargs.get("context")
    return event, context


def _cloud_event_attributes(event: object) -> dict[str, object] | None:
    getter = getattr(event, "get_attributes", None)
    if not callable(getter):
        return None
    attributes = getter()  # a mappingproxy in the cloudevents SDK
    return dict(attributes.items()) if hasattr(attributes, "items") else None


def describe(event: object, context: object, settings: Settings) -> Trigger:
    """The trigger of an HTTP request, a CloudEvent or a background event, and its parent."""
    trigger: Trigger | None
    if _is_request(event):
        trigger = _http(event, settings)
    else:
        attributes = _cloud_event_attributes(event)
        if attributes is not None:
            trigger = _cloud_event(attributes, getattr(event, "data", None))
        else:
            trigger = _background(event, context)
    if trigger is None:
        trigger = Trigger("other", SpanKind.SERVER)
    if trigger.candidates:
        trigger.resolve(current(settings).precedence)
    return trigger


def _http(request: Any, settings: Settings) -> Trigger:
    # functions_framework.aio answers a None return with 500, as Flask does (FUNCTION_TARGET:
    # functions-framework serves it; a FastAPI app on Cloud Run answers None with 200).
    trigger = request_trigger(request, none_is_error=bool(settings.env("FUNCTION_TARGET")))
    if "cloud_trace" not in settings.propagators and "gcp" not in settings.propagators:
        host = parse_header(get(request.headers, "x-cloud-trace-context"))
        if host is not None:
            trigger.offer("host", Incoming(host))
    return trigger


def _message_carrier(attributes: object, extensions: dict[str, object]) -> Headers:
    """Pub/Sub message attributes over the CloudEvent's tracing extension; ``googclient_`` stripped.

    Attribute names are case-sensitive: an application's own ``TraceParent``
    does not replace the ``traceparent`` a propagator wrote (`plain_attributes`).

    Both ``traceparent`` and ``googclient_traceparent`` may be set (an
    OpenTelemetry propagator and Google's client library in one publisher):
    the plain names win whatever the attributes' order, and the ``googclient_``
    ones are then dropped, so a traceparent never meets another's tracestate.
    """
    carrier = Headers()
    for key in ("traceparent", "tracestate"):
        value = extensions.get(key)
        if isinstance(value, str):
            carrier[key] = value
    found = plain_attributes(attributes)
    google = {key: value for key, value in found.items() if key.startswith("googclient_")}
    carrier.update((key, value) for key, value in found.items() if key not in google)
    if "traceparent" not in found:
        carrier.update((key.removeprefix("googclient_"), value) for key, value in google.items())
    return carrier


def _incoming(carrier: Headers) -> Incoming | None:
    return headers_incoming(carrier)


def _cloud_event(attributes: dict[str, object], data: object) -> Trigger:
    kind = str(attributes.get("type") or "")
    source = str(attributes.get("source") or "")
    attrs: dict[str, object] = {"cloudevents.event_type": kind, "cloudevents.event_source": source}
    for key, name in (("id", "cloudevents.event_id"), ("subject", "cloudevents.event_subject")):
        if isinstance(attributes.get(key), str):
            attrs[name] = attributes[key]
    message = data.get("message") if isinstance(data, dict) else None
    if kind == PUBSUB_PUBLISHED or isinstance(message, dict):
        topic = source.rsplit("/topics/", 1)[-1] if "/topics/" in source else None
        attrs.update(
            {
                "messaging.system": "gcp_pubsub",
                "messaging.operation.type": "process",
                "messaging.operation.name": "process",
            }
        )
        if topic:
            attrs["messaging.destination.name"] = topic
        message = message if isinstance(message, dict) else {}
        message_id = message.get("messageId") or message.get("message_id") or attributes.get("id")
        if isinstance(message_id, str):
            attrs["messaging.message.id"] = message_id
        ordering_key = message.get("orderingKey") or message.get("ordering_key")
        if isinstance(ordering_key, str):  # set only on messages published with one (ordered delivery)
            attrs["messaging.gcp_pubsub.message.ordering_key"] = ordering_key
        if isinstance(data, dict) and isinstance(data.get("subscription"), str):
            attrs["messaging.destination.subscription.name"] = data["subscription"]
        trigger = Trigger(
            "pubsub", SpanKind.CONSUMER, name=f"process {topic}" if topic else "process", attributes=attrs
        )
        trigger.offer("headers", _incoming(_message_carrier(message.get("attributes"), attributes)))
        return trigger
    time = attributes.get("time")
    time = time if isinstance(time, str) else None
    if kind == _SCHEDULER_EXECUTED:
        trigger_kind = "timer"
        if time:
            attrs["faas.time"] = time
        job = source.partition("//cloudscheduler.googleapis.com/")[2]
        if job:
            attrs["nexs.schedule.rule"] = job
    elif _is_datasource(kind):
        trigger_kind = "datasource"
        if kind.startswith(_STORAGE_TYPES):
            _storage_document(kind, data, time, attrs)
        elif kind.startswith(_DATABASE_TYPES):
            path = attributes.get("document") or attributes.get("ref")
            if not isinstance(path, str):
                subject = attributes.get("subject")
                path = subject.partition("/")[2] if isinstance(subject, str) else ""  # documents/, refs/
            _database_document(kind, path, time, attrs)
    else:
        trigger_kind = "other"
    trigger = Trigger(trigger_kind, SpanKind.SERVER, name=kind or None, attributes=attrs)
    trigger.offer("headers", _incoming(_message_carrier(None, attributes)))
    return trigger


def _storage_document(event_type: str, data: object, time: str | None, attrs: dict[str, object]) -> None:
    """``faas.document.*`` of a Cloud Storage object event (CloudEvent or legacy background).

    The bucket and object name come from the event's data (a ``StorageObjectData``,
    already parsed). ``finalized`` (a new object, or a new generation of one)
    is an insert, ``deleted`` a delete, ``archived`` and ``metadataUpdated`` an
    edit of the object. ``faas.document.time`` is the event's time.
    """
    action = event_type.rpartition(".")[2]
    attrs["faas.document.operation"] = _STORAGE_OPERATIONS.get(action, "edit")
    if isinstance(data, dict):
        for key, name in (("bucket", "faas.document.collection"), ("name", "faas.document.name")):
            if isinstance(data.get(key), str):
                attrs[name] = data[key]
    if time:
        attrs["faas.document.time"] = time


def _database_document(event_type: str, path: str, time: str | None, attrs: dict[str, object]) -> None:
    """``faas.document.*`` of a Firestore document or Realtime Database reference event.

    From the event's attributes, never its body (Firestore's is protobuf):
    `path` is the document's path (``users/alice``: the ``document`` or ``ref``
    extension attribute, or the subject after ``documents/`` or ``refs/``).
    The collection is its path up to the document (a subcollection's is
    ``users/alice/orders``), the name the document's id, as Firestore's
    ``CollectionReference.path`` and ``DocumentReference.id`` name them; a
    Realtime Database reference splits the same way (parent path, key).
    ``created`` is an insert, ``updated`` an edit, ``deleted`` a delete;
    ``written`` gets no operation, as it is any of the three and only the
    body's before and after values say which. ``faas.document.time`` is the
    event's time.
    """
    action = event_type.removesuffix(".withAuthContext").rpartition(".")[2]
    operation = _DATABASE_OPERATIONS.get(action)
    if operation is not None:
        attrs["faas.document.operation"] = operation
    collection, _, name = path.strip("/").rpartition("/")
    if collection:
        attrs["faas.document.collection"] = collection
    if name:
        attrs["faas.document.name"] = name
    if time:
        attrs["faas.document.time"] = time


def _is_datasource(event_type: str) -> bool:
    """Cloud Storage, Firestore or Firebase Realtime Database, in CloudEvent or legacy names.

    ``google.cloud.firestore.document.v1.written`` and the legacy
    ``providers/cloud.firestore/eventTypes/document.write`` name the same
    source, so ``/`` counts as a dot and whole name parts are matched.
    """
    dotted = f".{event_type.replace('/', '.')}."
    return any(part in dotted for part in (".storage.", ".firestore.", ".firebase.database."))


def _background(data: object, context: object) -> Trigger | None:
    """A 1st-gen background function: ``(data, context)`` with ``context.event_type``.

    Described as the same event's CloudEvent form is: a Pub/Sub message gets
    its topic (from ``context.resource``) and id (``context.event_id``).
    """
    event_type = getattr(context, "event_type", None)
    if not isinstance(event_type, str):
        return None
    if "pubsub" in event_type:
        resource = getattr(context, "resource", None)
        name = resource.get("name") if isinstance(resource, dict) else resource
        topic = name.rsplit("/topics/", 1)[-1] if isinstance(name, str) and "/topics/" in name else None
        attrs: dict[str, object] = {
            "messaging.system": "gcp_pubsub",
            "messaging.operation.type": "process",
            "messaging.operation.name": "process",
        }
        if topic:
            attrs["messaging.destination.name"] = topic
        message_id = getattr(context, "event_id", None)
        if isinstance(message_id, str) and message_id:
            attrs["messaging.message.id"] = message_id
        trigger = Trigger(
            "pubsub", SpanKind.CONSUMER, name=f"process {topic}" if topic else "process", attributes=attrs
        )
        attributes = data.get("attributes") if isinstance(data, dict) else None
        trigger.offer("headers", _incoming(_message_carrier(attributes, {})))
        return trigger
    if not _is_datasource(event_type):
        return Trigger("other", SpanKind.SERVER, name=event_type)
    attrs = {}
    time = getattr(context, "timestamp", None)
    time = time if isinstance(time, str) else None
    if event_type.startswith(_STORAGE_TYPES):
        _storage_document(event_type, data, time, attrs)
    elif event_type.startswith(_DATABASE_TYPES):
        # ``projects/p/databases/(default)/documents/users/alice``, ``projects/_/instances/i/refs/x/y``
        resource = getattr(context, "resource", None)
        resource = resource.get("name") if isinstance(resource, dict) else resource
        if isinstance(resource, str):
            marker = "/documents/" if "/documents/" in resource else "/refs/"
            _database_document(event_type, resource.partition(marker)[2], time, attrs)
    return Trigger("datasource", SpanKind.SERVER, name=event_type, attributes=attrs)


def invocation_attributes(event: object, context: object, settings: Settings) -> dict[str, object]:
    """The resource attributes plus ``faas.invocation_id`` (execution id header or event id)."""
    attrs = resource_attributes(settings)
    invocation_id: object = None
    if _is_request(event):
        invocation_id = get(getattr(event, "headers", None), "function-execution-id")
    else:
        attributes = _cloud_event_attributes(event)
        invocation_id = (attributes or {}).get("id") or getattr(context, "event_id", None)
    if isinstance(invocation_id, str) and invocation_id:
        attrs["faas.invocation_id"] = invocation_id
    return attrs


def remaining_ms(context: object) -> float | None:
    """None: Cloud Functions gives the function no deadline to read."""
    return None
