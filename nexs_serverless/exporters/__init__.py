"""Exporters, loaded on first use from a name table (no entry-point scan at cold start).

``from nexs_serverless.exporters import OTLPHttpExporter`` imports only that
exporter's module; `create` builds the exporter an ``OTEL_TRACES_EXPORTER``
name stands for, from the settings.
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..config import Settings
    from .azure_monitor import AzureMonitorExporter as AzureMonitorExporter
    from .base import ExportResult as ExportResult
    from .cloud_trace import CloudTraceExporter as CloudTraceExporter
    from .console import ConsoleExporter as ConsoleExporter
    from .file import FileExporter as FileExporter
    from .memory import InMemoryExporter as InMemoryExporter
    from .otlp_grpc import OTLPGrpcExporter as OTLPGrpcExporter
    from .otlp_http import OTLPHttpExporter as OTLPHttpExporter
    from .resilient import ResilientExporter as ResilientExporter
    from .xray import XRayExporter as XRayExporter

# Public class name -> "module:attribute", relative to this package.
_CLASSES: dict[str, str] = {
    "AzureMonitorExporter": ".azure_monitor:AzureMonitorExporter",
    "CloudTraceExporter": ".cloud_trace:CloudTraceExporter",
    "ConsoleExporter": ".console:ConsoleExporter",
    "ExportResult": ".base:ExportResult",
    "FileExporter": ".file:FileExporter",
    "InMemoryExporter": ".memory:InMemoryExporter",
    "OTLPGrpcExporter": ".otlp_grpc:OTLPGrpcExporter",
    "OTLPHttpExporter": ".otlp_http:OTLPHttpExporter",
    "ResilientExporter": ".resilient:ResilientExporter",
    "XRayExporter": ".xray:XRayExporter",
}

# OTEL_TRACES_EXPORTER name -> "module:factory(settings)".
_FACTORIES: dict[str, str] = {
    "console": ".console:from_settings",
    "memory": ".memory:from_settings",
    "otlp": ".otlp_http:from_settings",
    "otlp_proto_grpc": ".otlp_grpc:from_settings",
    "otlp_proto_http": ".otlp_http:http_from_settings",
    "xray": ".xray:from_settings",
    "gcp_trace": ".cloud_trace:from_settings",
    "azure_monitor": ".azure_monitor:from_settings",
    "file": ".file:from_settings",
}

__all__ = ["ConsoleExporter", "ExportResult", "InMemoryExporter", "create"]


def __getattr__(name: str) -> object:
    target = _CLASSES.get(name)
    if target is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module_name, _, attribute = target.partition(":")
    value = getattr(importlib.import_module(module_name, __name__), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_CLASSES))


def create(name: str, settings: Settings) -> object:
    """The exporter that ``OTEL_TRACES_EXPORTER`` name `name` stands for.

    Raises:
        ValueError: for a name no exporter answers to (including those whose
            module has not been written yet).
    """
    target = _FACTORIES.get(name)
    if target is None:
        raise ValueError(f"no exporter named {name!r}; known: {', '.join(sorted(_FACTORIES))}")
    module_name, _, attribute = target.partition(":")
    factory = getattr(importlib.import_module(module_name, __name__), attribute)
    return factory(settings)
