"""Turn what the user configured into something `flush` can call.

Every exporter ends up behind its own `ResilientExporter` (circuit breaker,
retries, carry-over), so one dead back end cannot slow the others down. An
OpenTelemetry SDK `SpanExporter` is first wrapped so it reads our spans and
cannot hold the flush past its budget; any other exporter of a class not ours
with only ``export(spans)`` (no timeout to keep to) has its exports run in a
thread waited for until the deadline (`_export_worker`). Ours (console,
in-memory, file, and those with `send`) are called directly: no thread.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..config import Settings
    from .resilient import Options

__all__ = ["adapt", "is_otel_sdk_exporter"]

_OURS = __name__.partition(".")[0] + "."  # "nexs_serverless.": our classes keep to their deadline


def is_otel_sdk_exporter(exporter: object) -> bool:
    """True for an object whose class comes from an ``opentelemetry`` package (no import needed)."""
    return any((cls.__module__ or "").startswith("opentelemetry.") for cls in type(exporter).__mro__)


def adapt(exporter: object, settings: Settings | None = None) -> object:
    """`exporter` behind a `ResilientExporter` (after the SDK adapter when it is an SDK exporter).

    Args:
        exporter: ours, an OpenTelemetry SDK `SpanExporter`, or one already wrapped
            (returned as is).
        settings: where the ``NEXS_EXPORT_*`` settings come from (default: the runtime's).
    """
    from .resilient import ResilientExporter

    if isinstance(exporter, ResilientExporter) or getattr(exporter, "wraps_resilient_exporters", False):
        # Already resilient, or a router that puts each of its own exporters behind one:
        # wrapping again would retry a whole fan-out and re-send to targets that succeeded.
        return exporter
    name = type(exporter).__name__
    if is_otel_sdk_exporter(exporter):
        from .otel_sdk import OTelSDKExporter

        exporter = OTelSDKExporter(exporter)
    if settings is None:
        from ..runtime import runtime

        settings = runtime.settings
    wrapped = ResilientExporter(exporter, options=_options(settings), name=name)
    if wrapped._send is None and not (type(exporter).__module__ or "").startswith(_OURS):
        # A user's `export` may block (a slow HTTP call, a hung lock) and takes no timeout.
        from ._export_worker import ExportWorker

        wrapped._worker = ExportWorker(name)
    return wrapped


_cache: list[tuple[Settings, Options]] = []


def _options(settings: Settings) -> Options:
    """Parse once per settings object, so a problem is logged once, not once per exporter."""
    from .resilient import Options

    if _cache and _cache[0][0] is settings:
        return _cache[0][1]
    options = Options.from_settings(settings)
    _cache[:] = [(settings, options)]
    return options
