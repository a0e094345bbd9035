"""OpenTelemetry interop: OpenTelemetry API spans become ours, one current span for both.

    import nexs_serverless.otel

    nexs_serverless.otel.install()   # spans from any OpenTelemetry instrumentation land in our buffer

`install` puts the context bridge in place (`bridge`) and, unless the
application already set a ``TracerProvider`` of its own, makes ours
(`provider.NexsTracerProvider`) the global one. With the application's own
SDK provider kept, the bridge still shares the current span, so traces join
across both, and the baggage and instrumentation suppression (the SDK's
exporters' own requests are not traced by ours).

Loaded only when asked for, or at the first invocation when
``opentelemetry.trace`` is already imported (disable with
``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=opentelemetry``); importing it needs
``opentelemetry-api`` (the ``otel`` extra).
"""

from __future__ import annotations

from .bridge import install as install_bridge
from .bridge import uninstall as uninstall_bridge
from .provider import NexsTracerProvider

__all__ = ["NexsTracerProvider", "install", "tracer_provider", "uninstall"]

_provider: list[NexsTracerProvider] = []


def tracer_provider() -> NexsTracerProvider:
    """The process's `NexsTracerProvider` (one instance)."""
    if not _provider:
        _provider.append(NexsTracerProvider())
    return _provider[0]


def install(*, set_global: bool = True) -> bool:
    """Bridge the contexts and, when no provider is set yet, make ours the global one.

    Args:
        set_global: also call ``trace.set_tracer_provider`` (only when the
            global provider is still OpenTelemetry's default proxy).

    Returns:
        True when the bridge is in place.
    """
    from opentelemetry import trace

    bridged = install_bridge()
    if set_global and isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        trace.set_tracer_provider(tracer_provider())
    return bridged


def uninstall() -> None:
    """Remove the bridge (OpenTelemetry allows the global provider to be set only once)."""
    uninstall_bridge()
