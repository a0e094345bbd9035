"""The current span, carried in `contextvars` so threads and `await` parent correctly.

Four context variables: the current span (or a remote `SpanContext` that an
invocation continues), whether instrumentation is suppressed (set while
exporting, so an exporter's own HTTP call is never traced), the deadline
of the flush in progress (exporters cap their socket timeouts with it), and
the deadline of the invocation in progress (a flush asked for inside the
handler ends before it).
"""

from __future__ import annotations

import time

# `_contextvars` is what `contextvars` re-exports; importing it directly saves
# a module load on the cold path (`contextvars.py` is one `import *` line).
from _contextvars import ContextVar, copy_context

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import ParamSpec, TypeVar

    from .model import SpanContext
    from .span import Span

    P = ParamSpec("P")
    R = TypeVar("R")

__all__ = ["current_span", "export_deadline", "remaining_export_s", "suppressed", "wrap"]

_current: ContextVar[Span | SpanContext | None] = ContextVar("nexs_current_span", default=None)
_suppressed: ContextVar[bool] = ContextVar("nexs_suppressed", default=False)
_deadline: ContextVar[float] = ContextVar("nexs_export_deadline", default=0.0)
# `time.monotonic()` value by which the current invocation must return (0: none known), set by
# `invocation.begin` from the platform's remaining time. `flush()` called inside the handler, and
# the OpenTelemetry bridge's `force_flush(30000)`, took their whole budget past it: the platform
# then ended the invocation as timed out, its result lost.
_invocation_deadline: ContextVar[float] = ContextVar("nexs_invocation_deadline", default=0.0)


def current_span() -> Span | None:
    """The innermost active span of this thread or task, or None."""
    value = _current.get()
    if value is None or not hasattr(value, "end"):
        return None
    return value  # type: ignore[return-value]


def current_parent() -> Span | SpanContext | None:
    """What a new span would take as parent: a local span or a remote context."""
    return _current.get()


def wrap(fn: Callable[P, R]) -> Callable[P, R]:
    """Bind `fn` to the current context, for `ThreadPoolExecutor.submit` and threads.

    Each call runs in its own copy of the context captured here, so the same
    wrapped function may run in several threads at once and spans it starts
    are children of the span that was current when `wrap` was called.
    """
    captured = copy_context()

    def run_in_context(*args: P.args, **kwargs: P.kwargs) -> R:
        return captured.copy().run(fn, *args, **kwargs)

    run_in_context.__wrapped__ = fn  # type: ignore[attr-defined]
    return run_in_context


def suppressed() -> bool:
    """True while the tracer itself is exporting: instrumentations must not trace."""
    return _suppressed.get()


class _Exporting:
    """Marks the enclosed block as the tracer's own work with a deadline."""

    __slots__ = ("_deadline", "_tokens")

    def __init__(self, deadline: float) -> None:
        self._deadline = deadline
        self._tokens: tuple[object, object] | None = None

    def __enter__(self) -> None:
        self._tokens = (_suppressed.set(True), _deadline.set(self._deadline))

    def __exit__(self, *exc: object) -> None:
        if self._tokens is not None:
            suppressed_token, deadline_token = self._tokens
            _suppressed.reset(suppressed_token)  # type: ignore[arg-type]
            _deadline.reset(deadline_token)  # type: ignore[arg-type]


def exporting(deadline: float) -> _Exporting:
    """Context manager for a flush: suppress instrumentation, publish the deadline."""
    return _Exporting(deadline)


def export_deadline() -> float:
    """`time.monotonic()` value by which the current export must finish (0: none)."""
    return _deadline.get()


def remaining_export_s(default_s: float) -> float:
    """Seconds an exporter may spend now: its own timeout capped by the flush deadline."""
    deadline = _deadline.get()
    if not deadline:
        return default_s
    return max(0.0, min(default_s, deadline - time.monotonic()))
