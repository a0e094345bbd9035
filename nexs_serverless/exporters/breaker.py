"""`CircuitBreaker`: stop paying for a back end that is down.

    CLOSED ──(threshold consecutive failures)──► OPEN
      ▲                                           │ cool-down elapsed
      │ probe succeeds                            ▼
      └────────────────────────────────────── HALF_OPEN (one probe at a time)
                                                  │ probe fails
                                                  └──────► OPEN (new cool-down)

Why: a dead collector costs every invocation its whole export timeout. Once
the breaker is open, an export is not attempted at all (the caller keeps the
spans for later), so the flush costs well under a millisecond until the
cool-down has passed; then exactly one caller probes the back end. State
lives on the object, which lives as long as the exporter (warm invocations
share it). Thread-safe; the clock is injectable so tests need no sleep.
"""

from __future__ import annotations

import threading
import time

from .. import _guard as guard
from .. import _stats as stats

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["CLOSED", "HALF_OPEN", "OPEN", "CircuitBreaker"]

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half_open"
MAX_PAUSE_S = 900.0  # the longest pause a back end may ask for (Retry-After): Lambda's longest run


class CircuitBreaker:
    """Counts consecutive failures and refuses calls while the back end is presumed down.

    Args:
        failure_threshold: consecutive failures that open the breaker (>= 1).
        cooldown_s: how long it stays open before one probe is allowed (> 0).
        clock: a `time.monotonic`-like function.
        name: shown in the log line when it opens.

    Raises:
        ValueError: for a threshold below 1 or a non-positive cool-down.
    """

    __slots__ = (
        "_clock",
        "_failures",
        "_lock",
        "_opened_at",
        "_probing",
        "_state",
        "cooldown_s",
        "failure_threshold",
        "name",
    )

    def __init__(
        self,
        *,
        failure_threshold: int = 3,
        cooldown_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        name: str = "exporter",
    ) -> None:
        if type(failure_threshold) is not int or failure_threshold < 1:
            raise ValueError(f"failure_threshold must be an int >= 1, got {failure_threshold!r}")
        if not cooldown_s > 0:
            raise ValueError(f"cooldown_s must be positive, got {cooldown_s!r}")
        self.failure_threshold = failure_threshold
        self.cooldown_s = float(cooldown_s)
        self.name = name
        self._clock = clock
        self._lock = threading.Lock()
        self._state = CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probing = False

    @property
    def state(self) -> str:
        """`CLOSED`, `OPEN` or `HALF_OPEN` (an open breaker past its cool-down reads half-open)."""
        with self._lock:
            if self._state == OPEN and self._clock() - self._opened_at >= self.cooldown_s:
                return HALF_OPEN
            return self._state

    @property
    def failures(self) -> int:
        """Consecutive failures recorded since the last success."""
        return self._failures

    def allow(self) -> bool:
        """Whether the caller may try the back end now.

        Closed: always. Open: no, until the cool-down has passed; then the
        first caller is let through as the probe and the breaker turns
        half-open. Half-open: no while the probe is out.
        """
        if self._state == CLOSED:  # the common case, without the lock
            return True
        with self._lock:
            if self._state == CLOSED:
                return True
            if self._state == OPEN:
                if self._clock() - self._opened_at < self.cooldown_s:
                    return False
                self._state = HALF_OPEN
                stats.incr("breaker_half_opened")
            if self._probing:
                return False
            self._probing = True
            return True

    def release(self) -> None:
        """The probe let through by `allow` never reached the back end: let the next caller probe.

        A flush with no time left before its first attempt, or with nothing to
        send, learns nothing about the back end; without this the breaker would
        stay half-open with its probe out, and skip every later export.
        """
        if self._probing:
            with self._lock:
                self._probing = False

    def record_success(self) -> None:
        """The back end answered: close (a successful probe) and forget past failures."""
        if self._state == CLOSED and not self._failures:
            return
        with self._lock:
            self._failures = 0
            self._probing = False
            if self._state != CLOSED:
                self._state = CLOSED
                stats.incr("breaker_closed")

    def record_failure(self) -> None:
        """The back end failed: count, and open at the threshold or when the probe failed."""
        with self._lock:
            self._failures += 1
            probe_failed = self._state == HALF_OPEN
            self._probing = False
            if probe_failed or (self._state == CLOSED and self._failures >= self.failure_threshold):
                self._open()

    def trip(self, cooldown_s: float | None = None) -> None:
        """Open now, for `cooldown_s` (default: the configured cool-down).

        Used when the back end itself asks for a pause (``Retry-After`` longer
        than the flush can wait).
        """
        with self._lock:
            self._probing = False
            self._open()
            if cooldown_s is not None:  # at most MAX_PAUSE_S: a back end's typo must not end exporting
                pause_s = min(max(0.0, cooldown_s), MAX_PAUSE_S)
                self._opened_at = self._clock() + pause_s - self.cooldown_s

    def _open(self) -> None:
        previous = self._state
        self._state = OPEN
        self._opened_at = self._clock()
        if previous == HALF_OPEN:
            stats.incr("breaker_reopened")
        elif previous == CLOSED:
            stats.incr("breaker_opened")
            guard.warn_once(
                "breaker_open:" + self.name,
                "nexs_serverless: export to %s failed %d time(s) in a row; skipping it for %.1f s at a "
                "time (spans are kept for later; see stats())",
                self.name,
                self._failures,
                self.cooldown_s,
            )
