"""AWS SDK calls (botocore): a CLIENT or PRODUCER span per call, context injected through event hooks.

How it fits together:

- The span's lifetime needs a start and an end that always run, including when
  botocore rejects the parameters before sending (no event fires then), and it
  must reach clients created before we were installed (boto3 clients are
  usually made at import, before the first invocation). So
  ``BaseClient._make_api_call`` is wrapped, once, for every client: the span
  is started and made current around the original call, and ended whatever
  happens; the underlying HTTP request is not traced again.
- The context goes in through botocore's own extension point: a
  ``before-parameter-build`` handler, registered on each client's event
  emitter the first time it makes a call, rewrites the parameters (copies of
  the user's dicts, never the dicts themselves) as `aws_operations` describes.

Only calls made inside a trace are traced (see `_client.should_trace`), never
the tracer's own export calls (`context.suppressed`). Installing does not
import boto3; `uninstall` restores the original method, and hooks already
registered on clients then do nothing.
"""

from __future__ import annotations

from .. import _guard as guard
from ..context import _current
from ..tracing import tracer
from ._client import Patch, in_sdk_call, record_error, should_trace

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import ModuleType
    from typing import Any

__all__ = ["install", "installed", "uninstall"]

_EMITTER_MARK = "_nexs_hooks"
_patch = Patch()


def _ops() -> ModuleType:
    """The per-operation table, loaded at the first AWS call rather than at install (cold start)."""
    from . import aws_operations

    return aws_operations


def installed() -> bool:
    """Whether the SDK is instrumented now."""
    return _patch.enabled


def install() -> bool:
    """Wrap ``botocore.client.BaseClient._make_api_call``; True when instrumented."""
    import botocore.client

    base: Any = botocore.client.BaseClient
    if Patch.applied(base, "_make_api_call"):
        _patch.enabled = True
        return True
    original: Callable[..., Any] = base._make_api_call

    def _make_api_call(self: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
        if not _patch.enabled or not should_trace():
            return original(self, operation_name, api_params)
        try:
            span = _start(self, operation_name, api_params)
        except Exception as exc:
            guard.report("botocore.start", exc)
            return original(self, operation_name, api_params)
        token = _current.set(span)
        sdk_token = in_sdk_call.set(True)
        try:
            result = original(self, operation_name, api_params)
        except BaseException as exc:
            _safely(record_error, span, exc)
            response = getattr(exc, "response", None)
            _safely(_ops().record_result, span, response)
            raise
        else:
            _safely(_ops().record_result, span, result)
        finally:
            in_sdk_call.reset(sdk_token)
            _current.reset(token)
            span.end()
        return result

    _patch.apply((base, "_make_api_call", _make_api_call))
    return True


def uninstall() -> None:
    """Restore botocore's method (hooks left on clients do nothing once disabled)."""
    _patch.restore()


def _start(client: Any, operation: str, params: dict[str, Any]) -> Any:
    model = client._service_model
    service = str(model.service_id)
    name, kind, attrs = _ops().describe(service, operation, params)
    region = getattr(client.meta, "region_name", None)
    if region:
        attrs["cloud.region"] = region
        if "faas.invoked_provider" in attrs:  # a Lambda invocation: the function's region is the client's
            attrs.setdefault("faas.invoked_region", region)  # unless its ARN named one
    endpoint = getattr(client.meta, "endpoint_url", None)
    if isinstance(endpoint, str):
        from urllib.parse import urlsplit

        parts = urlsplit(endpoint)
        if parts.hostname:
            attrs["server.address"] = parts.hostname
        if parts.port:
            attrs["server.port"] = parts.port
    _ensure_hooks(client)
    return tracer.span(name, kind=kind, attributes=attrs)


def _ensure_hooks(client: Any) -> None:
    """Register the injection hook on this client's emitter, once."""
    events = client.meta.events
    if getattr(events, _EMITTER_MARK, False):
        return
    events.register_first("before-parameter-build", _before_parameter_build)
    setattr(events, _EMITTER_MARK, True)


def _before_parameter_build(params: dict[str, Any], model: Any, **kwargs: Any) -> None:
    """Botocore hook: put the current (client) span's context into the parameters."""
    if not _patch.enabled or not in_sdk_call.get():
        return
    try:
        _ops().inject_context(str(model.service_model.service_id), str(model.name), params)
    except Exception as exc:
        guard.report("botocore.inject", exc)


def _safely(fn: Callable[..., None], *args: object) -> None:
    try:
        fn(*args)
    except Exception as exc:
        guard.report("botocore.record", exc)
