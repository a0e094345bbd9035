"""One background timer for the timeout guard, started on first use (never at import).

Arming costs a lock and, only when the timer thread would otherwise sleep past
the new due time, one notify: consecutive warm invocations do not wake the
thread. A fired callback runs in the timer thread; a stale one (its
invocation already disarmed) never runs.
"""

from __future__ import annotations

import threading
import time

from . import _guard as guard

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["Watchdog", "watchdog"]


class Watchdog:
    """Runs at most one pending callback at its due `time.monotonic()` value."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._due: float | None = None
        self._callback: Callable[[], None] | None = None
        self._generation = 0
        self._sleeping_until: float | None = None  # None: asleep without timeout, or not started
        self._thread: threading.Thread | None = None

    def arm(self, due: float, callback: Callable[[], None]) -> int:
        """Schedule `callback` at `due`, replacing any pending one; returns a ticket."""
        with self._cond:
            self._generation += 1
            self._due = due
            self._callback = callback
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="nexs-timeout-guard", daemon=True)
                self._thread.start()
            elif self._sleeping_until is None or self._sleeping_until > due:
                self._cond.notify()
            return self._generation

    def disarm(self, ticket: int) -> None:
        """Cancel the callback armed with `ticket` (no-op if it already ran or was replaced)."""
        with self._cond:
            if ticket == self._generation:
                self._due = None
                self._callback = None

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._due is None:
                    self._sleeping_until = None
                    self._cond.wait()
                delay = self._due - time.monotonic()
                if delay > 0:
                    self._sleeping_until = self._due
                    self._cond.wait(delay)
                    continue
                callback = self._callback
                self._due = None
                self._callback = None
            if callback is not None:
                try:
                    callback()
                except Exception as exc:
                    guard.report("timeout_guard", exc)


watchdog = Watchdog()
