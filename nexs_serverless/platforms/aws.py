"""AWS Lambda: resource attributes from the environment, invocation attributes from the context.

Attribute names follow OpenTelemetry's FaaS and cloud semantic conventions
(``faas.*``, ``cloud.*``); `faas.max_memory` is in bytes, as they specify.

Lambda@Edge: CloudFront runs replicas of a function created in ``us-east-1``
in the region nearest the viewer, and a replica's name is the function's
prefixed with that home region (``us-east-1.my-function``). ``faas.name`` is
the function "as configured/deployed", so the prefix is dropped (a Lambda
function name cannot contain a dot, so a dot can only be this prefix): every
replica's spans and ``service.name`` group under one function.
``cloud.region`` stays ``AWS_REGION``, the region the replica runs in, and
``cloud.resource_id`` the replica's own ARN, the resource that ran.
"""

from __future__ import annotations

# This module loads on the first invocation (`runtime.platform_module`), when these are needed
# anyway: imported here rather than in the functions, where each import statement costs 2-3 us
# on every invocation (a relative import resolves its package through Python code).
from ..config import read_env
from ..propagation._carrier import Headers, text
from ..propagation.options import current
from ..propagation.xray import incoming_from
from ..triggers import describe as describe_event

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ..config import Settings
    from ..propagation.incoming import Incoming
    from ..triggers import Trigger

__all__ = ["describe", "detect", "invocation_attributes", "remaining_ms", "resource_attributes", "split"]

_MIB = 1024 * 1024


def detect(settings: Settings) -> bool:
    """True inside Lambda (the runtime sets ``AWS_LAMBDA_FUNCTION_NAME``)."""
    return bool(settings.env("AWS_LAMBDA_FUNCTION_NAME"))


def resource_attributes(settings: Settings) -> dict[str, object]:
    """``cloud.*`` and ``faas.*`` resource attributes from Lambda's environment."""
    attrs: dict[str, object] = {"cloud.provider": "aws", "cloud.platform": "aws_lambda"}
    for key, variable in (
        ("cloud.region", "AWS_REGION"),
        ("faas.name", "AWS_LAMBDA_FUNCTION_NAME"),
        ("faas.version", "AWS_LAMBDA_FUNCTION_VERSION"),
        ("faas.instance", "AWS_LAMBDA_LOG_STREAM_NAME"),
    ):
        value = settings.env(variable)
        if value:
            attrs[key] = _deployed_name(value) if key == "faas.name" else value
    memory = settings.env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
    if memory.isascii() and memory.isdigit():  # "²".isdigit(), and int("²") raises
        attrs["faas.max_memory"] = int(memory) * _MIB
    return attrs


def _deployed_name(name: str) -> str:
    """`name` without a Lambda@Edge replica's home-region prefix (``us-east-1.my-function``)."""
    if "." not in name:  # the usual case: one scan, no new string
        return name
    return name.partition(".")[2] or name


