"""Serverless platforms: who is running us, and the resource attributes that follow.

Detection reads the environment snapshot in the settings (``AWS_LAMBDA_FUNCTION_NAME``
means Lambda), and can be forced with ``NEXS_PLATFORM``. Each platform is one
module with the same functions; adding one is a module and a line in `_MODULES`.
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import ModuleType

    from ..config import Settings

__all__ = ["current", "detect", "load", "resource_attributes"]

# platform name -> module; detection order is this order.
_MODULES: dict[str, str] = {
    "aws_lambda": ".aws",
}


def detect(settings: Settings) -> str:
    """The platform name from ``NEXS_PLATFORM`` or the environment, or '' when unknown."""
    forced = settings.env("NEXS_PLATFORM").strip().lower()
    if forced in _MODULES:
        return forced
    for name in _MODULES:
        if load(name).detect(settings):
            return name
    return ""


def current(settings: Settings) -> ModuleType:
    """The platform module for this process: the detected one, else AWS Lambda's.

    Every platform module offers the same functions: ``detect(settings)``,
    ``resource_attributes(settings)``, ``split(args, kwargs) -> (event, context)``,
    ``describe(event, context, settings) -> Trigger``,
    ``invocation_attributes(event, context, settings)`` and ``remaining_ms(context)``.
    """
    return load(detect(settings) or "aws_lambda")


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
