"""`InMemoryExporter`: keeps frozen copies of exported spans, for tests."""

from __future__ import annotations

import threading

from ..finished import FinishedSpan, freeze
from .base import ExportResult

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..config import Settings
    from ..span import Span

__all__ = ["InMemoryExporter", "from_settings"]


class InMemoryExporter:
    """Collects every exported span in memory.

    Args:
        max_spans: the most spans kept; older ones are discarded first, so a
            long test run cannot grow without bound (None: unbounded).

    Raises:
        ConfigError: for a `max_spans` that is not None or an integer >= 0.
    """

    def __init__(self, *, max_spans: int | None = 100_000) -> None:
        if max_spans is not None and (type(max_spans) is not int or max_spans < 0):
            from ..config import ConfigError

            raise ConfigError(f"InMemoryExporter(max_spans={max_spans!r}): expected None or an integer >= 0")
        self._spans: list[FinishedSpan] = []
        self._lock = threading.Lock()
        self._max_spans = max_spans
        self.export_calls = 0
        self.is_shutdown = False

    def export(self, spans: Sequence[Span | FinishedSpan]) -> ExportResult:
        """Store copies of `spans`."""
        if self.is_shutdown:
            return ExportResult.FAILURE
        frozen = [freeze(span) for span in spans]
        with self._lock:
            self.export_calls += 1
            self._spans.extend(frozen)
            if self._max_spans is not None and len(self._spans) > self._max_spans:
                del self._spans[: len(self._spans) - self._max_spans]
        return ExportResult.SUCCESS

    def get_finished_spans(self) -> list[FinishedSpan]:
        """Every span exported so far, in export order."""
        with self._lock:
            return list(self._spans)

    @property
    def spans(self) -> list[FinishedSpan]:
        """Same as `get_finished_spans()`."""
        return self.get_finished_spans()

    def clear(self) -> None:
        """Forget the spans exported so far."""
        with self._lock:
            self._spans.clear()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Nothing is pending: always True."""
        return True

    def shutdown(self) -> None:
        """Later exports fail."""
        self.is_shutdown = True


def from_settings(settings: Settings) -> InMemoryExporter:
    """The exporter ``OTEL_TRACES_EXPORTER=memory`` stands for."""
    return InMemoryExporter()
