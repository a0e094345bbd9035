"""What a platform gives a function for ``nexs-serverless invoke``: environment, event, context, arguments.

Split from `invoke`, which runs the handler with them: the variables each
platform sets (`platform_environ`), the sample or file event (`load_event`),
a context stand-in, and the arguments the platform's worker would pass.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import sys
from pathlib import Path

from ..testing import LambdaContext, native
from ..testing._fixtures import load, names
from ..testing.context import AzureContext
from ._invoke_load import InvokeError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping
    from typing import Any

__all__ = [
    "PLATFORMS",
    "arguments_for",
    "context_for",
    "load_event",
    "patched_environ",
    "platform_environ",
    "request_id_of",
]

PLATFORMS = ("aws", "gcp", "azure")


def load_event(spec: str | None) -> tuple[str | None, dict[str, Any]]:
    """The event for `spec` (a sample event name or a JSON file) and the platform its name implies.

    Returns:
        (platform or None when the name does not tell, event); no spec gives ``{}``.

    Raises:
        InvokeError: for an unknown name, a missing file or invalid JSON.
    """
    if not spec:
        return None, {}
    if spec in names():
        platform = spec.split("-", 1)[0] if spec.startswith(("gcp-", "azure-")) else "aws"
        return platform, load(spec)
    path = Path(spec)
    if not path.is_file():
        raise InvokeError(f"--event {spec!r}: neither a sample event ({', '.join(names())}) nor a file")
    try:
        event = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvokeError(f"--event {spec!r}: cannot read JSON: {exc}") from exc
    if not isinstance(event, dict):
        raise InvokeError(f"--event {spec!r}: the event must be a JSON object")
    return None, event


def platform_environ(
    platform: str, function_name: str, *, region: str, memory_mb: int, handler_dir: str
) -> dict[str, str]:
    """The variables `platform` sets in a function's environment, for this function."""
    if platform == "gcp":
        return {
            "K_SERVICE": function_name,
            "K_REVISION": f"{function_name}-00001-abc",
            "FUNCTION_TARGET": "handler",
            "GOOGLE_CLOUD_PROJECT": "my-project",
            "FUNCTION_REGION": region,
        }
    if platform == "azure":
        return {
            "WEBSITE_SITE_NAME": function_name,
            "REGION_NAME": region,
            "FUNCTIONS_WORKER_RUNTIME": "python",
            "FUNCTIONS_EXTENSION_VERSION": "~4",
            "WEBSITE_INSTANCE_ID": "0123456789abcdef0123456789abcdef",
        }
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    return {
        "AWS_LAMBDA_FUNCTION_NAME": function_name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function_name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "2026/11/28/[$LATEST]0123456789abcdef0123456789abcdef",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_EXECUTION_ENV": f"AWS_Lambda_python{version}",
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "LAMBDA_TASK_ROOT": handler_dir,
    }


@contextlib.contextmanager
def patched_environ(values: Mapping[str, str]) -> Iterator[None]:
    """Set `values` in `os.environ` for the block, then restore every variable as it was."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def context_for(platform: str, function_name: str, region: str, memory_mb: int, timeout_ms: int) -> object:
    """A fresh context per invocation: Azure's stand-in, else Lambda's (Google passes none)."""
    if platform == "azure":
        return AzureContext(function_name=function_name)
    return LambdaContext(
        function_name=function_name, region=region, memory_limit_in_mb=memory_mb, timeout_ms=timeout_ms
    )


def arguments_for(
    fn: Callable[..., Any], platform: str, event: Mapping[str, Any], context: object
) -> tuple[Any, ...]:
    """The arguments `platform`'s worker passes `fn`; an event of another platform is an `InvokeError`."""
    try:
        args = native.build_args(platform, event, context)
    except ValueError as exc:  # an event of another platform (an SQS batch to an Azure function)
        hint = f"; `events list` shows the {platform}-* samples" if platform != "aws" else ""
        raise InvokeError(f"--platform {platform}: {exc}{hint}") from exc
    if platform == "azure":  # Azure passes `context` only to functions that declare it
        try:
            wanted = len(inspect.signature(fn).parameters)
        except (TypeError, ValueError):
            wanted = len(args)
        args = args[: max(1, wanted)]
    return args


def request_id_of(platform: str, event: Mapping[str, Any], context: object) -> str:
    """The id the platform gives this invocation (Google's comes with the request or the CloudEvent)."""
    if platform == "gcp":
        headers = event.get("headers") or {}
        return str(event.get("id") or headers.get("Function-Execution-Id") or "")
    return str(getattr(context, "aws_request_id", None) or getattr(context, "invocation_id", "") or "")
