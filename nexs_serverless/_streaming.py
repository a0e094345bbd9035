"""Generator and async generator handlers: a streamed response, whose root span covers the iteration.

Flask and functions-framework stream a generator a view returns. Its own
module: only a generator handler's decoration loads it, never a cold start's
ordinary handler.
"""

from __future__ import annotations

from _contextvars import copy_context

from . import _guard as guard
from ._relay import relay
from .handler import _drop_own_frame
from .invocation import begin, fail, finish, finish_async

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Generator
    from contextvars import Context
    from typing import Any

    from .handler import Options
    from .invocation import Invocation

__all__ = ["wrap_generator"]


def wrap_generator(fn: Callable[..., Any], options: Options, *, asynchronous: bool) -> Callable[..., Any]:
    """The wrapper of a generator (or async generator) function handler: a streamed response.

    The root span starts at the first item and ends, with the flush, when
    the iteration ends: exhausted, closed early (a client that went away: not
    an error) or raising. Values, ``send``, ``throw`` and ``close`` pass
    through as ``yield from`` passes them. The handler runs in a context of
    its own, as a task does (PEP 568's generator contexts were never added):
    the root is current while the handler's code runs and not in its
    consumer's code between items (a WSGI server writing the chunks), and
    what the handler sets in context variables lasts from one item to the
    next without leaking into the consumer. The response is not captured
    (``capture_response``): it went to the client chunk by chunk.
    """
    if asynchronous:
        return _async_generator_wrapper(fn, options)

    def gen_wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        context = copy_context()
        run = context.run
        invocation = run(begin, fn, options, args, kwargs)
        gen: Any = None
        try:
            gen = run(fn, *args, **kwargs)
            result = yield from relay(gen, run)
        except GeneratorExit:  # closed early
            _streamed(invocation, gen)
            run(finish, invocation, options)
            raise
        except BaseException as exc:
            fail(invocation, exc)
            _drop_own_frame(exc)
            run(finish, invocation, options)
            raise
        _streamed(invocation, gen)
        run(finish, invocation, options)
        return result

    return gen_wrapper


def _async_generator_wrapper(fn: Callable[..., Any], options: Options) -> Callable[..., Any]:
    """`wrap_generator` for an async generator function (``athrow`` and ``aclose`` pass through)."""

    async def async_gen_wrapper(*args: Any, **kwargs: Any) -> Any:
        context = copy_context()
        invocation = context.run(begin, fn, options, args, kwargs)
        agen: Any = None
        try:
            agen = context.run(fn, *args, **kwargs)
            step: Any = agen.asend
            arg: Any = None
            while True:
                try:
                    value = await _Entered(context, step(arg))
                except StopAsyncIteration:
                    break
                try:
                    arg = yield value
                    step = agen.asend
                except GeneratorExit:
                    await _Entered(context, agen.aclose())
                    raise
                except BaseException as exc:  # athrow(): passed on
                    step, arg = agen.athrow, exc
        except GeneratorExit:  # closed early (aclose(): awaiting is allowed, yielding is not)
            _streamed(invocation, agen)
            await _Entered(context, finish_async(invocation, options))
            raise
        except BaseException as exc:
            fail(invocation, exc)
            _drop_own_frame(exc)
            await _Entered(context, finish_async(invocation, options))
            raise
        _streamed(invocation, agen)
        await _Entered(context, finish_async(invocation, options))

    return async_gen_wrapper


class _Entered:
    """Await `awaitable` with `context` entered at each of its steps, as a task with that context would.

    The async generator handler's own context (`wrap_generator`), kept in the
    task that iterates it: a task per item would break what is bound to one
    task (a cancel scope, ``asyncio.timeout``).
    """

    __slots__ = ("_awaitable", "_context")

    def __init__(self, context: Context, awaitable: Awaitable[Any]) -> None:
        self._context = context
        self._awaitable = awaitable

    def __await__(self) -> Generator[Any, Any, Any]:
        run = self._context.run
        inner: Any = self._awaitable.__await__()
        try:
            signal = run(inner.send, None)
            while True:
                try:
                    sent = yield signal
                except GeneratorExit:  # noqa: PERF203 - one resumption per step: the loop is the await
                    run(inner.close)
                    raise
                except BaseException as exc:  # a cancellation, thrown in by the task
                    signal = run(inner.throw, exc)
                else:
                    signal = run(inner.send, sent)
        except StopIteration as stop:
            return stop.value


def _streamed(invocation: Invocation | None, stream: object) -> None:
    """Record a streamed response: what the framework answers an iterator with (Flask: 200)."""
    if invocation is None or stream is None:
        return
    try:
        if invocation.trigger.on_result is not None:
            invocation.trigger.on_result(invocation.root, stream)
    except Exception as exc:
        guard.report("record_result", exc)
