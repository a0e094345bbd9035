"""`@traced_handler`: the decorator users put on their handler.

This module is on the import path, so it holds only the decorator and the
process facts that must be stamped at import (when the package was loaded);
the per-invocation machinery lives in `invocation` and loads on the first
call. The decorator's closure holds setup only: nothing about one invocation
is stored on it, so concurrent and nested invocations cannot mix.
"""

from __future__ import annotations

import functools
import time
from _thread import allocate_lock

from .runtime import runtime

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import ModuleType
    from typing import Any, ParamSpec, TypeVar, overload

    P = ParamSpec("P")
    R = TypeVar("R")

__all__ = ["ProcessState", "process", "traced_handler"]

_CO_GENERATOR = 0x0020
_CO_COROUTINE = 0x0080
_CO_ASYNC_GENERATOR = 0x0200
_MARK = "__nexs_traced__"


class ProcessState:
    """When this package was imported and how many invocations the process has served.

    One object that tests reset (`nexs_serverless.testing`), rather than a
    module-global cold-start flag they must patch.
    """

    __slots__ = ("_lock", "active", "exit_hook_installed", "import_monotonic", "invocations", "live_traces")

    def __init__(self) -> None:
        self.import_monotonic = time.monotonic()
        self.invocations = 0
        self.active = 0  # traced calls begun and not finished (more than one: nested)
        self.exit_hook_installed = False
        # trace id -> invocations of it begun and not finished: their running spans are in use,
        # never "abandoned" (`SpanBuffer.take_ended`), however many requests run at once.
        self.live_traces: dict[int, int] = {}
        self._lock = allocate_lock()

    def reset(self) -> None:
        """Make the next invocation a cold start again."""
        self.import_monotonic = time.monotonic()
        self.invocations = 0
        self.active = 0
        self.live_traces.clear()

    def began(self, trace_id: int) -> None:
        """An invocation of `trace_id` started."""
        with self._lock:
            self.active += 1
            live = self.live_traces
            live[trace_id] = live.get(trace_id, 0) + 1

    def ended(self, trace_id: int) -> None:
        """An invocation of `trace_id` finished."""
        with self._lock:
            self.active -= 1
            live = self.live_traces
            left = live.get(trace_id, 0) - 1
            if left > 0:
                live[trace_id] = left
            else:
                live.pop(trace_id, None)


process = ProcessState()


class Options:
    """The decorator's arguments, validated once at decoration time."""

    __slots__ = ("capture_event", "capture_response", "flush_timeout_ms", "name")

    def __init__(
        self,
        name: str | None,
        capture_response: bool | None,
        capture_event: bool | None,
        flush_timeout_ms: int | None,
    ) -> None:
        if flush_timeout_ms is not None and (type(flush_timeout_ms) is not int or flush_timeout_ms < 1):
            raise ValueError(f"flush_timeout_ms must be a positive int, got {flush_timeout_ms!r}")
        if name is not None and (not isinstance(name, str) or not name):
            raise ValueError(f"name must be a non-empty str, got {name!r}")
        # Capture is a privacy choice: "false" is a truthy string, so only True, False or None.
        for option, value in (("capture_response", capture_response), ("capture_event", capture_event)):
            if value is not None and type(value) is not bool:
                raise ValueError(f"{option} must be True, False or None, got {value!r}")
        self.name = name
        self.capture_response = capture_response
        self.capture_event = capture_event
        self.flush_timeout_ms = flush_timeout_ms


if TYPE_CHECKING:

    @overload
    def traced_handler(fn: Callable[P, R], /) -> Callable[P, R]: ...

    @overload
    def traced_handler(
        fn: None = None,
        /,
        *,
        name: str | None = None,
        capture_response: bool | None = None,
        capture_event: bool | None = None,
        flush_timeout_ms: int | None = None,
    ) -> Callable[[Callable[P, R]], Callable[P, R]]: ...


def traced_handler(
    fn: Callable[P, R] | None = None,
    /,
    *,
    name: str | None = None,
    capture_response: bool | None = None,
    capture_event: bool | None = None,
    flush_timeout_ms: int | None = None,
) -> Callable[P, R] | Callable[[Callable[P, R]], Callable[P, R]]:
    """Trace a serverless handler: a root span per call, FaaS attributes, flush on return.

    Works bare (``@traced_handler``) or with options, on plain and ``async
    def`` handlers (whose flush runs in the event loop's default executor, so
    other coroutines go on meanwhile; it still ends before the handler's
    awaitable returns), and on generator and async generator functions (a
    streamed response), whose root span covers the iteration and flushes when
    it ends: exhausted, closed early or raising. A plain function that returns
    a generator is traced until it returns, not while the generator is
    iterated (decorate the generator function itself). Wrapping twice is a
    no-op, and with the kill switch on at decoration time
    (``OTEL_SDK_DISABLED=true`` or ``NEXS_DISABLED=true``) the function is
    returned unchanged, so tracing then costs nothing.

    Args:
        fn: the handler, when used bare.
        name: root span name (default: the HTTP route, else the function name).
        capture_response: record the return value as ``nexs.response``
            (default ``NEXS_CAPTURE_RESPONSE``).
        capture_event: record the event as ``nexs.event`` (default ``NEXS_CAPTURE_EVENT``).
        flush_timeout_ms: flush budget (default ``NEXS_FLUSH_TIMEOUT_MS``), always
            capped by the invocation's remaining time minus a safety margin.

    Raises:
        ValueError: for an invalid option (at decoration time).
    """
    options = Options(name, capture_response, capture_event, flush_timeout_ms)
    if fn is None:
        return lambda f: _decorate_any(f, options)
    decorated: Callable[P, R] = _decorate_any(fn, options)
    return decorated


