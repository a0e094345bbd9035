"""`configure()` called by the flush itself (an exporter): the replaced ones' shutdown waits for no lock.

Each test's first configuration has a 1 ms flush budget: the budget the old
code spent waiting for its own flush's lock before it skipped the shutdown
(``exporters_shutdown_skipped``). The flushes themselves get `LONG_MS`, so
nothing here depends on how fast the machine is.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import pytest

import nexs_serverless
from nexs_serverless import configure, flush, tracer
from nexs_serverless.exporters.base import ExportResult
from nexs_serverless.flushing import shutdown_flush

LONG_MS = 60_000  # a flush budget no step of these tests comes near
WAIT_S = 30.0


class _Abort(BaseException):
    """Ends a flush as a `KeyboardInterrupt` would: not caught by the flush's guard."""


class _Exporter:
    """An exporter that logs what happens to it; its first export or force_flush runs `during`."""

    def __init__(
        self,
        name: str,
        log: list[str],
        *,
        during: Callable[[], None] | None = None,
        hold_shutdown: bool = False,
    ) -> None:
        self.name = name
        self.log = log
        self.during = during
        self.hold_shutdown = hold_shutdown
        self.entered = threading.Event()  # the held shutdown was entered
        self.release = threading.Event()

    def _step(self, step: str) -> None:
        self.log.append(f"{self.name} {step}")
        during, self.during = self.during, None
        if during is not None:
            during()
            self.log.append(f"{self.name} {step} returned")

    def export(self, spans: Sequence[object]) -> ExportResult:
        self._step("export")
        return ExportResult.SUCCESS

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        self._step("force_flush")
        return True

    def shutdown(self) -> None:
        self.log.append(f"{self.name} shutdown")
        if self.hold_shutdown:
            self.entered.set()
            self.release.wait(WAIT_S)
            self.log.append(f"{self.name} shutdown done")


def _reconfigure(*lists: list[object]) -> Callable[[], None]:
    """`configure(exporters=...)` once per list, in order: what an exporter does on an auth failure."""

    def run() -> None:
        for exporters in lists:
            configure(exporters=exporters, environ={})

    return run


def _span_and_flush(name: str = "work") -> None:
    with tracer.span(name):
        pass
    flush(LONG_MS)


def _stat(name: str) -> float:
    return nexs_serverless.stats().get(name, 0)


def test_configure_inside_an_export_shuts_the_replaced_exporters_down_after_the_flush() -> None:
    """The exporter calling `configure` finishes, the flush reaches the next one, then both are shut down."""
    log: list[str] = []
    replacement = _Exporter("replacement", log)
    busy = _Exporter("busy", log, during=_reconfigure([replacement]))
    configure(exporters=[busy, _Exporter("witness", log)], flush_timeout_ms=1, environ={})
    _span_and_flush()
    assert log == [
        "busy export",
        "busy export returned",
        "witness export",
        "busy shutdown",
        "witness shutdown",
    ]
    assert (_stat("exporters_shutdown_skipped"), _stat("exporters_shutdown_deferred")) == (0, 2)
    _span_and_flush("next")
    assert log[-1] == "replacement export"


def test_configure_inside_the_exit_flushs_force_flush_shuts_the_exporter_down_after_it() -> None:
    """`configure` from a `force_flush` in `shutdown_flush`: shut down once the force_flush returned."""
    log: list[str] = []
    busy = _Exporter("busy", log, during=_reconfigure([_Exporter("replacement", log)]))
    configure(exporters=[busy], flush_timeout_ms=1, environ={})
    shutdown_flush(LONG_MS)
    assert log == ["busy force_flush", "busy force_flush returned", "busy shutdown"]
    assert _stat("exporters_shutdown_skipped") == 0


def test_a_second_configure_in_the_same_flush_shuts_each_replaced_exporter_down_once() -> None:
    """Two reconfigurations in one export: the busy exporter and the first replacement are shut down once."""
    log: list[str] = []
    first, second = _Exporter("first", log), _Exporter("second", log)
    busy = _Exporter("busy", log, during=_reconfigure([first], [second]))
    configure(exporters=[busy], flush_timeout_ms=1, environ={})
    _span_and_flush()
    assert log == ["busy export", "busy export returned", "busy shutdown", "first shutdown"]
    assert _stat("exporters_shutdown_skipped") == 0


def test_the_busy_exporter_passed_again_in_the_same_flush_is_not_shut_down() -> None:
    """Replaced, then passed again within one export: it keeps working; only the other is shut down."""
    log: list[str] = []
    busy = _Exporter("busy", log)
    busy.during = _reconfigure([_Exporter("other", log)], [busy])
    configure(exporters=[busy], flush_timeout_ms=1, environ={})
    _span_and_flush()
    _span_and_flush("next")
    assert log == ["busy export", "busy export returned", "other shutdown", "busy export"]


def test_an_exporter_replaced_twice_in_one_flush_is_shut_down_once() -> None:
    """Dropped, passed again, dropped again within one export: one shutdown, not one per reconfiguration."""
    log: list[str] = []
    busy, dropped = _Exporter("busy", log), _Exporter("dropped", log)
    busy.during = _reconfigure([busy], [busy, dropped], [busy])
    configure(exporters=[busy, dropped], flush_timeout_ms=1, environ={})
    _span_and_flush()
    assert log == ["busy export", "busy export returned", "dropped export", "dropped shutdown"]


def test_a_flush_ended_by_an_exception_still_shuts_the_replaced_exporter_down_once() -> None:
    """An exporter that reconfigures, then raises past the flush's guard: the shutdown still follows, once."""
    log: list[str] = []
    replacement = _Exporter("replacement", log)

    def reconfigure_and_abort() -> None:
        configure(exporters=[replacement], environ={})
        raise _Abort

    busy = _Exporter("busy", log, during=reconfigure_and_abort)
    configure(exporters=[busy], flush_timeout_ms=1, environ={})
    with pytest.raises(_Abort):
        _span_and_flush()
    _span_and_flush("next")
    assert log == ["busy export", "busy shutdown", "replacement export"]


def test_an_export_failing_after_configure_does_not_keep_the_shutdown_from_running() -> None:
    """An exporter that reconfigures, then raises an error the flush reports, is shut down after the flush."""
    log: list[str] = []

    def reconfigure_and_fail() -> None:
        configure(exporters=[], environ={})
        raise RuntimeError("auth failed")

    busy = _Exporter("busy", log, during=reconfigure_and_fail)
    configure(exporters=[busy], flush_timeout_ms=1, environ={})
    _span_and_flush()
    assert log == ["busy export", "busy shutdown"]
    assert _stat("internal_errors") == 1


def test_a_deferred_shutdown_that_hangs_holds_the_flush_no_longer_than_its_budget() -> None:
    """The flush returns within its budget while the deferred shutdown hangs; it ends in the background."""
    log: list[str] = []
    busy = _Exporter("busy", log, during=_reconfigure([]), hold_shutdown=True)
    configure(exporters=[busy], flush_timeout_ms=1, environ={})
    with tracer.span("work"):
        pass
    try:
        flush(1)
        assert _stat("exporters_shutdown_overran") == 1
        assert busy.entered.wait(WAIT_S)
        assert "busy shutdown done" not in log
    finally:
        busy.release.set()


def test_an_exporter_listed_twice_is_shut_down_once() -> None:
    """The same object given twice to `configure` is shut down once when replaced."""
    log: list[str] = []
    twice = _Exporter("twice", log)
    configure(exporters=[twice, twice], environ={})
    _span_and_flush()
    configure(exporters=[], environ={})
    assert log == ["twice export", "twice export", "twice shutdown"]
