"""Serverless platforms: who is running us, and the resource attributes that follow.

Detection reads the environment snapshot in the settings (``AWS_LAMBDA_FUNCTION_NAME``
means Lambda, ``K_SERVICE``/``FUNCTION_TARGET`` Google Cloud, ``FUNCTIONS_WORKER_RUNTIME``
Azure), and can be forced with ``NEXS_PLATFORM`` (``aws_lambda``, ``gcp_cloud_functions``,
``azure_functions``, or ``aws``/``gcp``/``azure``). Each platform is one module with the
same functions; adding one is a module and a line in `_MODULES`.

Where neither ``NEXS_PLATFORM`` nor the environment names a platform, a call
whose arguments are a platform's own objects (a Flask or Starlette request, a
CloudEvent or a background event's context from ``functions-framework``, an
``azure.functions`` request or message) is handled by that platform
(`for_call`): a function run locally or in tests is still described right.
On a detected platform its environment wins: a FastAPI route decorated inside
a Lambda function is a Lambda invocation, and its span must not say Google
Cloud while its resource says AWS; its request still makes it an ``http``
trigger continuing the caller's trace (`_requests`). A ``NEXS_PLATFORM`` naming no platform
forces nothing.
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import ModuleType

    from ..config import Settings

__all__ = ["current", "detect", "for_call", "load", "resource_attributes"]

# platform name -> module; detection order is this order.
_MODULES: dict[str, str] = {
    "aws_lambda": ".aws",
    "gcp_cloud_functions": ".gcp",
    "azure_functions": ".azure",
}
_ALIASES = {"aws": "aws_lambda", "gcp": "gcp_cloud_functions", "azure": "azure_functions"}
# Module of an argument's type -> the platform whose runtime passes such objects.
_CLAIMS: tuple[tuple[str, str], ...] = (
    ("flask", "gcp_cloud_functions"),
    ("werkzeug", "gcp_cloud_functions"),
    ("starlette", "gcp_cloud_functions"),  # functions_framework.aio
    ("cloudevents", "gcp_cloud_functions"),
    ("functions_framework", "gcp_cloud_functions"),
    ("google.cloud.functions", "gcp_cloud_functions"),
    ("google.cloud.functions_v1", "gcp_cloud_functions"),  # a background function's Context
    ("google.cloud.functions_v1beta2", "gcp_cloud_functions"),
    ("azure.functions", "azure_functions"),
)


def _forced(settings: Settings) -> str:
    """The platform ``NEXS_PLATFORM`` names, canonical, or the raw value when it names none."""
    forced = settings.env("NEXS_PLATFORM").strip().lower()
    return _ALIASES.get(forced, forced)


def detect(settings: Settings) -> str:
    """The platform name from ``NEXS_PLATFORM`` or the environment, or '' when unknown."""
    forced = _forced(settings)
    if forced in _MODULES:
        return forced
    if forced:
        _unknown_platform(settings.env("NEXS_PLATFORM").strip())
    for name in _MODULES:
        if load(name).detect(settings):
            return name
    return ""


def _unknown_platform(value: str) -> None:
    """One warning line per process and value for a ``NEXS_PLATFORM`` that names no platform.

    Detection goes on. Keyed by the value, as `config.report` keys its lines:
    a reconfiguration with another bad value is reported too.
    """
    from .. import _guard as guard
    from ..config import Problem

    expected = "one of " + ", ".join([*_MODULES, *_ALIASES])
    problem = Problem("NEXS_PLATFORM", value, expected, "the platform detected from the environment")
    guard.warn_once(f"config:NEXS_PLATFORM={value}", "nexs_serverless: %s", problem)


def current(settings: Settings) -> ModuleType:
    """The platform module for this process: the detected one, else AWS Lambda's.

    Every platform module offers the same functions: ``detect(settings)``,
    ``resource_attributes(settings)``, ``split(args, kwargs) -> (event, context)``,
    ``describe(event, context, settings) -> Trigger``,
    ``invocation_attributes(event, context, settings)`` and ``remaining_ms(context)``.
    """
    return load(detect(settings) or "aws_lambda")


def _claim(value: object) -> str | None:
    """The platform whose runtime passes objects of `value`'s type, by the type's package.

    Whole package names only: a class of the user's ``flaskapp`` or
    ``azure_helpers`` module claims nothing.
    """
    module = type(value).__module__
    if module == "builtins":
        # A batch binding (Azure Service Bus, Event Hubs with cardinality many) is a list of messages.
        return _claim(value[0]) if type(value) is list and value else None
    for prefix, name in _CLAIMS:
        if module.startswith(prefix) and (len(module) == len(prefix) or module[len(prefix)] == "."):
            return name
    return None


def for_call(
    settings: Settings, default: ModuleType, args: tuple[object, ...], kwargs: dict[str, object]
) -> ModuleType:
    """The platform for one call: `default` unless the arguments are another platform's objects.

    A forced ``NEXS_PLATFORM`` always wins (an invalid one forces nothing, as
    in `detect`), and so does a platform the environment names. The check runs
    on every call, so it only looks at the types of the first three positional
    arguments (the second is a legacy background function's context, or the
    request after a method's ``self``; the third a method's background
    context) and of keyword arguments (the Azure worker passes bindings by
    name), never importing anything.
    """
    if settings.env("NEXS_PLATFORM") and _forced(settings) in _MODULES:
        return default
    name = None
    for value in args[:3]:
        name = _claim(value)
        if name is not None:
            break
    if name is None:
        for value in kwargs.values():
            name = _claim(value)
            if name is not None:
                break
    if name is None or default.__name__.endswith(_MODULES[name]) or detect(settings):
        return default
    return load(name)


def load(name: str) -> ModuleType:
    """The module implementing platform `name`."""
    return importlib.import_module(_MODULES[name], __name__)


def resource_attributes(settings: Settings) -> dict[str, object]:
    """The detected platform's resource attributes (empty off-platform)."""
    name = detect(settings)
    if not name:
        return {}
    attrs: dict[str, object] = load(name).resource_attributes(settings)
    return attrs