def _decorate_any(fn: Any, options: Options) -> Any:
    """`_decorate`, keeping a ``staticmethod`` or ``classmethod`` one (``@traced_handler`` above it)."""
    if isinstance(fn, (staticmethod, classmethod)):
        return type(fn)(_decorate(fn.__func__, options))
    if not callable(fn):
        raise ValueError(f"traced_handler decorates a callable, got {fn!r}")
    return _decorate(fn, options)


_machinery: list[ModuleType] = []


def _invocation() -> ModuleType:
    """The per-invocation module, imported on the first call."""
    if not _machinery:
        from . import invocation

        _machinery.append(invocation)
    return _machinery[0]


def _drop_own_frame(exc: BaseException) -> None:
    """Leave the wrapper's frame out of the traceback, so the runtime reports what it would without us.

    (On Python 3.11+ a bare ``raise`` keeps the traceback as set here; 3.10 adds the frame back.)
    """
    tb = exc.__traceback__
    if tb is not None and tb.tb_next is not None:
        exc.__traceback__ = tb.tb_next


def _code_flags(fn: object) -> int:
    """The ``co_flags`` of what calling `fn` runs: whether it returns a coroutine or a generator.

    Those need a root span that lasts until the awaitable finishes or the
    iteration ends, not until `fn` returns. `fn` is a function, a
    `functools.partial` of one, or an object whose ``__call__`` is one. Read
    from the code object, so that `inspect` is not imported on the cold path.
    """
    target = fn
    while isinstance(target, (functools.partial, staticmethod, classmethod)):
        target = target.func if isinstance(target, functools.partial) else target.__func__
    code = getattr(target, "__code__", None)
    if code is None:
        call = type(target).__call__ if callable(target) else None
        code = getattr(call, "__code__", None)
    flags = getattr(code, "co_flags", 0)
    return flags if type(flags) is int else 0


def _start_extension() -> bool:
    """`extension.start` (loaded only in after-response mode); False when it is not running."""
    from .extension import start

    return start()


def _decorate(fn: Callable[P, R], options: Options) -> Callable[P, R]:
    if getattr(fn, _MARK, False) or runtime.settings.disabled:
        return fn
    # The internal extension must register during init, before the runtime's first `next`.
    # Registered, it builds and connects the exporters itself after the first response, where
    # the caller does not wait: a preparation thread now would only take turns with the rest
    # of init and the first invocation on the function's CPU, and with the register call.
    if runtime.settings.flush_mode != "after_response" or not _start_extension():
        try:
            runtime.prepare_exporters()  # a network exporter connects in the background during init
        except Exception:  # noqa: S110 # pragma: no cover - tracing setup never breaks a handler's import
            pass
    wrapper: Callable[..., Any]
    flags = _code_flags(fn)
    if flags & (_CO_GENERATOR | _CO_ASYNC_GENERATOR):
        # A streamed response (Flask and functions-framework stream a generator a view returns):
        # the root covers the iteration. Rare, so its wrappers load only here (`_streaming`).
        from ._streaming import wrap_generator

        wrapper = wrap_generator(fn, options, asynchronous=bool(flags & _CO_ASYNC_GENERATOR))
    elif flags & _CO_COROUTINE:

        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            machinery = _machinery[0] if _machinery else _invocation()
            invocation = machinery.begin(fn, options, args, kwargs)
            try:
                result = await fn(*args, **kwargs)  # type: ignore[misc]
            except GeneratorExit as exc:  # closed unfinished (`coroutine.close()`): it may not await again
                machinery.fail(invocation, exc)
                machinery.finish(invocation, options)
                raise
            except BaseException as exc:
                machinery.fail(invocation, exc)
                _drop_own_frame(exc)
                await machinery.finish_async(invocation, options)  # the flush runs off the loop's thread
                raise
            machinery.succeed(invocation, result)
            await machinery.finish_async(invocation, options)
            return result

        wrapper = async_wrapper
    else:

        def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
            machinery = _machinery[0] if _machinery else _invocation()
            invocation = machinery.begin(fn, options, args, kwargs)
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                machinery.fail(invocation, exc)
                _drop_own_frame(exc)
                raise
            else:
                machinery.succeed(invocation, result)
            finally:
                machinery.finish(invocation, options)
            return result

        wrapper = sync_wrapper
    wrapped: Callable[P, R] = functools.wraps(fn)(wrapper)
    setattr(wrapped, _MARK, True)
    return wrapped
