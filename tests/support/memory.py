"""What the tracer exported in a test, read from an in-memory exporter."""

from __future__ import annotations

from nexs_serverless.exporters import InMemoryExporter
from nexs_serverless.finished import FinishedSpan
from nexs_serverless.flushing import flush
from nexs_serverless.testing import reset

__all__ = ["export", "finish", "only_root"]


def export(environ: dict[str, str] | None = None) -> InMemoryExporter:
    """A fresh tracer configured from `environ` alone, exporting to the returned exporter."""
    exporter = InMemoryExporter()
    reset(exporters=[exporter], environ=environ or {})
    return exporter


def finish(exporter: InMemoryExporter) -> list[FinishedSpan]:
    """Flush what the test ended, then every span `exporter` holds."""
    flush()
    return exporter.get_finished_spans()


def only_root(exporter: InMemoryExporter) -> FinishedSpan:
    """The one span exported (fails when there is not exactly one): an invocation's root."""
    (root,) = exporter.get_finished_spans()
    return root
