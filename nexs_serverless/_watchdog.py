"""One background timer for the timeout guard, started on first use (never at import).

Arming costs a lock and, only when the timer thread would otherwise sleep past
the new due time, one notify: consecutive warm invocations do not wake the
thread. A fired callback runs in the timer thread; a disarmed one never runs.
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
    """Runs each armed callback at its due `time.monotonic()` value, unless disarmed first.

    Usually one is pending (the current invocation's); a traced handler called
    from inside another (a router calling decorated handlers) arms a second,
    and disarming it must leave the outer one's guard in place.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._pending: dict[int, tuple[float, Callable[[], None]]] = {}
        self._generation = 0
        self._sleeping_until: float | None = None  # None: asleep without timeout, or not started
        self._thread: threading.Thread | None = None

    def arm(self, due: float, callback: Callable[[], None]) -> int:
        """Schedule `callback` at `due`; returns the ticket that `disarm` takes."""
        with self._cond:
            self._generation += 1
            ticket = self._generation
            self._pending[ticket] = (due, callback)
            if self._thread is None or not self._thread.is_alive():
                thread = threading.Thread(target=self._run, name="nexs-timeout-guard", daemon=True)
                try:
                    thread.start()
                except BaseException:
                    # "can't start new thread" (the handler's threads used up the limit): the caller
                    # has no ticket to disarm, so the entry stayed for good, and fired, long after its
                    # invocation, on the first thread that did start.
                    del self._pending[ticket]
                    raise
                self._thread = thread
            elif self._sleeping_until is None or self._sleeping_until > due:
                self._cond.notify()
            return ticket

    def disarm(self, ticket: int) -> None:
        """Cancel the callback armed with `ticket` (no-op if it already ran)."""
        with self._cond:
            self._pending.pop(ticket, None)

    def pending(self) -> int:
        """How many callbacks wait to run (for tests and diagnostics)."""
        with self._cond:
            return len(self._pending)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending:
                    self._sleeping_until = None
                    self._cond.wait()
                ticket = min(self._pending, key=lambda key: self._pending[key][0])
                due, callback = self._pending[ticket]
                delay = due - time.monotonic()
                if delay > 0:
                    self._sleeping_until = due
                    # Capped: a due time decades away (a context reporting a huge remaining time)
                    # overflows `Lock.acquire`, and the OverflowError killed this thread.
                    self._cond.wait(min(delay, _MAX_WAIT_S))
                    continue
                del self._pending[ticket]
            try:
                callback()
            except Exception as exc:
                guard.report("timeout_guard", exc)


_MAX_WAIT_S = float(threading.TIMEOUT_MAX)

watchdog = Watchdog()
