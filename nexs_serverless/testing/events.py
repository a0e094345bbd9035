"""Event factories: a fresh trigger event per call, from the shipped samples, with overrides.

    from nexs_serverless.testing import LambdaContext, events

    handler(events.api_gateway_v2(method="POST", path="/orders", body={"item": "book"}), LambdaContext())
    handler(events.sqs(messages=["first", {"orderId": "42"}]), LambdaContext())

Each factory starts from the sample event of the same name in
``nexs_serverless/events/`` (the shapes AWS, Google and Azure document, so
the tracer's trigger detection sees what production sends) and takes keyword
arguments for what tests usually vary. Anything else goes in `overrides`, a
dict merged into the event last (nested dicts are merged, other values
replaced). Bodies given as dicts or lists are JSON-encoded, as the platforms
deliver them. The Google and Azure events are plain descriptions of the
request; `nexs_serverless.testing.native` turns them into the objects those
runtimes pass (a Flask request, a CloudEvent, an ``azure.functions.HttpRequest``).
"""

from __future__ import annotations

from urllib.parse import quote_plus, urlencode

from ._fixtures import KEEP as _KEEP
from ._fixtures import finish as _finish
from ._fixtures import http_body, load, merge_headers, names
from ._other_clouds import azure_http, gcp_http, gcp_pubsub
from ._records import dynamodb, eventbridge, kinesis, s3, sns, sqs

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    Event = dict[str, Any]
    Headers = Mapping[str, str | None]

__all__ = [
    "alb",
    "api_gateway_v1",
    "api_gateway_v2",
    "azure_http",
    "dynamodb",
    "eventbridge",
    "function_url",
    "gcp_http",
    "gcp_pubsub",
    "kinesis",
    "load",
    "names",
    "s3",
    "sns",
    "sqs",
]

# -- HTTP ---------------------------------------------------------------------------


def api_gateway_v1(
    *,
    method: str | None = None,
    path: str | None = None,
    resource: str | None = None,
    headers: Headers | None = None,
    query: Mapping[str, str] | None = None,
    path_parameters: Mapping[str, str] | None = None,
    body: object = _KEEP,
    overrides: Mapping[str, Any] | None = None,
) -> Event:
    """An API Gateway REST API (payload 1.0) proxy event.

    Args:
        method: HTTP method.
        path: request path; the route template (`resource`) follows it unless given.
        resource: route template such as ``/orders/{id}``.
        headers: merged over the sample's headers (None removes one).
        query: query string parameters (replace the sample's).
        path_parameters: values of the template's parameters.
        body: request body (dicts and lists are JSON-encoded, bytes base64-encoded).
        overrides: merged into the event last.
    """
    event = load("api-gateway-v1")
    ctx = event["requestContext"]
    if method:
        event["httpMethod"] = ctx["httpMethod"] = method.upper()
    if path:
        event["path"] = path
        ctx["path"] = f"/{ctx['stage']}{path}"
        if resource is None:
            resource = path
            event["pathParameters"] = None
    if resource:
        event["resource"] = ctx["resourcePath"] = resource
    if path_parameters is not None:
        event["pathParameters"] = dict(path_parameters) or None
    merge_headers(event["headers"], headers)
    event["multiValueHeaders"] = {key: [value] for key, value in event["headers"].items()}
    if query is not None:
        event["queryStringParameters"] = dict(query) or None
        event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()} or None
    if body is not _KEEP:
        event["body"], event["isBase64Encoded"] = http_body(body)
    return _finish(event, overrides)


