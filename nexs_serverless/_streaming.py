"""Generator and async generator handlers: a streamed response, whose root span covers the iteration.

Flask and functions-framework stream a generator a view returns. Its own
module: only a generator handler's decoration loads it, never a cold start's
ordinary handler.
"""

from __future__ import annotations

from _contextvars import copy_context

from . import _guard as guard
from ._relay import Entered, relay
from .handler import _drop_own_frame
from .invocation import begin, fail, finish, finish_async

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Generator
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
            _drop_own_frames(exc)
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
                    value = await Entered(context, step(arg))
                except StopAsyncIteration:
                    break
                try:
                    arg = yield value
                    step = agen.asend
                except GeneratorExit:
                    await Entered(context, agen.aclose())
                    raise
                except BaseException as exc:  # athrow(): passed on
                    step, arg = agen.athrow, exc
        except GeneratorExit:  # closed early (aclose(): awaiting is allowed, yielding is not)
            _streamed(invocation, agen)
            await Entered(context, finish_async(invocation, options))
            raise
        except BaseException as exc:
            fail(invocation, exc)
            _drop_own_frames(exc)
            await Entered(context, finish_async(invocation, options))
            raise
        _streamed(invocation, agen)
        await Entered(context, finish_async(invocation, options))

    return async_gen_wrapper


# The frames that stand between a generator handler's wrapper and the handler's own code.
_RELAY_FRAMES = (relay.__code__, Entered.__await__.__code__)


def _drop_own_frames(exc: BaseException) -> None:
    """`handler._drop_own_frame` for the wrapper's frame and the relay's under it (``relay``, ``__await__``).

    Left in, they led the traceback of every exception the handler raised, which the runtime
    reports as it would without us from the handler's own frame on.
    """
    _drop_own_frame(exc)
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None and tb.tb_frame.f_code in _RELAY_FRAMES:
        tb = tb.tb_next
    exc.__traceback__ = tb


def _streamed(invocation: Invocation | None, stream: object) -> None:
    """Record a streamed response: what the framework answers an iterator with (Flask: 200)."""
    if invocation is None or stream is None:
        return
    try:
        if invocation.trigger.on_result is not None:
            invocation.trigger.on_result(invocation.root, stream)
    except Exception as exc:
        guard.report("record_result", exc)
