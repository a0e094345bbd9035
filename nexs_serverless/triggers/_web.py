"""HTTP server attributes for requests that are objects, not Lambda events (Google, Azure).

Shared by the Google Cloud Functions (Flask request) and Azure Functions
(``HttpRequest``) platforms: OpenTelemetry's HTTP server attributes from the
method, URL and headers, the ``headers`` context candidate, and the response
status (``status_code`` of a response object, or what Flask makes of a
returned tuple; 5xx sets status ERROR).

A header sent on several lines (two ``tracestate`` or ``baggage`` lines) is
read in full: a Starlette request's headers list each line apart, and keeping
only the last one lost the others' vendors and baggage (RFC 9110 section 5.3
joins them with ``,``, as the W3C formats expect).
"""

from __future__ import annotations

from ..model import SpanKind, StatusCode
from ..propagation._carrier import Headers, combined
from . import Trigger
from ._messages import client_address, headers_incoming, host_and_port, http_method, port_number

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..span import Span

__all__ = ["header_lines", "http_trigger", "record_status"]


def header_lines(headers: object) -> Headers:
    """`headers` (any header object) as `Headers`, the lines of a repeated field joined with ``,``."""
    carrier = combined(headers)
    return carrier if isinstance(carrier, Headers) else Headers()


def http_trigger(method: str, url: str, headers: object, *, client: str | None = None) -> Trigger:
    """An ``http`` trigger for a request to `url` with `headers` (any mapping)."""
    from urllib.parse import urlsplit

    carrier = header_lines(headers)
    parts = urlsplit(url)
    attrs: dict[str, object] = {}
    verb = http_method(attrs, method)
    attrs["url.path"] = parts.path or "/"
    # The first proxy's scheme, the client's (each proxy appends its own): "https, http" is https.
    forwarded = (carrier.get("x-forwarded-proto") or "").split(",", 1)[0].strip().lower()
    attrs["url.scheme"] = forwarded or parts.scheme or "https"
    if parts.query:
        attrs["url.query"] = parts.query
    host = carrier.get("host") or parts.netloc
    if host:
        name, port = host_and_port(host)
        attrs["server.address"] = name or host
        number = port_number(port)
        if number is not None:
            attrs["server.port"] = number
    if carrier.get("user-agent"):
        attrs["user_agent.original"] = carrier["user-agent"]
    address = client_address(carrier.get("x-forwarded-for")) or client
    if address:
        attrs["client.address"] = address
    trigger = Trigger("http", SpanKind.SERVER, name=verb, attributes=attrs, on_result=record_status)
    trigger.offer("headers", headers_incoming(carrier))
    return trigger


def _status_code(status: object) -> int | None:
    """A status as Flask takes one: an int (``HTTPStatus`` too) or text like ``"503 SERVICE UNAVAILABLE"``."""
    if isinstance(status, bytes):
        status = status.decode("latin-1")
    if isinstance(status, str):
        token = (status.split(None, 1) or [""])[0]
        return int(token) if token.isascii() and token.isdigit() else None
    if isinstance(status, int) and not isinstance(status, bool):
        return int(status)
    return None


def record_status(span: Span, result: object) -> None:
    """The handler's HTTP status → ``http.response.status_code``; 5xx is an error.

    A returned tuple is read as Flask reads it: ``(body, status, headers)``,
    ``(body, status)``, or ``(body, headers)`` where the status is the body's own
    (200 for a plain body), so the span shows the code the client got.
    """
    status: object = None
    if isinstance(result, tuple) and len(result) in (2, 3):
        body, second = result[0], result[1]
        # Flask: a mapping or sequence in second place of a pair is the headers, not a status.
        if len(result) == 3 or not (isinstance(second, (list, tuple)) or hasattr(second, "items")):
            status = second
        result = body
    if status is None:
        status = getattr(result, "status_code", None)
    if status is None and isinstance(result, (str, bytes, dict, list)):
        status = 200  # Flask turns a plain body into 200 OK
    code = _status_code(status)
    if code is None:
        return
    span.set_attribute("http.response.status_code", code)
    if code >= 500:
        span.set_status(StatusCode.ERROR, f"HTTP {code}")
