"""``nexs-serverless invoke``: run a handler locally as its platform would, and keep its spans.

The handler runs in this process with the environment its platform sets
(``AWS_LAMBDA_FUNCTION_NAME``, ``AWS_REGION``, ... or Google's ``K_SERVICE``
and Azure's ``WEBSITE_SITE_NAME``), a realistic context (request id,
deadline, ARN, memory) and the event, then its spans are collected from an
in-memory exporter. The first invocation is a cold start: the handler's
module is imported after the tracer is reset, as Lambda imports it during
init. A handler that is not decorated is wrapped with `traced_handler`, as
the layer's zero-code wrapper does, so every handler shows a trace.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.util
import inspect
import json
import os
import sys
import time
import traceback
from pathlib import Path

from ..handler import traced_handler
from ..testing import LambdaContext, native, reset
from ..testing._fixtures import load, names
from ..testing.context import AzureContext
from ..testing.recorder import SpanRecorder

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Mapping, Sequence
    from typing import Any

    from ..finished import FinishedSpan

__all__ = [
    "Invocation",
    "InvokeError",
    "function_name_of",
    "load_event",
    "load_handler",
    "platform_environ",
    "run",
]

PLATFORMS = ("aws", "gcp", "azure")


class InvokeError(Exception):
    """The handler or the event cannot be loaded (the message says what to fix)."""


class Invocation:
    """What one local invocation produced."""

    __slots__ = ("duration_ms", "error", "index", "request_id", "result", "spans")

    def __init__(self, index: int, request_id: str) -> None:
        self.index = index
        self.request_id = request_id
        self.result: object = None
        self.error: BaseException | None = None
        self.duration_ms = 0.0
        self.spans: list[FinishedSpan] = []

    @property
    def cold(self) -> bool:
        """True when the root span says this was a cold start."""
        return any(span.attributes.get("faas.coldstart") is True for span in self.spans)


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


def _import_file(path: Path) -> Any:
    """Import a handler file as Lambda does: its folder on ``sys.path``, module named after the file."""
    folder = str(path.parent.resolve())
    if folder not in sys.path:
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    if spec is None or spec.loader is None:
        raise InvokeError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


def function_name_of(spec: str) -> str:
    """The function name `spec` suggests, as Lambda's console would show it.

    The folder of a ``handler.py``, ``main.py`` or ``app.py``, else the
    file's or the module's last name.
    """
    target = spec.partition(":")[0]
    path = Path(target)
    if path.is_dir():
        return path.resolve().name
    if path.suffix == ".py" or path.is_file():
        return path.resolve().parent.name if path.stem in ("handler", "main", "app") else path.stem
    return target.rsplit(".", 1)[-1] or "function"


def load_handler(spec: str) -> Callable[..., Any]:
    """Import the handler `spec` names and return it.

    `spec` is ``module:function`` (``app.main:handler``, imported from the
    current directory), ``path/to/file.py[:function]`` or a folder holding
    ``handler.py``; the function defaults to ``handler``.

    Raises:
        InvokeError: when the module cannot be imported or has no such callable.
    """
    target, _, function = spec.partition(":")
    if ":" in function or not target:
        raise InvokeError(f"handler {spec!r}: expected module:function or path/to/file.py[:function]")
    function = function or "handler"
    path = Path(target)
    if path.is_dir():
        path = path / "handler.py"
    elif path.suffix != ".py" and _path_like(target) and not path.exists():  # `src/orders` is no module
        raise InvokeError(f"handler {spec!r}: no file or folder {target}")
    try:
        if path.suffix == ".py" or path.is_file():
            if not path.is_file():
                raise InvokeError(f"handler {spec!r}: no file {path}")
            module = _import_file(path)
        else:
            if "" not in sys.path and os.getcwd() not in sys.path:
                sys.path.insert(0, os.getcwd())
            module = importlib.import_module(target)
    except InvokeError:
        raise
    # SystemExit too: a module calling sys.exit() at import ended the CLI, with status 0 for exit(0),
    # as if the handler had run.
    except (Exception, SystemExit) as exc:
        message = f"handler {spec!r}: importing it failed: {type(exc).__name__}: {exc}"
        raise InvokeError(message + _where(exc)) from exc
    fn: Callable[..., Any] | None = getattr(module, function, None)
    if not callable(fn):
        raise InvokeError(f"handler {spec!r}: {module.__name__} has no function {function!r}")
    return fn


def _path_like(target: str) -> bool:
    """Whether `target` can only be a path (a module name has no slash and does not start with a dot)."""
    return "/" in target or os.sep in target or target.startswith(".")


def _where(exc: BaseException) -> str:
    """`` (file.py, line N)``: the line of the handler's code that raised, importlib's frames skipped.

    Nothing when no frame is the handler's: a module that does not exist
    raises inside importlib, whose line would send the reader to the
    standard library. A SyntaxError's message names its line already.
    """
    if isinstance(exc, SyntaxError):
        return ""
    frames = [
        frame
        for frame in traceback.extract_tb(exc.__traceback__)
        if frame.filename[:1] != "<" and not _machinery(frame.filename)
    ]
    if not frames:
        return ""
    return f" ({frames[-1].filename}, line {frames[-1].lineno})"


def _machinery(filename: str) -> bool:
    """Whether `filename` is this module or importlib's: frames of the loading, not of the handler."""
    if filename == _machinery.__code__.co_filename:
        return True
    folder = os.path.dirname(importlib.__file__ or "")
    return bool(folder) and os.path.dirname(filename) == folder


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