def split(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[object, object]:
    """``handler(event, context)``: the event and the Lambda context object.

    A decorated method (``self, event, context``) has one argument more, and
    a wrapper may pass extra ones after the context: with more than two, the
    context is the first argument but the first that looks like Lambda's
    context object (``get_remaining_time_in_millis``), else the last, and the
    event is the one before it. Keyword ``event``/``context`` win over
    positions (``obj.handler(event=e, context=c)``: ``self`` is not the event).
    """
    if kwargs:
        if "context" in kwargs:
            event = kwargs["event"] if "event" in kwargs else (args[-1] if args else None)
            return event, kwargs["context"]
        if "event" in kwargs:
            return kwargs["event"], None
    if len(args) > 2:
        for index in range(1, len(args)):
            if hasattr(args[index], "get_remaining_time_in_millis"):
                return args[index - 1], args[index]
        return args[-2], args[-1]
    event = args[0] if args else None
    context = args[1] if len(args) > 1 else None
    return event, context


def describe(event: object, context: object, settings: Settings) -> Trigger:
    """The trigger, from the shape of the event, and the invocation's parent context.

    Besides what the event carries, Lambda offers two more sources: the client
    context of a direct ``Invoke`` (``headers``: ``clientContext.custom``, where
    our instrumentation writes, and the runtime's ``context.w3c()``), and the
    X-Ray header of the invocation, ``_X_AMZN_TRACE_ID`` (``xray``, only when
    sampled: Lambda sets an unsampled one even with tracing off). The first
    source in ``NEXS_CONTEXT_PRECEDENCE`` that has a context wins.
    """
    if type(event) is not dict and hasattr(event, "headers"):
        # A Flask or Starlette route decorated inside Lambda (a WSGI/ASGI adapter calls it):
        # still an HTTP request, whose headers carry the caller's context.
        from ._requests import is_request, request_trigger

        trigger = request_trigger(event) if is_request(event) else describe_event(event)
    else:
        trigger = describe_event(event)
    precedence = current(settings).precedence
    if "headers" in precedence:
        trigger.offer("headers", _client_context(context))
    if "xray" in precedence and "xray" not in trigger.candidates:
        trigger.offer("xray", _environment_xray())
    if trigger.candidates:
        trigger.resolve(precedence)
    return trigger


def _client_context(context: object) -> Incoming | None:
    """What a direct ``Invoke``'s client context carries (``custom`` and ``w3c`` fields)."""
    carrier = Headers()
    client_context = getattr(context, "client_context", None)
    custom = getattr(client_context, "custom", None)
    if custom is None and isinstance(client_context, dict):
        custom = client_context.get("custom")
    w3c = getattr(context, "w3c", None)
    for fields in (custom, w3c() if callable(w3c) else None):
        if isinstance(fields, dict):
            for key, value in fields.items():
                converted = text(value)
                if isinstance(key, str) and converted is not None:
                    carrier[key.lower()] = converted
    if not carrier:  # the usual case: nothing to read, no reader to load
        return None
    from ..triggers._messages import headers_incoming

    return headers_incoming(carrier)


def _environment_xray() -> Incoming | None:
    """Lambda's per-invocation X-Ray header (``_X_AMZN_TRACE_ID``), when it says sampled."""
    incoming = incoming_from(read_env("_X_AMZN_TRACE_ID"))
    if incoming is None or incoming.context is None or not incoming.context.sampled:
        return None
    return incoming


def invocation_attributes(event: object, context: object, settings: Settings) -> dict[str, object]:
    """Root-span attributes for one invocation, read from the Lambda context object."""
    attrs = resource_attributes(settings)
    request_id = getattr(context, "aws_request_id", None)
    if request_id:
        attrs["faas.invocation_id"] = str(request_id)
    for key, name in (
        ("faas.name", "function_name"),
        ("faas.version", "function_version"),
        ("faas.instance", "log_stream_name"),
    ):
        value = getattr(context, name, None)
        if value:
            attrs[key] = _deployed_name(str(value)) if key == "faas.name" else str(value)
    memory = getattr(context, "memory_limit_in_mb", None)
    if memory is not None and str(memory).isascii() and str(memory).isdigit():
        attrs["faas.max_memory"] = int(str(memory)) * _MIB
    arn = getattr(context, "invoked_function_arn", None)
    if arn:
        arn = str(arn)
        attrs["aws.lambda.invoked_arn"] = arn
        parts = arn.split(":")
        # The function's ARN, qualified by the version that ran: an alias (the invoked ARN's
        # suffix) names whichever version it points at today (semantic conventions, "cloud").
        function_arn = ":".join(parts[:7])
        version = attrs.get("faas.version")
        attrs["cloud.resource_id"] = f"{function_arn}:{version}" if version else function_arn
        if len(parts) > 4 and parts[4]:
            attrs["cloud.account.id"] = parts[4]
        if len(parts) > 3 and parts[3] and "cloud.region" not in attrs:
            attrs["cloud.region"] = parts[3]
    return attrs


def remaining_ms(context: object) -> float | None:
    """Milliseconds left in the invocation, or None when the context cannot tell."""
    getter = getattr(context, "get_remaining_time_in_millis", None)
    if getter is None:
        return None
    try:
        return float(getter())
    except Exception:
        return None
