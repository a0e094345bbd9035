"""HTTP events: API Gateway REST (v1) and HTTP (v2) APIs, Function URLs and ALB.

Attributes follow OpenTelemetry's HTTP server conventions; the span is named
``METHOD route`` when the route template is known, and the returned
``statusCode`` becomes ``http.response.status_code`` (5xx sets status ERROR).

The request headers are the ``headers`` source of the parent context, read
with ``OTEL_PROPAGATORS`` (REST APIs and ALB may send ``multiValueHeaders``
instead of, or besides, ``headers``; both are read, case-insensitively). A
header sent on several lines is in full only in ``multiValueHeaders`` (the
REST API's ``headers`` keeps the last line), so the lines found there are
joined with ``,`` (RFC 9110 section 5.3; W3C ``tracestate`` and ``baggage``
are lists) and win. The attributes read from headers and the query come
from the multi-value maps when the single-value ones are absent (an ALB
target group with multi-value headers on sends only those).
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
    carrier = _carrier(event, headers)
    fields = headers or carrier  # single-value headers for attributes; ALB may send only multi ones
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
        if fields.get("user-agent"):
            attrs["user_agent.original"] = fields["user-agent"]
        query = _query(event)
        source = "alb" if "elb" in ctx else "api_gateway_v1"
    attrs["http.request.method"] = method or "_OTHER"
    attrs["url.path"] = path
    if query:
        attrs["url.query"] = str(query)
    if route:
        attrs["http.route"] = route
    host = fields.get("host") or ctx.get("domainName")
    if host:
        attrs["server.address"] = str(host)
    scheme = fields.get("x-forwarded-proto")
    attrs["url.scheme"] = scheme or "https"
    attrs["nexs.trigger.source"] = source
    name = f"{method} {route}" if route else method or None
    trigger = Trigger("http", SpanKind.SERVER, name=name, attributes=attrs, on_result=record_response)
    trigger.offer("headers", headers_incoming(carrier))
    return trigger


def _carrier(event: dict[str, object], headers: dict[str, str]) -> Headers:
    """Every request header, lower-case names; ``multiValueHeaders`` (all lines, ``,``-joined) wins."""
    carrier = Headers(headers)
    multi = event.get("multiValueHeaders")
    if isinstance(multi, dict):
        for key, values in multi.items():
            value = text(values)
            if isinstance(key, str) and value is not None:
                carrier[key.lower()] = value
    return carrier


def _query(event: dict[str, object]) -> str | None:
    """The query of a REST API or ALB event: ``queryStringParameters``, else the multi-value map."""
    params = event.get("queryStringParameters")
    if isinstance(params, dict):
        return "&".join(f"{k}={v}" for k, v in params.items())
    multi = event.get("multiValueQueryStringParameters")
    if isinstance(multi, dict):
        return "&".join(f"{k}={v}" for k, values in multi.items() if isinstance(values, list) for v in values)
    return None


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
