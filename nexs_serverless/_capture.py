"""The wrappers behind `Tracer.capture`: one span per call of a function, coroutine or generator.

Apart from `tracing` because they are needed only by code that decorates
functions with `tracer.capture`: `tracing` loads with the package, and this
module with the first decorated function.
"""

from __future__ import annotations

import functools
from _contextvars import copy_context

from .context import _current
from .handler import _code_flags
from .tracing import name_of

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from contextvars import Context
    from typing import Any, ParamSpec, TypeVar

    from .span import Span
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
    """`fn` with one span per call (per iteration, for a generator): what `Tracer.capture` returns.

    What calling `fn` runs decides the wrapper (`handler._code_flags`): a `functools.partial`
    or a callable object of an ``async def`` or a generator function got the plain wrapper,
    whose span ended before the coroutine or generator ran. A ``staticmethod`` or
    ``classmethod`` (``@tracer.capture`` above it) stays one, around the wrapped function:
    wrapped as it was, calling the method raised a TypeError.
    """
    if isinstance(fn, (staticmethod, classmethod)):
        method: Any = type(fn)(wrap_calls(tracer, fn.__func__, name, kind, attributes))
        return method  # type: ignore[no-any-return]
    span_name = _span_name(name, fn)
    flags = _code_flags(fn)
    start = tracer.span
    wrapper: Callable[..., Any]
    if flags & _CO_COROUTINE:

        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            with start(span_name, kind=kind, attributes=attributes):
                return await fn(*args, **kwargs)  # type: ignore[misc]

        wrapper = async_wrapper
    elif flags & _CO_ASYNC_GENERATOR:

        async def async_gen_wrapper(*args: Any, **kwargs: Any) -> Any:
            from ._relay import Entered

            span = start(span_name, kind=kind, attributes=attributes)
            context = _own_context(span)
            try:
                agen: Any = fn(*args, **kwargs)  # in the `try`: wrong arguments raise here, and end the span
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
            try:
                result = yield from relay(fn(*args, **kwargs), _own_context(span).run)  # type: ignore[arg-type]
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


def _own_context(span: Span) -> Context:
    """A captured generator's own context (see `_relay`), where its span is current.

    The span was set again at each step in the consumer's context instead: a span the
    generator entered before a ``yield`` was no longer current after it, so the spans it
    started next were parented to the wrong one.
    """
    context = copy_context()
    context.run(_current.set, span)
    return context


def _span_name(name: object, fn: object) -> str:
    """`capture`'s span name, as text, decided once at decoration.

    A name of another type (``name=42``) made the OTLP encoding of every batch
    holding one of its spans fail; a callable object or a `functools.partial`
    has no ``__qualname__`` (decorating one raised).
    """
    if name:
        return name if type(name) is str else str(name)
    return name_of(fn)
