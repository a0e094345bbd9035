"""Turn what the user configured into something `flush` can call.

Ours pass through; an OpenTelemetry SDK `SpanExporter` is wrapped so it reads
SDK spans and cannot hold the flush past its budget.
"""

from __future__ import annotations

__all__ = ["adapt", "is_otel_sdk_exporter"]


def is_otel_sdk_exporter(exporter: object) -> bool:
    """True for an object whose class comes from an ``opentelemetry`` package (no import needed)."""
    return any((cls.__module__ or "").startswith("opentelemetry.") for cls in type(exporter).__mro__)


def adapt(exporter: object) -> object:
    """`exporter` itself, or an adapter around an OpenTelemetry SDK exporter."""
    if is_otel_sdk_exporter(exporter):
        from .otel_sdk import OTelSDKExporter

        return OTelSDKExporter(exporter)
    return exporter
