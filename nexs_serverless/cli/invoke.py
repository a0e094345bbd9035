"""``nexs-serverless invoke``: run a handler locally as its platform would, and keep its spans.

The handler runs in this process with the environment its platform sets
(``AWS_LAMBDA_FUNCTION_NAME``, ``AWS_REGION``, ... or Google's ``K_SERVICE``
and Azure's ``WEBSITE_SITE_NAME``), a realistic context (request id,
deadline, ARN, memory) and the event, then its spans are collected from an
in-memory exporter. The first invocation is a cold start: the handler's
module is imported after the tracer is reset, as Lambda imports it during
init. A handler that is not decorated is wrapped with `traced_handler`, as
the layer's zero-code wrapper does, so every handler shows a trace.

This module runs the invocations; importing the handler is `_invoke_load`'s
job, and what the platform passes (environment, event, context, arguments)
`_invoke_platform`'s.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import time
from pathlib import Path

from ..handler import traced_handler
from ..testing import reset
from ..testing.recorder import SpanRecorder
from ._invoke_load import InvokeError, function_name_of, load_handler
from ._invoke_platform import (
    PLATFORMS,
    arguments_for,
    context_for,
    load_event,
    patched_environ,
    platform_environ,
    request_id_of,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
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
                context = context_for(platform, name, region, memory_mb, timeout_ms)
                invocation = Invocation(index, request_id_of(platform, event, context))
                args = arguments_for(fn, platform, json.loads(json.dumps(event)), context)
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
