"""The objects Google's and Azure's Python runtimes pass to a function, built from sample events.

Lambda hands a handler plain dicts, but ``functions-framework`` passes a Flask
request or a CloudEvent, and the Azure Functions worker an
``azure.functions.HttpRequest``. These builders turn the factories' plain
descriptions (`events.gcp_http`, `events.gcp_pubsub`, `events.azure_http`)
into those objects, so a test calls the function exactly as the runtime does.
Each imports its framework when called: install ``functions-framework`` or
``azure-functions`` to use it.
"""

from __future__ import annotations

import json

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

__all__ = ["azure_request", "build_args", "cloud_event", "flask_request"]


def _body_bytes(body: object) -> bytes:
    if body is None:
        return b""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()
    return json.dumps(body, separators=(",", ":")).encode()


def flask_request(event: Mapping[str, Any]) -> Any:
    """A ``flask.Request`` for `event` (shape of `events.gcp_http`), as an HTTP function receives it."""
    from flask import Request
    from werkzeug.test import EnvironBuilder

    headers = dict(event.get("headers") or {})
    builder = EnvironBuilder(
        method=str(event.get("method") or "GET"),
        path=str(event.get("path") or "/"),
        base_url="https://" + str(headers.get("Host") or "localhost"),
        headers=headers,
        query_string=dict(event.get("query") or {}),
        data=_body_bytes(event.get("body")),
    )
    try:
        return builder.get_request(Request)
    finally:
        builder.close()


def cloud_event(event: Mapping[str, Any]) -> Any:
    """A ``cloudevents.http.CloudEvent`` for `event` (structured JSON, as `events.gcp_pubsub`)."""
    from cloudevents.http import CloudEvent

    attributes = {key: value for key, value in event.items() if key != "data"}
    return CloudEvent(attributes, event.get("data"))


def azure_request(event: Mapping[str, Any]) -> Any:
    """An ``azure.functions.HttpRequest`` for `event` (shape of `events.azure_http`)."""
    import azure.functions as func

    return func.HttpRequest(
        method=str(event.get("method") or "GET"),
        url=str(event["url"]),
        headers=dict(event.get("headers") or {}),
        params=dict(event.get("params") or {}),
        route_params=dict(event.get("route_params") or {}),
        body=_body_bytes(event.get("body")),
    )


def build_args(platform: str, event: Mapping[str, Any], context: object) -> tuple[object, ...]:
    """The positional arguments a function on `platform` receives for `event`.

    ``aws`` passes ``(event, context)``; ``gcp`` passes the Flask request, or
    the CloudEvent when `event` is one (it has ``specversion``); ``azure``
    passes ``(request, context)``.

    Raises:
        ValueError: for an unknown platform name.
    """
    if platform == "aws":
        return (dict(event), context)
    if platform == "gcp":
        return (cloud_event(event) if "specversion" in event else flask_request(event),)
    if platform == "azure":
        return (azure_request(event), context)
    raise ValueError(f"unknown platform {platform!r}; expected aws, gcp or azure")
