"""`Incoming`: everything one carrier brought, and making it current for an invocation.

A carrier brings more than a span context: W3C baggage, and X-Ray keys we
must pass on unchanged (``Lineage``, which Lambda uses to stop recursive
loops, and keys we do not know). `extract_incoming` collects all of it; the
invocation that adopts the context calls `activate`, so that baggage is
readable through `nexs_serverless.baggage` and the X-Ray keys are written
again on the way out, for the same trace only.
"""

from __future__ import annotations

from _contextvars import ContextVar

TYPE_CHECKING = False
if TYPE_CHECKING:
    from contextvars import Token

    from ..model import SpanContext

__all__ = ["Incoming", "activate", "deactivate", "extra", "receiver_decides"]

# format name -> (trace id the value belongs to, value to write back)
Extras = dict[str, tuple[int, str]]

_extras: ContextVar[Extras | None] = ContextVar("nexs_propagation_extras", default=None)


class Incoming:
    """What a carrier brought.

    Attributes:
        context: the remote span context, or None when the carrier had none valid.
        baggage: W3C baggage entries (name -> (value, metadata)), or None.
        extras: per-format values to write back unchanged for this trace, or None.
    """

    __slots__ = ("baggage", "context", "extras")

    def __init__(self, context: SpanContext | None = None) -> None:
        self.context = context
        self.baggage: dict[str, tuple[str, str]] | None = None
        self.extras: Extras | None = None

    def __repr__(self) -> str:
        return f"Incoming(context={self.context!r}, baggage={self.baggage!r}, extras={self.extras!r})"


def activate(incoming: Incoming) -> tuple[object, object]:
    """Make `incoming`'s baggage and extras current; returns tokens for `deactivate`.

    `baggage` loads only when there is some: most invocations carry none.
    """
    baggage_token: object = None
    if incoming.baggage is not None:
        from .. import baggage

        baggage_token = baggage.attach(incoming.baggage)
    extras_token = _extras.set(incoming.extras)
    return baggage_token, extras_token


def deactivate(tokens: tuple[object, object]) -> None:
    """Undo `activate`."""
    baggage_token, extras_token = tokens
    if baggage_token is not None:
        from .. import baggage

        baggage.detach(baggage_token)  # type: ignore[arg-type]
    try:
        _extras.reset(extras_token)  # type: ignore[arg-type]
    except (ValueError, RuntimeError):  # a token of another context, or one already used
        _extras.set(None)


def extra(name: str, trace_id: int) -> str | None:
    """The value format `name` must write back for trace `trace_id`, if any."""
    extras = _extras.get()
    if not extras:
        return None
    found = extras.get(name)
    if found is None or found[0] != trace_id:
        return None
    return found[1]


def set_extras(extras: Extras | None) -> Token[Extras | None]:
    """Make `extras` current (tests and the OpenTelemetry bridge); returns the token."""
    return _extras.set(extras)


def receiver_decides(trace_id: int) -> int:
    """The sampled flag for a context whose sender left the decision to us: a new trace's, for its id.

    X-Ray's ``Sampled=?`` (or no ``Sampled``) and B3's deferred state (no sampled field).

    The configured sampler decides as it would for a root (a parent-based one by
    its root sampler), so the span that continues the trace is recorded or not
    as a root with that id would be, whatever the sampler does with the remote
    parent's flag afterwards (it follows it, or decides from the id again).
    """
    from ..runtime import runtime

    sampler = runtime.sampler
    return 1 if sampler is None or sampler.should_sample(trace_id, None) else 0
