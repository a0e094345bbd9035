"""Web framework requests (Flask/werkzeug, Starlette) as HTTP triggers, whichever platform runs them.

functions-framework passes a Flask request (a Starlette one under
``functions_framework.aio``), but so do a Flask app behind a WSGI adapter in
Lambda and a FastAPI function on Azure (the HTTP streams extension). The
environment names the platform (`platforms.for_call`); the request still says
what the call is: an HTTP request whose headers carry the caller's context.
Found by shape, so nothing is imported.
"""

from __future__ import annotations

from ..triggers._web import http_trigger, record_status

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ..span import Span
    from ..triggers import Trigger

__all__ = ["is_request", "request_trigger"]


def is_request(event: object) -> bool:
    """A Flask request (WSGI ``environ``) or a Starlette one (ASGI ``scope``)."""
    return (
        hasattr(event, "headers")
        and hasattr(event, "method")
        and (hasattr(event, "environ") or (hasattr(event, "url") and hasattr(event, "scope")))
    )


def request_trigger(request: Any, headers: object = None, *, none_is_error: bool = False) -> Trigger:
    """The ``http`` trigger of `request`; `headers` replaces its headers (a cleaned copy).

    A werkzeug request's handler that returns None (or nothing Flask can make a
    response of) has answered 500: Flask raises ``TypeError`` after the handler
    returned, so the span would otherwise say OK with no status. `none_is_error`
    says the same of a Starlette request (``functions_framework.aio`` answers
    None with 500; FastAPI answers it with ``null`` and 200, so not by default).
    """
    client = getattr(request, "remote_addr", None)  # Flask; Starlette has client=(host, port)
    if client is None:
        client = getattr(getattr(request, "client", None), "host", None)
    trigger = http_trigger(
        str(getattr(request, "method", "") or ""),
        str(getattr(request, "url", "") or ""),
        request.headers if headers is None else headers,
        client=client if isinstance(client, str) else None,
    )
    if hasattr(request, "environ"):
        trigger.on_result = _record_flask_status
    elif none_is_error:
        trigger.on_result = _record_none_as_500
    return trigger


def _record_flask_status(span: Span, result: object) -> None:
    """The status Flask answers `result` with (``Flask.make_response``), then as any result."""
    if result is None:
        result = (None, 500)  # TypeError: "The view function did not return a valid response"
    elif (
        not isinstance(result, (str, bytes, dict, list, tuple))
        and getattr(result, "status_code", None) is None
    ):
        if hasattr(result, "__next__") or isinstance(result, bytearray):
            result = (None, 200)  # streamed: an iterator (a generator) or bytearray body is 200 OK
        elif not callable(result):  # not a WSGI application either: Flask's TypeError
            result = (None, 500)
    record_status(span, result)


def _record_none_as_500(span: Span, result: object) -> None:
    record_status(span, (None, 500) if result is None else result)