def _context(platform: str, function_name: str, region: str, memory_mb: int, timeout_ms: int) -> object:
    if platform == "azure":
        return AzureContext(function_name=function_name)
    return LambdaContext(
        function_name=function_name, region=region, memory_limit_in_mb=memory_mb, timeout_ms=timeout_ms
    )


def _arguments(
    fn: Callable[..., Any], platform: str, event: Mapping[str, Any], context: object
) -> tuple[Any, ...]:
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


def _exporters(names: Sequence[str]) -> list[object]:
    """Build the named exporters from the (patched) environment, as the layer would."""
    from .. import config
    from ..exporters import create

    settings = config.from_env()
    built: list[object] = []
    for name in names:
        try:
            built.append(create(name, settings))
        except Exception as exc:  # noqa: PERF203 - runs once per named exporter
            raise InvokeError(f"--exporter {name}: {type(exc).__name__}: {exc}") from exc
    return built


def _request_id(platform: str, event: Mapping[str, Any], context: object) -> str:
    """The id the platform gives this invocation (Google's comes with the request or the CloudEvent)."""
    if platform == "gcp":
        headers = event.get("headers") or {}
        return str(event.get("id") or headers.get("Function-Execution-Id") or "")
    return str(getattr(context, "aws_request_id", None) or getattr(context, "invocation_id", "") or "")


