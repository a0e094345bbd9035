"""`SpanRecorder`: an in-memory exporter with the trace assertions as methods.

What the ``nexs_spans`` fixture and `capture_spans` give a test. It is an
`InMemoryExporter` (so ``get_finished_spans()`` and ``clear()`` work as
before); each assertion first flushes the spans that have ended but not been
exported yet, so code traced with `tracer.span` outside a `traced_handler`
(which flushes on return) is seen too.
"""

from __future__ import annotations

from ..exporters.console import format_trees
from ..exporters.memory import InMemoryExporter
from ..flushing import flush
from . import assertions

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

    from ..finished import FinishedSpan
    from ..typing import ReadableSpan
    from .assertions import Shape

__all__ = ["SpanRecorder"]


class SpanRecorder(InMemoryExporter):
    """Captured spans plus assertions that read like the trace.

    Use it through the ``nexs_spans`` pytest fixture or `capture_spans()`;
    both route every export here and reset the tracer before and after.
    """

    def collect(self) -> list[FinishedSpan]:
        """Flush what has ended, then every span captured so far, in export order."""
        flush(reason="test")
        return self.get_finished_spans()

    def names(self) -> list[str]:
        """The captured spans' names, in start order."""
        return [span.name for span in sorted(self.collect(), key=lambda span: span.start_ns)]

    def find(self, name: str) -> list[FinishedSpan]:
        """Every captured span named `name`, in start order."""
        return sorted((s for s in self.collect() if s.name == name), key=lambda span: span.start_ns)

    def tree(self, *, verbose: bool = False) -> str:
        """The captured spans drawn as the console exporter draws them."""
        return format_trees(self.collect(), verbose=verbose)

    def assert_span(
        self,
        name: str,
        *,
        parent: str | None = assertions._ANY,
        attributes: Mapping[str, object] | None = None,
        kind: int | str | None = None,
        status: int | str | None = None,
    ) -> ReadableSpan:
        """See `assertions.assert_span` (the spans are this recorder's)."""
        __tracebackhide__ = True
        return assertions.assert_span(
            self.collect(), name, parent=parent, attributes=attributes, kind=kind, status=status
        )

    def assert_trace_shape(self, *shape: Shape, ordered: bool = False) -> None:
        """See `assertions.assert_trace_shape` (the spans are this recorder's)."""
        __tracebackhide__ = True
        assertions.assert_trace_shape(self.collect(), *shape, ordered=ordered)

    def assert_no_errors(self) -> None:
        """See `assertions.assert_no_errors` (the spans are this recorder's)."""
        __tracebackhide__ = True
        assertions.assert_no_errors(self.collect())
