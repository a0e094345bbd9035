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
from .context import export_deadline
from .flushing import _MAX_WAIT_S
from .runtime import runtime

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from .runtime import Retiring

__all__ = ["retire", "retire_deferred"]


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

    Called by the flush itself (an exporter's `export` or a stage calling
    `configure`), waiting for the flush would wait for its own caller until the
    budget ran out, and one of these exporters may be the one exporting: the
    shutdown is left to the flush, which runs it as it ends
    (``exporters_shutdown_deferred``, see `retire_deferred`).
    """
    try:
        kept = {id(exporter) for exporter in keep}
        retired = [exporter for exporter in exporters if id(exporter) not in kept]
        if not retired:
            return
        if runtime.flush_thread == threading.get_ident() or export_deadline():
            runtime.retiring.append((retired, kept, preparing))
            stats.incr("exporters_shutdown_deferred", len(retired))
            return
        deadline = time.monotonic() + min(max(0.0, budget_ms) / 1000.0, _MAX_WAIT_S)
        _run(lambda: _retire(retired, kept, deadline, preparing), deadline)
    except Exception as exc:
        guard.report("retire_exporters", exc)


def retire_deferred(retiring: list[Retiring], keep: Iterable[object], deadline: float) -> None:
    """Shut down what `retire` left to the flush that just ended, by its `deadline`; never raises.

    The flush has released its lock, and the next one builds the new
    exporters, so only the preparation is waited for. Reconfigured more than
    once in that flush, an exporter may have been replaced twice, or passed
    again: each is shut down at most once, and not at all when it is in `keep`
    (the exporters configured now).
    """
    try:
        kept = {id(exporter) for exporter in keep}
        _run(lambda: _retire_each(retiring, kept, deadline), deadline)
    except Exception as exc:
        guard.report("retire_exporters", exc)


def _run(shut_down: Callable[[], None], deadline: float) -> None:
    """Run `shut_down` in a thread the caller waits for until `deadline` (see `retire`)."""
    worker = threading.Thread(target=shut_down, name="nexs-retire-exporters", daemon=True)
    worker.start()
    worker.join(max(0.0, deadline - time.monotonic()))
    if worker.is_alive():
        stats.incr("exporters_shutdown_overran")


def _retire(
    exporters: list[object], kept: set[int], deadline: float, preparing: threading.Thread | None
) -> None:
    try:
        lock = runtime.flush_lock
        if not _prepared(preparing, deadline) or not lock.acquire(
            timeout=max(0.0, deadline - time.monotonic())
        ):
            stats.incr("exporters_shutdown_skipped", len(exporters))
            return
        lock.release()  # no flush uses them any more: the next one builds the new exporters
        done: set[int] = set()
        for exporter in exporters:
            _shut_down(exporter, kept, done)
    except Exception as exc:
        guard.report("retire_exporters", exc)


def _retire_each(retiring: list[Retiring], keep: set[int], deadline: float) -> None:
    try:
        done: set[int] = set()  # shared: one replaced in two reconfigurations is shut down once
        for exporters, kept, preparing in retiring:
            if not _prepared(preparing, deadline):
                stats.incr("exporters_shutdown_skipped", len(exporters))
                continue
            for exporter in exporters:
                _shut_down(exporter, kept | keep, done)
    except Exception as exc:
        guard.report("retire_exporters", exc)


def _prepared(preparing: threading.Thread | None, deadline: float) -> bool:
    """Whether the `prepare_exporters` thread is done with the exporters, waiting for it until `deadline`."""
    if preparing is None:
        return True
    preparing.join(max(0.0, deadline - time.monotonic()))
    return not preparing.is_alive()


def _shut_down(exporter: object, kept: set[int], done: set[int]) -> None:
    """Shut `exporter` down, or, when it wraps one passed again, only its other parts.

    What is shut down, with all it wraps, joins `done`, and is not shut down again.
    """
    if id(exporter) in kept or id(exporter) in done:
        return
    parts = _parts(exporter)
    if any(_holds(part, kept) or _holds(part, done) for part in parts):
        for part in parts:
            _shut_down(part, kept, done)
        return
    _mark(exporter, done)
    try:
        shutdown = getattr(exporter, "shutdown", None)  # only `export` is required of an exporter
        if shutdown is not None:
            shutdown()
    except Exception as exc:  # one exporter failing must not keep the others open
        guard.report("shutdown:" + type(exporter).__name__, exc)


def _holds(exporter: object, ids: set[int]) -> bool:
    return id(exporter) in ids or any(_holds(part, ids) for part in _parts(exporter))


def _mark(exporter: object, ids: set[int]) -> None:
    ids.add(id(exporter))
    for part in _parts(exporter):
        _mark(part, ids)


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