def run(
    handler_spec: str,
    event: Mapping[str, Any],
    *,
    platform: str = "aws",
    times: int = 1,
    function_name: str | None = None,
    region: str = "us-east-1",
    memory_mb: int = 128,
    timeout_ms: int = 3000,
    environ: Mapping[str, str] | None = None,
    exporters: Sequence[str] = (),
    on_init: Callable[[float], None] | None = None,
    on_invocation: Callable[[Invocation], None] | None = None,
) -> tuple[list[Invocation], float]:
    """Import the handler and invoke it `times` times with `event`.

    An async handler's invocations share one event loop, as in a worker's
    process; a generator handler (a streamed response) is read to the end,
    its chunks being the result.

    Args:
        handler_spec: as `load_handler` takes it.
        event: the event (a fresh copy is passed to each invocation).
        platform: ``aws``, ``gcp`` or ``azure``: the arguments and environment to simulate.
        times: invocations; the first is a cold start.
        function_name: the function's name (default: from the handler's file or module).
        region: the region in the environment and the ARN.
        memory_mb: the memory size in the environment and the context.
        timeout_ms: each invocation's deadline, from its start.
        environ: extra variables (``NEXS_*``, ``OTEL_*``, the handler's own), applied last.
        exporters: ``OTEL_TRACES_EXPORTER`` names of exporters that receive the
            spans too, configured from the environment (the in-memory one that
            the waterfall reads is always there).
        on_init: called with the init time once the handler is loaded.
        on_invocation: called with each invocation as soon as it ends, so
            that what the handler prints stays next to its invocation.

    Returns:
        The invocations, and the init time in ms (importing the handler's module).

    Raises:
        InvokeError: when the handler cannot be loaded, an exporter cannot be
            built, or the event does not fit the platform.
    """
    if platform not in PLATFORMS:
        raise InvokeError(f"unknown platform {platform!r}; expected one of {', '.join(PLATFORMS)}")
    target = Path(handler_spec.partition(":")[0])
    handler_dir = str((target if target.is_dir() else target.parent).resolve())
    name = function_name or function_name_of(handler_spec)
    variables = platform_environ(platform, name, region=region, memory_mb=memory_mb, handler_dir=handler_dir)
    variables.update(environ or {})
    recorder = SpanRecorder()
    invocations: list[Invocation] = []
    with patched_environ(variables):
        reset(environ=dict(os.environ), exporters=[recorder, *_exporters(exporters)])
        started = time.perf_counter()
        fn = load_handler(handler_spec)
        init_ms = (time.perf_counter() - started) * 1000.0
        if on_init is not None:
            on_init(init_ms)
        traced = traced_handler(fn)
        loop = _EventLoop()
        try:
            for index in range(times):
                context = _context(platform, name, region, memory_mb, timeout_ms)
                invocation = Invocation(index, _request_id(platform, event, context))
                args = _arguments(fn, platform, json.loads(json.dumps(event)), context)
                started = time.perf_counter()
                try:
                    result = traced(*args)
                    if inspect.isawaitable(result):
                        result = loop.run(_awaited(result))
                    # A streamed response: its invocation begins at the first chunk and ends with the last,
                    # so it is read to the end, as the platform would send it (the chunks are the result).
                    if inspect.isgenerator(result):
                        result = list(result)
                    elif inspect.isasyncgen(result):
                        result = loop.run(_drained(result))
                    invocation.result = result
                except (Exception, SystemExit) as exc:  # the handler's own error (or exit): shown, not raised
                    invocation.error = exc
                invocation.duration_ms = (time.perf_counter() - started) * 1000.0
                invocation.spans = recorder.collect()
                recorder.clear()
                invocations.append(invocation)
                if on_invocation is not None:
                    on_invocation(invocation)
        finally:
            loop.close()
    return invocations, init_ms


class _EventLoop:
    """One event loop for every invocation of a run, started by the first async handler call.

    A worker that runs async functions (Azure's, an ASGI server) keeps one
    loop for the process, and a client a handler keeps between invocations
    (``httpx.AsyncClient``, an aiobotocore session, a keep-alive task) is bound
    to it: a loop per invocation was closed under it, so every invocation after
    the first failed ("Event loop is closed") where the platform's would not.
    """

    __slots__ = ("_loop",)

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None

    def run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        """Run `coroutine` to its end in the run's loop."""
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(coroutine)

    def close(self) -> None:
        """Cancel what the handler left running, as `asyncio.run` does, and close the loop."""
        loop, self._loop = self._loop, None
        if loop is None:
            return
        try:
            tasks = asyncio.all_tasks(loop)
            for task in tasks:
                task.cancel()
            if tasks:  # `gather()` of nothing takes another loop's future
                loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


async def _drained(chunks: AsyncIterator[Any]) -> list[Any]:
    return [chunk async for chunk in chunks]
