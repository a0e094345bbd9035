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
- boto3's transfers (``upload_file``, ``download_file``) call S3 from
  s3transfer's worker threads: its ``BoundedExecutor.submit`` is wrapped so
  each task runs in the context it was submitted from (`_patch_transfers`).

Only calls made inside a trace are traced (see `_client.should_trace`), never
the tracer's own export calls (`context.suppressed`). Installing does not
import boto3 or s3transfer; `uninstall` restores the original methods, and
hooks already registered on clients then do nothing.
"""

from __future__ import annotations

import threading
from _contextvars import copy_context  # as `_client` imports it: the C module, not its wrapper

from .. import _guard as guard
from ..context import _current
from ..tracing import tracer
from ._client import _DEFAULT_PORTS, Patch, in_sdk_call, record_error, should_trace

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import ModuleType
    from typing import Any

__all__ = ["install", "installed", "uninstall"]

_EMITTER_MARK = "_nexs_hooks"
_patch = Patch()
_transfers = Patch()  # s3transfer's BoundedExecutor.submit
_transfers_lock = threading.Lock()  # first calls in several threads: one wrapper, not one each


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
    import botocore.exceptions

    base: Any = botocore.client.BaseClient
    if Patch.applied(base, "_make_api_call"):
        _patch.enabled = True
        _patch_transfers()
        return True
    original: Callable[..., Any] = Patch.original(base, "_make_api_call")
    client_error = botocore.exceptions.ClientError  # loaded by botocore.client

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
            if isinstance(exc, client_error):
                _safely(_record_error_code, span, response)
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
    _patch_transfers()
    return True


def _patch_transfers() -> None:
    """s3transfer's task submission, once loaded: worker tasks run in the submitter's context.

    boto3's ``upload_file``/``download_file`` (and s3transfer's manager) make
    their S3 calls in worker threads, which start with an empty context: the
    calls were not traced at all. Each task is handed to the thread pool in a
    copy of the context it was submitted from, so its calls are children of the
    span that started the transfer, with that span's baggage and suppression.
    The task itself is untouched (a wrapper only the pool sees). s3transfer is
    not imported for this (``import boto3`` loads it): when it is not loaded at
    install, the first traced call once it is loaded patches it.
    """
    import sys

    executor = getattr(sys.modules.get("s3transfer.futures"), "BoundedExecutor", None)
    if executor is None:
        return
    with _transfers_lock:
        if Patch.applied(executor, "submit"):
            _transfers.enabled = True
        else:
            _transfers.apply((executor, "submit", _transfer_submit(Patch.original(executor, "submit"))))


def _transfer_submit(original: Callable[..., Any]) -> Callable[..., Any]:
    """s3transfer's ``BoundedExecutor.submit``, handing the pool the task in the caller's context."""

    def submit(self: Any, task: Any, *args: Any, **kwargs: Any) -> Any:
        if _transfers.enabled and _current.get() is not None:
            task = _InContext(task, copy_context())
        return original(self, task, *args, **kwargs)

    return submit


class _InContext:
    """An s3transfer task that runs in the context it was submitted from; otherwise the task."""

    __slots__ = ("_context", "_task")

    def __init__(self, task: Any, context: Any) -> None:
        self._task = task
        self._context = context

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._context.run(self._task, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:  # transfer_id, read by the executor's semaphores
        if name in _InContext.__slots__:  # not set (a copy made without __init__): no recursion
            raise AttributeError(name)
        return getattr(self._task, name)

    def __repr__(self) -> str:
        return repr(self._task)


def uninstall() -> None:
    """Restore botocore's and s3transfer's methods (hooks left on clients do nothing once disabled)."""
    _patch.restore()
    _transfers.restore()


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
            # With the address, the port: the default endpoints name none (https, so 443), and the
            # RPC conventions ask for it whenever server.address is set, as HTTP spans give it.
            port = parts.port or _DEFAULT_PORTS.get(parts.scheme)
            if port:
                attrs["server.port"] = port
    _ensure_hooks(client)
    if not _transfers.enabled:  # s3transfer loaded after install (boto3 imported after `instrument`)
        _patch_transfers()
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


def _record_error_code(span: Any, response: object) -> None:
    """``error.type``: the service's error code (``ConditionalCheckFailedException``, ``NoSuchKey``).

    A botocore ``ClientError`` is one class for every error a service has not
    modelled (throttling, access denied, S3's ``404`` for ``HeadObject``), and a
    modelled one's class name is botocore's shape name, not always the code
    (SQS's ``QueueDoesNotExist`` is ``AWS.SimpleQueueService.NonExistentQueue``).
    The code is the low-cardinality identifier the service documents and callers
    match on, which OpenTelemetry's ``error.type`` asks for; the exception event
    keeps the Python class as ``exception.type``.
    """
    error = response.get("Error") if isinstance(response, dict) else None
    code = error.get("Code") if isinstance(error, dict) else None
    if isinstance(code, str) and code:
        span.set_attribute("error.type", code)


def _safely(fn: Callable[..., None], *args: object) -> None:
    try:
        fn(*args)
    except Exception as exc:
        guard.report("botocore.record", exc)