def _http_v2(
    name: str,
    method: str | None,
    path: str | None,
    route: str | None,
    headers: Headers | None,
    query: Mapping[str, str] | None,
    body: object,
) -> Event:
    event = load(name)
    http = event["requestContext"]["http"]
    if method:
        http["method"] = method.upper()
    if path:
        event["rawPath"] = http["path"] = path
    if event["routeKey"] != "$default":
        event["routeKey"] = event["requestContext"]["routeKey"] = (
            f"{http['method']} {route or path or event['routeKey'].split(' ', 1)[-1]}"
        )
    if headers:  # HTTP APIs and Function URLs deliver header names in lower case
        lowered = {key.lower(): value for key, value in headers.items()}
        if "cookie" in lowered:
            _set_cookies(event, lowered.pop("cookie"))
        merge_headers(event["headers"], lowered)
    # Payload 2.0 leaves out what a request lacks (no query string, no body) rather than sending null.
    if query is not None:
        event["rawQueryString"] = urlencode(dict(query))
        event["queryStringParameters"] = dict(query)
        if not query:
            del event["queryStringParameters"]
    if body is not _KEEP:
        text, event["isBase64Encoded"] = http_body(body)
        event["body"] = text
        if "content-length" in event["headers"]:  # the request's size, not its base64 text's
            raw = bytes(body) if isinstance(body, (bytes, bytearray)) else (text or "").encode()
            event["headers"]["content-length"] = str(len(raw))
        if body is None:
            del event["body"]
            event["headers"].pop("content-length", None)
    return event


def _set_cookies(event: Event, header: str | None) -> None:
    """Put a ``Cookie`` header where payload 2.0 has request cookies: ``cookies``, one ``name=value`` each.

    API Gateway HTTP APIs and Function URLs send no cookie header, so a test reading cookies the
    way production delivers them must find them there (None, or no cookie, leaves no ``cookies``).
    """
    cookies = [part.strip() for part in (header or "").split(";") if part.strip()]
    if cookies:
        event["cookies"] = cookies
    else:
        event.pop("cookies", None)


def api_gateway_v2(
    *,
    method: str | None = None,
    path: str | None = None,
    route: str | None = None,
    headers: Headers | None = None,
    query: Mapping[str, str] | None = None,
    body: object = _KEEP,
    overrides: Mapping[str, Any] | None = None,
) -> Event:
    """An API Gateway HTTP API (payload 2.0) event.

    Args:
        method: HTTP method.
        path: request path (``rawPath``).
        route: route template for ``routeKey`` (default: the path).
        headers: merged over the sample's headers (lower-cased; None removes one); a ``Cookie``
            header replaces ``cookies`` instead, as payload 2.0 delivers it.
        query: query string parameters (replace the sample's; ``{}``: no query string, and no
            ``queryStringParameters`` key, as payload 2.0 sends it).
        body: request body (dicts and lists are JSON-encoded, bytes base64-encoded; None: a request
            without one, so no ``body`` key).
        overrides: merged into the event last.
    """
    return _finish(_http_v2("api-gateway-v2", method, path, route, headers, query, body), overrides)


def function_url(
    *,
    method: str | None = None,
    path: str | None = None,
    headers: Headers | None = None,
    query: Mapping[str, str] | None = None,
    body: object = _KEEP,
    overrides: Mapping[str, Any] | None = None,
) -> Event:
    """A Lambda Function URL event (payload 2.0, ``routeKey`` ``$default``); arguments as `api_gateway_v2`."""
    return _finish(_http_v2("function-url", method, path, None, headers, query, body), overrides)


def alb(
    *,
    method: str | None = None,
    path: str | None = None,
    headers: Headers | None = None,
    query: Mapping[str, str] | None = None,
    body: object = _KEEP,
    overrides: Mapping[str, Any] | None = None,
) -> Event:
    """An Application Load Balancer target-group event; arguments as `api_gateway_v2`.

    ALB passes query parameters as the client sent them, URL-encoded (it does not decode them, unlike
    API Gateway), so `query` values are encoded here: ``{"q": "a b"}`` arrives as ``{"q": "a+b"}``.
    """
    event = load("alb")
    if method:
        event["httpMethod"] = method.upper()
    if path:
        event["path"] = path
    if headers:
        merge_headers(event["headers"], {key.lower(): value for key, value in headers.items()})
    if query is not None:
        event["queryStringParameters"] = {quote_plus(str(k)): quote_plus(str(v)) for k, v in query.items()}
    if body is not _KEEP:
        text, event["isBase64Encoded"] = http_body(body)
        event["body"] = text or ""
    return _finish(event, overrides)
