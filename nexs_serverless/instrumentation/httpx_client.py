"""httpx: a CLIENT span per request sent by its HTTP transports, the context in its headers.

``HTTPTransport.handle_request`` and ``AsyncHTTPTransport.handle_async_request``
are wrapped once, so each request actually sent (each redirect hop too) has
its own span. The context is written into the headers of the request being
sent: httpx builds that request per call, except with ``client.send(request)``,
where it is the caller's own object (as OpenTelemetry's httpx instrumentation
does too; a later send of it replaces those headers).
"""

from __future__ import annotations

from .. import _guard as guard
from ..context import _current
from ..propagation import inject
from ..tracing import tracer
from ._client import CLIENT, Patch, http_attributes, record_error, record_status, should_trace

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

__all__ = ["install", "uninstall"]

_patch = Patch()


def _begin(request: Any) -> Any:
    name, attrs = http_attributes(str(request.method), str(request.url))
    span = tracer.span(name, kind=CLIENT, attributes=attrs)
    inject(request.headers, span)
    return span


def install() -> bool:
    """Wrap httpx's sync and async HTTP transports; True when instrumented."""
    import httpx

    sync_transport: Any = httpx.HTTPTransport
    async_transport: Any = httpx.AsyncHTTPTransport
    if Patch.applied(sync_transport, "handle_request"):
        _patch.enabled = True
        return True
    original: Callable[..., Any] = sync_transport.handle_request
    original_async: Callable[..., Any] = async_transport.handle_async_request

    def handle_request(self: Any, request: Any) -> Any:
        if not _patch.enabled or not should_trace():
            return original(self, request)
        try:
            span = _begin(request)
        except Exception as exc:
            guard.report("httpx.start", exc)
            return original(self, request)
        token = _current.set(span)
        try:
            response = original(self, request)
        except BaseException as exc:
            record_error(span, exc)
            raise
        else:
            record_status(span, getattr(response, "status_code", None))
        finally:
            _current.reset(token)
            span.end()
        return response

    async def handle_async_request(self: Any, request: Any) -> Any:
        if not _patch.enabled or not should_trace():
            return await original_async(self, request)
        try:
            span = _begin(request)
        except Exception as exc:
            guard.report("httpx.start", exc)
            return await original_async(self, request)
        token = _current.set(span)
        try:
            response = await original_async(self, request)
        except BaseException as exc:
            record_error(span, exc)
            raise
        else:
            record_status(span, getattr(response, "status_code", None))
        finally:
            _current.reset(token)
            span.end()
        return response

    _patch.apply(
        (sync_transport, "handle_request", handle_request),
        (async_transport, "handle_async_request", handle_async_request),
    )
    return True


def uninstall() -> None:
    """Restore httpx's methods."""
    _patch.restore()
