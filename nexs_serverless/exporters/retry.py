"""`RetryPolicy`: exponential backoff with full jitter, for the retryable error classes only.

Full jitter (the delay is uniform between 0 and the exponential cap, as in
AWS's "Exponential Backoff and Jitter") spreads the retries of many
concurrent functions instead of synchronising them on a recovering back end.
A ``Retry-After`` from the back end replaces the computed delay. The policy
only says how long to wait; the caller (`resilient.ResilientExporter`)
decides whether that wait still fits before the flush deadline.
"""

from __future__ import annotations

try:
    from _random import Random as _Random
except ImportError:  # pragma: no cover - other interpreters
    from random import Random as _Random  # type: ignore[assignment]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from .errors import ExportError

__all__ = ["RetryPolicy"]


class RetryPolicy:
    """How many times to retry and how long to wait before each retry.

    Args:
        max_retries: retries after the first attempt (0: never retry).
        base_s: the cap of the first backoff; it doubles with each retry.
        max_backoff_s: the largest computed backoff (``Retry-After`` may exceed it).
        random: a function returning floats in [0, 1) (tests pass a fixed one).

    Raises:
        ValueError: for a negative count or delay.
    """

    __slots__ = ("_random", "base_s", "max_backoff_s", "max_retries")

    def __init__(
        self,
        *,
        max_retries: int = 2,
        base_s: float = 0.05,
        max_backoff_s: float = 1.0,
        random: Callable[[], float] | None = None,
    ) -> None:
        if type(max_retries) is not int or max_retries < 0:
            raise ValueError(f"max_retries must be an int >= 0, got {max_retries!r}")
        if base_s < 0 or max_backoff_s < 0:
            raise ValueError("backoff delays must not be negative")
        self.max_retries = max_retries
        self.base_s = float(base_s)
        self.max_backoff_s = float(max_backoff_s)
        if random is None:
            random = _Random().random
        self._random = random

    def backoff_s(self, retry: int) -> float:
        """The jittered delay before retry number `retry` (0 for the first retry)."""
        cap = min(self.max_backoff_s, self.base_s * (2.0 ** min(retry, 32)))
        return cap * self._random()

    def delay_s(self, retry: int, error: ExportError) -> float | None:
        """Seconds to wait before retry number `retry` after `error`, or None: do not retry."""
        if not error.retryable or retry >= self.max_retries:
            return None
        if error.retry_after_s is not None:
            return max(0.0, error.retry_after_s)
        return self.backoff_s(retry)
