"""Shutting down the exporters a reconfiguration replaced, once no flush uses them.

Its own module: only `configure()`/`set_exporters` after exporters were built
need it, never a cold start's flush.
"""

from __future__ import annotations

import sys
import threading
import time

from . import _guard as guard
from . import _stats as stats
from .flushing import _MAX_WAIT_S
from .runtime import runtime

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

__all__ = ["retire"]


def retire(
    exporters: Sequence[object],
    keep: Iterable[object],
    budget_ms: float,
    preparing: threading.Thread | None,
) -> None:
    """Shut down exporters a reconfiguration replaced, within `budget_ms`; never raises.

    A flush on another thread may still be exporting to them, and the
    `prepare_exporters` thread may still be connecting them: the shutdown
    waits for both (a flush that takes the lock afterwards uses the new
    exporters). Exporters still busy when the budget runs out are left to the
    garbage collector (``exporters_shutdown_skipped``). `shutdown()` takes no
    timeout (an SDK exporter's may wait for its export lock), so the shutdowns
    run in a thread the caller waits for up to the budget; one still running
    then finishes in the background (``exporters_shutdown_overran``). Objects
    in `keep` (passed to `configure` again) are not shut down, nor through our
    wrappers around them.
    """
    try:
        kept = {id(exporter) for exporter in keep}
        retired = [exporter for exporter in exporters if id(exporter) not in kept]
        if not retired:
            return
        deadline = time.monotonic() + min(max(0.0, budget_ms) / 1000.0, _MAX_WAIT_S)
        worker = threading.Thread(
            target=_retire,
            args=(retired, kept, deadline, preparing),
            name="nexs-retire-exporters",
            daemon=True,
        )
        worker.start()
        worker.join(max(0.0, deadline - time.monotonic()))
        if worker.is_alive():
            stats.incr("exporters_shutdown_overran")
    except Exception as exc:
        guard.report("retire_exporters", exc)


def _retire(
    exporters: list[object], kept: set[int], deadline: float, preparing: threading.Thread | None
) -> None:
    try:
        if preparing is not None:
            preparing.join(max(0.0, deadline - time.monotonic()))
        lock = runtime.flush_lock
        if (preparing is not None and preparing.is_alive()) or not lock.acquire(
            timeout=max(0.0, deadline - time.monotonic())
        ):
            stats.incr("exporters_shutdown_skipped", len(exporters))
            return
        lock.release()  # no flush uses them any more: the next one builds the new exporters
        for exporter in exporters:
            _shut_down(exporter, kept)
    except Exception as exc:
        guard.report("retire_exporters", exc)


def _shut_down(exporter: object, kept: set[int]) -> None:
    """Shut `exporter` down, or, when it wraps one passed again, only its other parts."""
    if id(exporter) in kept:
        return
    parts = _parts(exporter)
    if any(_holds(part, kept) for part in parts):
        for part in parts:
            _shut_down(part, kept)
        return
    try:
        shutdown = getattr(exporter, "shutdown", None)  # only `export` is required of an exporter
        if shutdown is not None:
            shutdown()
    except Exception as exc:  # one exporter failing must not keep the others open
        guard.report("shutdown:" + type(exporter).__name__, exc)


def _holds(exporter: object, kept: set[int]) -> bool:
    return id(exporter) in kept or any(_holds(part, kept) for part in _parts(exporter))


def _parts(exporter: object) -> list[object]:
    """What one of our wrappers wraps; empty for any other exporter.

    The classes are looked up in `sys.modules`: a wrapper whose module was
    never imported has no instances, and importing it here would cost for nothing.
    """
    package = __package__ or "nexs_serverless"
    resilient = sys.modules.get(package + ".exporters.resilient")
    if resilient is not None and isinstance(exporter, resilient.ResilientExporter):
        return [exporter.inner]
    sdk = sys.modules.get(package + ".exporters.otel_sdk")
    if sdk is not None and isinstance(exporter, sdk.OTelSDKExporter):
        return [exporter.exporter]
    routing = sys.modules.get(package + "._tenant_routing")
    if routing is not None and isinstance(exporter, routing.TenantRouter):
        return [*exporter.default, *(target for route in exporter.routes.values() for target in route)]
    return []
