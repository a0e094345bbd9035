"""Driving a wrapped generator one step at a time, each step run through a caller's function.

`tracer.capture` (a span current while the generator's own code runs) and a
generator handler (the invocation's own context, `_streaming`) both need it:
the wrapper must be a generator itself, so that callers still see one, and the
values, ``send``, ``throw`` and ``close`` must pass through as ``yield from``
passes them.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Generator
    from typing import Any

__all__ = ["relay"]


def relay(gen: Generator[Any, Any, Any], run: Callable[..., Any]) -> Generator[Any, Any, Any]:
    """Yield what `gen` yields, each of its steps (and its ``close``) called as ``run(step, arg)``.

    Use it as ``result = yield from relay(gen, run)``: the result is `gen`'s
    return value, and an exception `gen` raises leaves through here unchanged.
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
