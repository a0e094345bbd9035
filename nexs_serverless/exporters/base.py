"""The exporter contract, shaped like OpenTelemetry's `SpanExporter`.

An exporter has three methods: ``export(spans) -> ExportResult``,
``force_flush(timeout_millis) -> bool`` and ``shutdown()``. The spans passed to
`export` are valid only during the call (records are recycled by the pool
afterwards): an exporter that keeps spans stores `freeze(span)` copies.
While `export` runs, instrumentation is suppressed and
`nexs_serverless.context.remaining_export_s()` gives the time left in the
flush budget; network exporters cap their own timeout with it. A None
result (an `export` without ``return``) is read as SUCCESS (`succeeded`).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import ClassVar

    from ..typing import ReadableSpan

__all__ = ["ExportResult", "Sent", "outcome", "send_once", "succeeded"]


class ExportResult:
    """Outcome of one `export` call: `SUCCESS` or `FAILURE`, with OpenTelemetry's `SpanExportResult` values.

    Two singletons with `name` and `value`, compared by identity, rather than an
    `enum.Enum`: creating an enum class costs about 0.4 M instructions, a tenth
    of what building the OTLP exporter adds to a cold start. Results are read by
    `name` everywhere (`SUCCESS`), so an exporter may return the SDK's enum too.
    """

    __slots__ = ("name", "value")

    SUCCESS: ClassVar[ExportResult]
    FAILURE: ClassVar[ExportResult]

    def __init__(self, name: str, value: int) -> None:
        self.name = name
        self.value = value

    def __repr__(self) -> str:
        return f"<ExportResult.{self.name}: {self.value}>"

    def __reduce__(self) -> str:
        return f"ExportResult.{self.name}"  # pickles as the singleton


ExportResult.SUCCESS = ExportResult("SUCCESS", 0)
ExportResult.FAILURE = ExportResult("FAILURE", 1)


class Sent:
    """A `send` that dropped spans itself: how many the back end `rejected`, how many we `dropped`.

    `send` returns the number of spans the back end rejected (an int) when every
    span it was given went out; this when it also dropped some before sending
    (too big for any request, impossible to convert), each already counted under
    its reason (``spans_dropped_oversize``, ``spans_dropped_serialization``).
    The wrapper needs both numbers to count each span once: sent, rejected, or
    dropped (before, a dropped span was also counted ``export_spans_sent``).
    """

    __slots__ = ("dropped", "rejected")

    def __init__(self, rejected: int = 0, dropped: int = 0) -> None:
        self.rejected = rejected
        self.dropped = dropped

    def __repr__(self) -> str:
        return f"Sent(rejected={self.rejected}, dropped={self.dropped})"

    @staticmethod
    def of(rejected: int, dropped: int) -> int | Sent:
        """The plain int when nothing was dropped (the usual answer), else a `Sent`."""
        return Sent(rejected, dropped) if dropped else rejected


def outcome(result: int | Sent | None) -> tuple[int, int]:
    """``(rejected, dropped)`` of what a `send` returned (None, from one that returns nothing: none)."""
    if result is None:
        return 0, 0
    if isinstance(result, Sent):
        return max(0, result.rejected), max(0, result.dropped)
    return int(result), 0


def succeeded(result: object, exporter_name: str) -> bool:
    """Whether an `export` result says the spans went out: SUCCESS (ours or the SDK's), or None.

    None is what an `export` without a ``return`` gives: it ran to its end
    (raising is how it would fail). Read as a failure, its spans were sent again
    at every later flush and its breaker opened. Logged once per class.
    """
    if getattr(result, "name", "") == "SUCCESS":
        return True
    if result is not None:
        return False
    from .. import _guard as guard

    guard.warn_once(
        "export_returned_none:" + exporter_name,
        "nexs_serverless: %s.export returned None; taken as SUCCESS (return an ExportResult)",
        exporter_name,
    )
    return True


def send_once(
    name: str,
    send: Callable[[Sequence[ReadableSpan], float], int | Sent | None],
    spans: Sequence[ReadableSpan],
    timeout_s: float,
) -> ExportResult:
    """`export()` for an exporter with a `send` seam, used without `ResilientExporter`.

    One attempt within the flush deadline: a failure is classified, counted and
    logged once per class, never raised; spans the back end rejected are counted.
    """
    from .. import _guard as guard
    from .. import _stats as stats
    from ..context import remaining_export_s
    from .errors import classify

    try:
        rejected, _ = outcome(send(spans, remaining_export_s(timeout_s)))  # drops: counted by `send`
    except Exception as exc:
        error = classify(exc)
        stats.incr("export_errors_" + error.error_class)
        guard.warn_once(
            f"{name}:{error.error_class}",
            "nexs_serverless: %s export failed (%s): %s",
            name,
            error.error_class,
            error,
        )
        return ExportResult.FAILURE
    if rejected:
        stats.incr("export_spans_rejected", rejected)
    return ExportResult.SUCCESS
