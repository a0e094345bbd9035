"""Driving a wrapped generator one step at a time, each step run in the generator's own context.

`tracer.capture` (its span current while the generator's own code runs) and a
generator handler (the invocation's root, `_streaming`) both need it: the
wrapper must be a generator itself, so that callers still see one, and the
values, ``send``, ``throw`` and ``close`` must pass through as ``yield from``
passes them. Each runs the wrapped generator in a context of its own, as a
task does (PEP 568's generator contexts were never added): what the
generator's code sets (a span it entered before a ``yield``) is still set when
it resumes, and none of it leaks into its consumer's code between items.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Generator
    from contextvars import Context
    from typing import Any

__all__ = ["Entered", "relay"]


def relay(gen: Generator[Any, Any, Any], run: Callable[..., Any]) -> Generator[Any, Any, Any]:
    """Yield what `gen` yields, each of its steps (and its ``close``) called as ``run(step, arg)``.

    Use it as ``result = yield from relay(gen, context.run)``: the result is
    `gen`'s return value, and an exception `gen` raises leaves through here unchanged.
    """
    step: Any = gen.send
    arg: Any = None
    while True:
        try:
            value = run(step, arg)
        except StopIteration as stop:
            return stop.value
        try:
            arg = yield value
            step = gen.send
        except GeneratorExit:
            run(gen.close)
            raise
        except BaseException as exc:  # throw(): passed on, as `yield from` does
            step, arg = gen.throw, exc


class Entered:
    """Await `awaitable` with `context` entered at each of its steps, as a task with that context would.

    The async generator's own context (see the module's docstring), kept in
    the task that iterates it: a task per item would break what is bound to
    one task (a cancel scope, ``asyncio.timeout``).
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
