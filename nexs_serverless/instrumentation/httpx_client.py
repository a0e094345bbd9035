"""httpx: a CLIENT span per request sent by its HTTP transports, the context in its headers.

``HTTPTransport.handle_request`` and ``AsyncHTTPTransport.handle_async_request``
are wrapped once, so each request actually sent (each redirect hop too) has
its own span. The context is written into the headers of the request being
sent, after the trace headers already there (a ``tracestate`` copied from
another request, say) are removed: httpx builds that request per call, except
with ``client.send(request)``, where it is the caller's own object (as
OpenTelemetry's httpx instrumentation does too; a later send of it replaces
those headers). The span ends when the response's headers have arrived: the
body is read after the transport returns, for a streamed response and for a
plain one alike.
"""

from __future__ import annotations

from .. import _guard as guard
from ..context import _current
from ..propagation import inject
from ..tracing import tracer
from ._client import (
    CLIENT,
    Patch,
    clear_trace_headers,
    end,
    http_attributes,
    in_http_call,
    record_error,
    record_status,
    should_trace,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from ..span import Span

__all__ = ["install", "uninstall"]

_patch = Patch()


def _begin(request: Any) -> Span | None:
    """The request's span, its context written into the request's headers; None when that failed."""
    span = None
    try:
        name, attrs = http_attributes(request.method, str(request.url))
        span = tracer.span(name, kind=CLIENT, attributes=attrs)
        clear_trace_headers(request.headers)
        inject(request.headers, span)
    except Exception as exc:
        guard.report("httpx.start", exc)
        if span is not None:
            end(span)
        return None
    return span


def _traced() -> bool:
    """Whether a request now gets a span: on, in a trace, and not inside one of our own wrappers."""
    return _patch.enabled and not in_http_call.get() and should_trace()


def install() -> bool:
    """Wrap httpx's sync and async HTTP transports; True when instrumented.

    Each method is checked on its own: one may still carry our wrapper under
    another library's (see `Patch.restore`) while the other was put back.
    """
    import httpx

    sync_transport: Any = httpx.HTTPTransport
    async_transport: Any = httpx.AsyncHTTPTransport
    replacements: list[tuple[Any, str, Callable[..., Any]]] = []
    if not Patch.applied(sync_transport, "handle_request"):
        replacements.append((sync_transport, "handle_request", _sync_wrapper(sync_transport.handle_request)))
    if not Patch.applied(async_transport, "handle_async_request"):
        wrapper = _async_wrapper(async_transport.handle_async_request)
        replacements.append((async_transport, "handle_async_request", wrapper))
    _patch.apply(*replacements)
    return True


def _sync_wrapper(original: Callable[..., Any]) -> Callable[..., Any]:
    def handle_request(self: Any, request: Any) -> Any:
        span = _begin(request) if _traced() else None
        if span is None:
            return original(self, request)
        token = _current.set(span)
        http_token = in_http_call.set(True)
        try:
            response = original(self, request)
        except BaseException as exc:
            record_error(span, exc)
            raise
        else:
            record_status(span, getattr(response, "status_code", None))
        finally:
            in_http_call.reset(http_token)
            _current.reset(token)
            end(span)
        return response

    return handle_request


def _async_wrapper(original: Callable[..., Any]) -> Callable[..., Any]:
    async def handle_async_request(self: Any, request: Any) -> Any:
        span = _begin(request) if _traced() else None
        if span is None:
            return await original(self, request)
        token = _current.set(span)
        http_token = in_http_call.set(True)
        try:
            response = await original(self, request)
        except BaseException as exc:
            record_error(span, exc)
            raise
        else:
            record_status(span, getattr(response, "status_code", None))
        finally:
            in_http_call.reset(http_token)
            _current.reset(token)
            end(span)
        return response

    return handle_async_request


def uninstall() -> None:
    """Restore httpx's methods."""
    _patch.restore()
