"""Event factories for Google Cloud Functions and Azure Functions HTTP and Pub/Sub triggers.

Part of `nexs_serverless.testing.events` (import them from there). They
return plain descriptions; `nexs_serverless.testing.native` builds the
objects the runtimes pass.
"""

from __future__ import annotations

import base64
import uuid
from urllib.parse import quote, urlencode, urlsplit

from ._fixtures import KEEP as _KEEP
from ._fixtures import finish as _finish
from ._fixtures import load, merge_headers, payload_bytes

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    Event = dict[str, Any]
    Headers = Mapping[str, str | None]

__all__ = ["azure_http", "gcp_http", "gcp_pubsub"]


def gcp_http(
    *,
    method: str | None = None,
    path: str | None = None,
    headers: Headers | None = None,
    query: Mapping[str, str] | None = None,
    body: object = _KEEP,
    overrides: Mapping[str, Any] | None = None,
) -> Event:
    """An HTTP request to a Cloud Function (``native.flask_request`` builds the Flask request).

    Args:
        method: HTTP method.
        path: request path.
        headers: merged over the sample's (None removes one).
        query: query string parameters (replace the sample's).
        body: request body (a dict or list is sent as JSON).
        overrides: merged into the event last.
    """
    event = load("gcp-http")
    if method:
        event["method"] = method.upper()
    if path:
        event["path"] = path
    merge_headers(event["headers"], headers)
    if query is not None:
        event["query"] = dict(query)
    if body is not _KEEP:
        event["body"] = body
    return _finish(event, overrides)


def gcp_pubsub(
    *,
    data: object = _KEEP,
    attributes: Mapping[str, str | None] | None = None,
    topic: str | None = None,
    subscription: str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Event:
    """A Pub/Sub ``messagePublished`` CloudEvent (``native.cloud_event`` builds the object).

    Args:
        data: the message payload (bytes, text, or JSON-encoded dicts), base64-encoded.
        attributes: message attributes merged over the sample's (None removes one).
        topic: topic name, in ``source``.
        subscription: subscription name.
        overrides: merged into the event last.
    """
    event = load("gcp-pubsub")
    message = event["data"]["message"]
    event["id"] = message["messageId"] = message["message_id"] = str(uuid.uuid4().int % 10**14)
    if data is not _KEEP:
        message["data"] = base64.b64encode(payload_bytes(data)).decode("ascii")
    for key, value in (attributes or {}).items():
        if value is None:
            message["attributes"].pop(key, None)
        else:
            message["attributes"][key] = value
    project = event["source"].split("/projects/", 1)[1].split("/", 1)[0]
    if topic:
        event["source"] = f"//pubsub.googleapis.com/projects/{project}/topics/{topic}"
    if subscription:
        event["data"]["subscription"] = f"projects/{project}/subscriptions/{subscription}"
    return _finish(event, overrides)


def azure_http(
    *,
    method: str | None = None,
    path: str | None = None,
    headers: Headers | None = None,
    params: Mapping[str, str] | None = None,
    route_params: Mapping[str, str] | None = None,
    body: object = _KEEP,
    overrides: Mapping[str, Any] | None = None,
) -> Event:
    """An HTTP request to an Azure Function (``native.azure_request`` builds the ``HttpRequest``).

    Args:
        method: HTTP method.
        path: request path (``/api/...``), in ``url``.
        headers: merged over the sample's (None removes one).
        params: query parameters (replace the sample's, and the URL's query).
        route_params: route parameters.
        body: request body (a dict or list is sent as JSON).
        overrides: merged into the event last.
    """
    event = load("azure-http")
    if method:
        event["method"] = method.upper()
    if params is not None:
        event["params"] = dict(params)
    if path or params is not None:
        parts = urlsplit(event["url"])
        query = urlencode(event["params"])
        target = quote(path, safe="/%:@!$&'()*+,;=~") if path else parts.path  # a URL has no raw spaces
        event["url"] = f"{parts.scheme}://{parts.netloc}{target}" + (f"?{query}" if query else "")
    merge_headers(event["headers"], headers)
    if route_params is not None:
        event["route_params"] = dict(route_params)
    if body is not _KEEP:
        event["body"] = body
    return _finish(event, overrides)
