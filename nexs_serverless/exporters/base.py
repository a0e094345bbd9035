"""The exporter contract, shaped like OpenTelemetry's `SpanExporter`.

An exporter has three methods: ``export(spans) -> ExportResult``,
``force_flush(timeout_millis) -> bool`` and ``shutdown()``. The spans passed to
`export` are valid only during the call (records are recycled by the pool
afterwards): an exporter that keeps spans stores `freeze(span)` copies.
While `export` runs, instrumentation is suppressed and
`nexs_serverless.context.remaining_export_s()` gives the time left in the
flush budget; network exporters cap their own timeout with it.
"""

from __future__ import annotations

import enum

__all__ = ["ExportResult"]


class ExportResult(enum.Enum):
    """Outcome of one `export` call (the values of OpenTelemetry's `SpanExportResult`)."""

    SUCCESS = 0
    FAILURE = 1
