"""HTTP events: API Gateway REST (v1) and HTTP (v2) APIs, Function URLs and ALB.

Attributes follow OpenTelemetry's HTTP server conventions; the span is named
``METHOD route`` when the route template is known, and the returned
``statusCode`` becomes ``http.response.status_code`` (5xx sets status ERROR).

The request headers are the ``headers`` source of the parent context, read
with ``OTEL_PROPAGATORS`` (REST APIs and ALB may send ``multiValueHeaders``
instead of, or besides, ``headers``; both are read, case-insensitively).
"""

from __future__ import annotations

from ..model import SpanKind, StatusCode
from ..propagation._carrier import Headers, text
from . import Trigger
from ._messages import headers_incoming

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..span import Span

__all__ = ["describe", "record_response"]


def describe(event: dict[str, object]) -> Trigger:
    """HTTP server attributes for the root span."""
    ctx: dict[str, object] = event["requestContext"]  # type: ignore[assignment]
    http = ctx.get("http")
    headers = _lower_keys(event.get("headers"))
    attrs: dict[str, object] = {}
    route: str | None = None
    if isinstance(http, dict):  # HTTP API (payload 2.0) or Function URL
        method = str(http.get("method", "")).upper()
        path = str(http.get("path") or event.get("rawPath") or "")
        route_key = str(event.get("routeKey") or "")
        if route_key and route_key != "$default":
            route = route_key.split(" ", 1)[-1]
        if http.get("sourceIp"):
            attrs["client.address"] = str(http["sourceIp"])
        if http.get("userAgent"):
            attrs["user_agent.original"] = str(http["userAgent"])
        if http.get("protocol"):
            attrs["network.protocol.version"] = str(http["protocol"]).partition("/")[2] or "1.1"
        query = event.get("rawQueryString")
        source = "lambda_url" if ".lambda-url." in str(ctx.get("domainName", "")) else "api_gateway_v2"
    else:  # REST API (payload 1.0) or ALB
        method = str(event.get("httpMethod", "")).upper()
        path = str(event.get("path") or "")
        if isinstance(event.get("resource"), str) and "elb" not in ctx:
            route = str(event["resource"])
        identity = ctx.get("identity")
        if isinstance(identity, dict) and identity.get("sourceIp"):
            attrs["client.address"] = str(identity["sourceIp"])
        if headers.get("user-agent"):
            attrs["user_agent.original"] = headers["user-agent"]
        params = event.get("queryStringParameters")
        query = "&".join(f"{k}={v}" for k, v in params.items()) if isinstance(params, dict) else None
        source = "alb" if "elb" in ctx else "api_gateway_v1"
    attrs["http.request.method"] = method or "_OTHER"
    attrs["url.path"] = path
    if query:
        attrs["url.query"] = str(query)
    if route:
        attrs["http.route"] = route
    host = headers.get("host") or ctx.get("domainName")
    if host:
        attrs["server.address"] = str(host)
    scheme = headers.get("x-forwarded-proto")
    attrs["url.scheme"] = scheme or "https"
    attrs["nexs.trigger.source"] = source
    name = f"{method} {route}" if route else method or None
    trigger = Trigger("http", SpanKind.SERVER, name=name, attributes=attrs, on_result=record_response)
    trigger.offer("headers", headers_incoming(_carrier(event, headers)))
    return trigger


def _carrier(event: dict[str, object], headers: dict[str, str]) -> Headers:
    """Every request header, lower-case names; ``headers`` wins over ``multiValueHeaders``."""
    carrier = Headers()
    multi = event.get("multiValueHeaders")
    if isinstance(multi, dict):
        for key, values in multi.items():
            value = text(values)
            if isinstance(key, str) and value is not None:
                carrier[key.lower()] = value
    carrier.update(headers)
    return carrier


def record_response(span: Span, result: object) -> None:
    """``statusCode`` of a proxy response → ``http.response.status_code``; 5xx is an error."""
    if not isinstance(result, dict):
        return
    code = result.get("statusCode")
    if isinstance(code, str) and code.isdigit():
        code = int(code)
    if type(code) is not int:
        return
    span.set_attribute("http.response.status_code", code)
    if code >= 500:
        span.set_status(StatusCode.ERROR, f"HTTP {code}")


def _lower_keys(headers: object) -> dict[str, str]:
    if not isinstance(headers, dict):
        return {}
    return {str(k).lower(): str(v) for k, v in headers.items()}
