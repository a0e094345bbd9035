"""HTTP events: API Gateway REST (v1) and HTTP (v2) APIs, Function URLs and ALB.

Attributes follow OpenTelemetry's HTTP server conventions; the span is named
``METHOD route`` when the route template is known (``HTTP`` for a method
outside the conventions' list, which is then ``_OTHER`` with
``http.request.method_original``), and the returned ``statusCode`` becomes
``http.response.status_code`` (5xx sets status ERROR). An HTTP API (payload
2.0) or a Function URL answers 200 for a result without a ``statusCode``,
and so records it.

- ``server.address``/``server.port``: the ``Host`` header (API Gateway's
  ``domainName`` without one), the port split off;
- ``client.address``: the address API Gateway saw (``sourceIp``), else the
  first ``X-Forwarded-For`` entry (ALB sends no ``sourceIp``);
- ``url.query``: the raw query of an HTTP API; a REST API's is rebuilt from
  its decoded parameters (all values, from ``multiValueQueryStringParameters``
  when present), percent-encoded again; an ALB's parameters arrive as the
  client sent them (ALB does not decode them) and are joined as they are.

The request headers are the ``headers`` source of the parent context, read
with ``OTEL_PROPAGATORS`` (REST APIs and ALB may send ``multiValueHeaders``
instead of, or besides, ``headers``; both are read, case-insensitively). A
header sent on several lines is in full only in ``multiValueHeaders`` (the
REST API's ``headers`` keeps the last line), so the lines found there are
joined with ``,`` (RFC 9110 section 5.3; W3C ``tracestate`` and ``baggage``
are lists) and win. The attributes read from headers and the query come
from the multi-value maps when the single-value ones are absent (an ALB
target group with multi-value headers on sends only those).

A Lambda authorizer of the ``REQUEST`` type receives the request it
decides on (``type: REQUEST`` with the ``methodArn`` of a REST API or the
``routeArn`` of an HTTP API) but does not answer it: it is ``other``, as a
``TOKEN`` authorizer is, named after the function, with no
``http.response.status_code`` (its ``{"isAuthorized": false}`` was recorded
as the 200 of ``POST /orders``, a span like the handler's own). The
request's attributes stay, ``nexs.trigger.source=api_gateway_authorizer``,
and its headers still give the parent: the authorizer is part of the
caller's trace.
"""

from __future__ import annotations

from ..model import SpanKind, StatusCode
from ..propagation._carrier import Headers, text
from . import Trigger
from ._messages import client_address, headers_incoming, host_and_port, http_method, port_number

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..span import Span

__all__ = ["describe", "record_response"]

# What stays as is in a rebuilt query value: RFC 3986's unreserved characters and the sub-delimiters
# that do not separate parameters ("&", "=", "+" and "#" are encoded, with space and "%").
_QUERY_SAFE = "!$'()*,/:;?@~"


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
        method = _text(http.get("method"))
        path = _text(http.get("path")) or _text(event.get("rawPath"))
        route_key = _text(event.get("routeKey"))
        if route_key and route_key != "$default":
            route = route_key.split(" ", 1)[-1]
        client = _text(http.get("sourceIp"))
        agent = _text(http.get("userAgent")) or fields.get("user-agent", "")
        protocol = _text(http.get("protocol"))
        query = _text(event.get("rawQueryString"))
        source = "lambda_url" if ".lambda-url." in _text(ctx.get("domainName")) else "api_gateway_v2"
    else:  # REST API (payload 1.0) or ALB
        method = _text(event.get("httpMethod"))
        path = _text(event.get("path"))
        resource = event.get("resource")
        if isinstance(resource, str) and resource and "elb" not in ctx:
            route = resource
        identity = ctx.get("identity")
        client = _text(identity.get("sourceIp")) if isinstance(identity, dict) else ""
        agent = fields.get("user-agent", "")
        protocol = _text(ctx.get("protocol"))
        source = "alb" if "elb" in ctx else "api_gateway_v1"
        query = _query(event, encoded=source == "alb") or ""
    verb = http_method(attrs, method)
    attrs["url.path"] = path
    if query:
        attrs["url.query"] = query
    if route:
        attrs["http.route"] = route
    address = client or client_address(fields.get("x-forwarded-for"))
    if address:
        attrs["client.address"] = address
    if agent:
        attrs["user_agent.original"] = agent
    if protocol.upper().startswith("HTTP/"):
        attrs["network.protocol.version"] = protocol[5:] or "1.1"
    host = fields.get("host") or _text(ctx.get("domainName"))
    if host:
        name, port = host_and_port(host)
        attrs["server.address"] = name or host
        number = port_number(port)
        if number is not None:
            attrs["server.port"] = number
    scheme = (fields.get("x-forwarded-proto") or "").split(",", 1)[0].strip().lower()
    attrs["url.scheme"] = scheme or "https"
    if _is_authorizer(event):
        attrs["nexs.trigger.source"] = "api_gateway_authorizer"
        trigger = Trigger("other", SpanKind.SERVER, attributes=attrs)
        trigger.offer("headers", headers_incoming(carrier))
        return trigger
    attrs["nexs.trigger.source"] = source
    name = f"{verb} {route}" if route else verb
    on_result = record_response if source in {"api_gateway_v1", "alb"} else record_inferred_response
    trigger = Trigger("http", SpanKind.SERVER, name=name, attributes=attrs, on_result=on_result)
    trigger.offer("headers", headers_incoming(carrier))
    return trigger


