"""A span entered again while its `with` is open, or exited in another context; loaded only then.

Why a module of its own: the common ``with tracer.span(...)`` sets one token on
enter and resets it on exit, in the same context. Entering a span that is
already current (``with span:`` twice, ``with parent:`` in a worker thread or
task) or exiting it where the token cannot be reset (a generator moved
threads, a framework ran the exit in a copy of the context) is rare, and a
cold start should not load the code that sorts the tokens out (issue #5):
`span` imports this module inside the branch that meets one of these cases.
"""

from __future__ import annotations

from _thread import allocate_lock

from .context import _current

TYPE_CHECKING = False
if TYPE_CHECKING:
    from contextvars import Token

    from .model import SpanContext
    from .span import Span

    _Token = Token[Span | SpanContext | None]

__all__ = ["enter_again", "exit_elsewhere"]

# Bound once: a method looked up on every call costs an allocation (see `span._bind_context`).
_set_current = _current.set
_reset_current = _current.reset
# Guards a span's tokens while it is entered again or exited elsewhere.
_tokens_lock = allocate_lock()


def enter_again(span: Span) -> None:
    """Entered while a `with` on it is open: keep every token, for the exits to sort out.

    Inside its own `with` (same context), the first exit (which ends the span) resets them
    all, newest first, restoring what the outermost `with` replaced. In another thread or
    task (``with parent:`` in a worker), that context's exit resets its own token and keeps
    the others: keeping only the first `with`'s token let the worker's exit use it (it failed
    there, and cleared the worker's current span) and left the first context's span current
    after its `with` had exited.
    """
    token = _set_current(span)
    with _tokens_lock:  # against another thread's re-entry (the first `with`'s exit takes no lock)
        span._token = _joined([token], span._token, last=True)


def exit_elsewhere(span: Span, held: _Token | list[_Token]) -> None:
    """Reset the tokens set in this context, newest first; keep the others for their exits.

    A token from another context (a generator moved threads, a framework ran the `with`'s
    exit in a copy of the context, another thread's `with` is still open) cannot be reset
    here. This context's current span is then left alone unless it is this span, which gives
    way to what the `with` replaced; setting None unconditionally cleared the current span of
    whatever else was running in this context.

    Limitation: many threads entering and exiting the same span at the same moment can still
    lose a token (the first `with`'s enter and exit take no lock: they are the per-span hot
    path); that thread then returns to no span, or to the span the `with` replaced.
    """
    tokens: list[_Token] = held if isinstance(held, list) else [held]
    kept: list[_Token] = []
    restored = False
    for token in reversed(tokens):
        outcome = _try_reset(token)
        if outcome is None:  # another context's
            kept.append(token)
        restored = restored or outcome is True
    if kept:
        kept.reverse()
        with _tokens_lock:  # another thread may have entered it since the exit took the tokens
            span._token = _joined(kept, span._token, last=False)
    if not restored and _current.get() is span:
        # One token: this context is a copy of the one its `with` ran in, and what that `with`
        # replaced is the right span to return to. Several: whose is unknown, so none.
        previous = tokens[0].old_value if len(tokens) == 1 else None
        _set_current(None if previous is tokens[0].MISSING else previous)


def _joined(tokens: list[_Token], held: _Token | list[_Token] | None, *, last: bool) -> _Token | list[_Token]:
    """`held` (what a span's `_token` is now) with `tokens` added after it (`last`) or before it."""
    existing = [] if held is None else held if isinstance(held, list) else [held]
    joined = [*existing, *tokens] if last else [*tokens, *existing]
    return joined[0] if len(joined) == 1 else joined


def _try_reset(token: _Token) -> bool | None:
    """Reset `token`: True when done, None when it belongs to another context, False when used already."""
    try:
        _reset_current(token)
    except ValueError:
        return None
    except RuntimeError:  # used already (the bridge's detach, say): nothing to restore
        return False
    return True
