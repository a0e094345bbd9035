"""The OpenTelemetry SDK as the oracle: what it records is what our provider's spans must match."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from opentelemetry import trace
    from opentelemetry.sdk.trace import ReadableSpan

__all__ = ["sdk_span"]


def sdk_span(run: Callable[[trace.Tracer], None]) -> ReadableSpan:
    """The one span `run` makes with the OpenTelemetry SDK, as its exporters receive it."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    run(provider.get_tracer("oracle"))
    (span,) = memory.get_finished_spans()
    return span
