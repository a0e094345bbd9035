"""HTTP server attributes for requests that are objects, not Lambda events (Google, Azure).

Shared by the Google Cloud Functions (Flask request) and Azure Functions
(``HttpRequest``) platforms: OpenTelemetry's HTTP server attributes from the
method, URL and headers, the ``headers`` context candidate, and the response
status (``status_code`` of a response object, or the second item of a
``(body, status)`` tuple as Flask allows; 5xx sets status ERROR).
"""

from __future__ import annotations

from ..model import SpanKind, StatusCode
from ..propagation._carrier import headers_from
from . import Trigger
from ._messages import headers_incoming

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..span import Span

__all__ = ["http_trigger", "record_status"]


def http_trigger(method: str, url: str, headers: object, *, client: str | None = None) -> Trigger:
    """An ``http`` trigger for a request to `url` with `headers` (any mapping)."""
    from urllib.parse import urlsplit

    carrier = headers_from(headers)
    parts = urlsplit(url)
    method = method.upper() or "_OTHER"
    attrs: dict[str, object] = {
        "http.request.method": method,
        "url.path": parts.path or "/",
        "url.scheme": carrier.get("x-forwarded-proto") or parts.scheme or "https",
    }
    if parts.query:
        attrs["url.query"] = parts.query
    host = carrier.get("host") or parts.netloc
    if host:
        name, _, port = host.rpartition(":") if host.count(":") == 1 else (host, "", "")
        attrs["server.address"] = name or host
        if port.isdigit():
            attrs["server.port"] = int(port)
    if carrier.get("user-agent"):
        attrs["user_agent.original"] = carrier["user-agent"]
    forwarded = carrier.get("x-forwarded-for")
    address = forwarded.split(",", 1)[0].strip() if forwarded else client
    if address:
        attrs["client.address"] = address
    trigger = Trigger("http", SpanKind.SERVER, name=method, attributes=attrs, on_result=record_status)
    trigger.offer("headers", headers_incoming(carrier))
    return trigger


def record_status(span: Span, result: object) -> None:
    """The handler's HTTP status → ``http.response.status_code``; 5xx is an error."""
    code = getattr(result, "status_code", None)
    if code is None and isinstance(result, tuple) and len(result) >= 2:
        code = result[1]
    if code is None and isinstance(result, (str, bytes, dict, list)):
        code = 200  # Flask turns a plain body into 200 OK
    if isinstance(code, str) and code.isdigit():
        code = int(code)
    if type(code) is not int:
        return
    span.set_attribute("http.response.status_code", code)
    if code >= 500:
        span.set_status(StatusCode.ERROR, f"HTTP {code}")
