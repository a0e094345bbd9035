"""Reset the tracer's process-wide state and capture exported spans in tests."""

from __future__ import annotations

import contextlib
import sys

from .. import _guard, _stats
from ..context import _current
from ..handler import process
from ..pool import SpanPool
from ..runtime import configure, runtime
from .recorder import SpanRecorder

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from ..baggage import Entries
    from ..model import SpanContext
    from ..span import Span

    Held = tuple[Span | SpanContext | None, Entries | None]

__all__ = ["capture_spans", "forget_instrumentation", "reset"]


def reset(*, environ: Mapping[str, str] | None = None, exporters: list[object] | None = None) -> None:
    """Forget buffered spans, counters and the cold-start state; reconfigure from `environ`.

    Opt-outs made with `nexs_serverless.instrumentation.uninstrument` are
    forgotten too, so a test that makes one does not change what the next
    test's first invocation instruments.

    Args:
        environ: the environment to configure from (default: an empty one, so
            the machine's variables cannot leak into a test).
        exporters: exporters to use instead of the environment's.
    """
    _forget()
    instrumentation = sys.modules.get("nexs_serverless.instrumentation")
    if instrumentation is not None:
        instrumentation._opted_out.clear()
    configure(exporters=exporters, environ=environ if environ is not None else {})


def _forget() -> None:
    """Drop buffered spans, counters, logged-once reports and the cold-start state."""
    runtime.buffer.drop_all()
    _stats.reset()
    runtime.pool = SpanPool(runtime.pool.size)  # its hit, miss and recycle counts start at zero too
    _guard.forget()
    process.reset()


def forget_instrumentation() -> None:
    """Undo the first invocation's automatic instrumentation, so the next one installs it afresh.

    Opt-outs made with `nexs_serverless.instrumentation.uninstrument` are
    forgotten, and the removal makes none of its own: the next first
    invocation installs what a cold start of a fresh process would. Only
    modules already loaded are touched: resetting never imports them.
    """
    instrumentation = sys.modules.get("nexs_serverless.instrumentation")
    if instrumentation is not None:
        instrumentation._forget()
    invocation = sys.modules.get("nexs_serverless.invocation")
    if invocation is not None:
        invocation._instrumented.clear()


def _clear_context() -> Held:
    """Make no span current and drop the baggage, as in a fresh process; returns what was there.

    A test that enters a span and never leaves it (or sets baggage) changes
    the context pytest runs every later test in: their spans became children
    of that span, in its trace, and `assert_span(parent=None)` still passed.
    """
    baggage = sys.modules.get("nexs_serverless.baggage")  # never loaded by resetting
    held: Held = (_current.get(), None if baggage is None else baggage._entries.get())
    _current.set(None)
    if baggage is not None:
        baggage._entries.set(baggage._EMPTY)
    return held


def _restore_context(held: Held) -> None:
    """Put back the current span and baggage `_clear_context` found."""
    span, entries = held
    _current.set(span)
    baggage = sys.modules.get("nexs_serverless.baggage")
    if baggage is not None:
        baggage._entries.set(baggage._EMPTY if entries is None else entries)


@contextlib.contextmanager
def capture_spans(*, environ: Mapping[str, str] | None = None) -> Iterator[SpanRecorder]:
    """Route every export to a fresh `SpanRecorder` for the duration of the block.

    Inside the block the tracer is configured from `environ` (default: an
    empty environment, so the machine's variables cannot leak into a test)
    and starts cold, with no buffered spans and counters at zero, no span
    current and no baggage (what the block leaves current is dropped on exit,
    and what was current before comes back); its first
    invocation installs the automatic instrumentation as a cold start does
    (honouring an `uninstrument` made before the block, as a cold start
    honours one made at import).
    On exit what the block left is dropped (spans, counters, the cold-start
    state), the instrumentation is removed (what `instrument()` installed
    earlier too: call it inside the test if the test needs it) and every
    `uninstrument` opt-out forgotten, and the
    tracer gets back the configuration it had before the block (its
    environment, exporters set in code), so nothing leaks into the code that
    runs next.
    """
    exporter = SpanRecorder()
    settings, explicit = runtime.settings, runtime._explicit
    invocation = sys.modules.get("nexs_serverless.invocation")
    if invocation is not None:  # the block's first invocation instruments, with the block's settings
        invocation._instrumented.clear()
    _forget()
    held = _clear_context()
    runtime.set_exporters([exporter], shut_down_replaced=False)  # the caller's, given back on exit
    configure(environ=environ if environ is not None else {})
    try:
        yield exporter
    finally:
        # What ended in the block but was not flushed yet reaches the recorder before the reset:
        # `spans.collect()` after the block must not come back empty.
        exporter.collect()
        forget_instrumentation()
        _forget()
        _restore_context(held)
        runtime.set_exporters(explicit)
        runtime.apply(settings)
