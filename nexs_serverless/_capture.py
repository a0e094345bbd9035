"""The wrappers behind `Tracer.capture`: one span per call of a function, coroutine or generator.

Apart from `tracing` because they are needed only by code that decorates
functions with `tracer.capture`: `tracing` loads with the package, and this
module with the first decorated function.
"""

from __future__ import annotations

import functools

from .context import _current
from .tracing import name_of

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any, ParamSpec, TypeVar

    from .tracing import Tracer

    P = ParamSpec("P")
    R = TypeVar("R")

__all__ = ["wrap_calls"]

_CO_COROUTINE = 0x0080
_CO_GENERATOR = 0x0020
_CO_ASYNC_GENERATOR = 0x0200


def wrap_calls(
    tracer: Tracer,
    fn: Callable[P, R],
    name: object,
    kind: int,
    attributes: Mapping[str, object] | None,
) -> Callable[P, R]:
    """`fn` with one span per call (per iteration, for a generator): what `Tracer.capture` returns."""
    span_name = _span_name(name, fn)
    flags = getattr(getattr(fn, "__code__", None), "co_flags", 0)
    start = tracer.span
    wrapper: Callable[..., Any]
    if flags & _CO_COROUTINE:

        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            with start(span_name, kind=kind, attributes=attributes):
                return await fn(*args, **kwargs)  # type: ignore[misc]

        wrapper = async_wrapper
    elif flags & _CO_ASYNC_GENERATOR:

        async def async_gen_wrapper(*args: Any, **kwargs: Any) -> Any:
            span = start(span_name, kind=kind, attributes=attributes)
            agen: Any = fn(*args, **kwargs)
            step: Any = agen.asend
            arg: Any = None
            try:
                while True:
                    token = _current.set(span)  # current while the generator's own code runs
                    try:
                        value = await step(arg)
                    except StopAsyncIteration:
                        break
                    finally:
                        _current.reset(token)
                    try:
                        arg = yield value
                        step = agen.asend
                    except GeneratorExit:
                        token = _current.set(span)
                        try:
                            await agen.aclose()
                        finally:
                            _current.reset(token)
                        raise
                    except BaseException as exc:  # athrow(): passed on, as `async for` would not
                        step, arg = agen.athrow, exc
            except BaseException as exc:
                span.__exit__(type(exc), exc, exc.__traceback__)
                raise
            span.__exit__(None, None, None)

        wrapper = async_gen_wrapper
    elif flags & _CO_GENERATOR:

        def gen_wrapper(*args: Any, **kwargs: Any) -> Any:
            from ._relay import relay

            span = start(span_name, kind=kind, attributes=attributes)

            def in_span(call: Callable[..., Any], *call_args: Any) -> Any:
                token = _current.set(span)  # current while the generator's own code runs
                try:
                    return call(*call_args)
                finally:
                    _current.reset(token)

            try:
                result = yield from relay(fn(*args, **kwargs), in_span)  # type: ignore[arg-type]
            except BaseException as exc:
                span.__exit__(type(exc), exc, exc.__traceback__)
                raise
            span.__exit__(None, None, None)
            return result

        wrapper = gen_wrapper
    else:

        def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
            with start(span_name, kind=kind, attributes=attributes):
                return fn(*args, **kwargs)

        wrapper = sync_wrapper
    wrapped: Callable[P, R] = functools.wraps(fn)(wrapper)
    return wrapped


def _span_name(name: object, fn: object) -> str:
    """`capture`'s span name, as text, decided once at decoration.

    A name of another type (``name=42``) made the OTLP encoding of every batch
    holding one of its spans fail; a callable object or a `functools.partial`
    has no ``__qualname__`` (decorating one raised).
    """
    if name:
        return name if type(name) is str else str(name)
    return name_of(fn)