def _is_authorizer(event: dict[str, object]) -> bool:
    """A ``REQUEST`` Lambda authorizer's event (REST API: ``methodArn``, HTTP API: ``routeArn``)."""
    return event.get("type") == "REQUEST" and (
        isinstance(event.get("methodArn"), str) or isinstance(event.get("routeArn"), str)
    )


def _text(value: object) -> str:
    """A field that should be text: as is, or '' for anything else (None, numbers, lists)."""
    return value if isinstance(value, str) else ""


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


def _query(event: dict[str, object], *, encoded: bool) -> str | None:
    """The query of a REST API or ALB event, from the multi-value map (all values) or the single one.

    API Gateway decodes the parameters, so their text is percent-encoded again
    (a value holding ``&`` or ``=`` would otherwise read as more parameters);
    an ALB passes them on as the client sent them (`encoded`).
    """
    found: list[tuple[object, object]] = []
    multi = event.get("multiValueQueryStringParameters")
    params = event.get("queryStringParameters")
    if isinstance(multi, dict) and multi:
        found = [(k, v) for k, values in multi.items() if isinstance(values, list) for v in values]
    elif isinstance(params, dict):
        found = list(params.items())
    pairs = [(k, v) for k, v in found if isinstance(k, str) and isinstance(v, str)]
    if not pairs:
        return None
    if encoded:
        return "&".join(f"{k}={v}" for k, v in pairs)
    from urllib.parse import quote

    return "&".join(f"{quote(k, _QUERY_SAFE)}={quote(v, _QUERY_SAFE)}" for k, v in pairs)


def record_response(span: Span, result: object) -> None:
    """``statusCode`` of a proxy response → ``http.response.status_code``; 5xx is an error."""
    if not isinstance(result, dict):
        return
    code = result.get("statusCode")
    if isinstance(code, str) and code.isascii() and code.isdigit():  # int("²") raises
        code = int(code)
    if type(code) is not int:
        return
    span.set_attribute("http.response.status_code", code)
    if code >= 500:
        span.set_status(StatusCode.ERROR, f"HTTP {code}")


def record_inferred_response(span: Span, result: object) -> None:
    """As `record_response`; a result without ``statusCode`` is the 200 that HTTP APIs and URLs send.

    Payload format 2.0 and Function URLs take any other returned JSON as the
    body of a 200 response.
    """
    if isinstance(result, dict) and "statusCode" in result:
        record_response(span, result)
    else:
        span.set_attribute("http.response.status_code", 200)


def _lower_keys(headers: object) -> dict[str, str]:
    """Single-value headers, lower-case names; a value that is not text (a JSON null) is absent."""
    if not isinstance(headers, dict):
        return {}
    out: dict[str, str] = {}
    for key, value in headers.items():
        converted = text(value)
        if isinstance(key, str) and converted is not None:
            out[key.lower()] = converted
    return out
