"""Adaptive tail sampling: keep about N invocations per second on this instance.

A fixed ratio is wrong twice a day: too many traces at peak, too few at
night. `AdaptiveRatio` derives the ratio from the observed rate instead:

    ratio = (target - rate kept by rules) / rate of other invocations

The rates are exponentially smoothed per window (1 s by default) with a
time-aware weight (time constant `smoothing_s`), so a Lambda instance frozen
for minutes simply adopts the rate it sees on thaw, and the ratio moves
gradually rather than in jumps. The smoothing is symmetric on purpose: a
filter that rises faster than it falls tracks the peaks of random arrivals and
keeps too little. Two guards keep the output free of bursts instead:

- within a window, the count so far is a lower bound of the current rate, so a
  sudden rise in load lowers the ratio before the window ends;
- a token bucket, `burst_s` deep and refilled at 1.25 times the target, caps
  what the ratio keeps whatever the estimate says (at most about twice the
  target in any second); invocations kept by rules (errors) take tokens too,
  but are never refused.

With Poisson arrivals the kept rate settles a few percent under the target
(the bucket clips random peaks); `scripts/bench_sampling.py` and
`tests/test_sampling_adaptive.py` show the numbers.

Every decision is a function of the trace id's draw (`rules.draw`), and the
clock is injectable, so tests drive it with a fake clock.
"""

from __future__ import annotations

import math
import time

from .. import _stats as stats
from ..config import ConfigError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["AdaptiveRatio"]

# Bucket refill over the target: ordinary Poisson peaks pass, bursts do not.
_HEADROOM = 1.25


class AdaptiveRatio:
    """A sampling ratio that holds the kept rate near `target_per_s`.

    Args:
        target_per_s: kept invocations per second wanted on this instance
            (``target_per_minute / 60`` for per-minute targets).
        clock: seconds from a monotonic clock (tests pass a fake one).
        interval_s: window after which the rate estimates are updated.
        smoothing_s: time constant of the rate estimates.
        burst_s: depth of the token bucket in seconds of target (at least 1 token).
        label: suffix of the stats gauges (tenant policies each report their own).

    Raises:
        ConfigError: for a negative target or a non-positive time constant.
    """

    __slots__ = (
        "_capacity",
        "_clock",
        "_forced",
        "_forced_rate",
        "_gauge",
        "_last_refill",
        "_primed",
        "_rate",
        "_seen",
        "_tokens",
        "_window_start",
        "interval_s",
        "ratio",
        "smoothing_s",
        "target_per_s",
    )

    def __init__(
        self,
        target_per_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        interval_s: float = 1.0,
        smoothing_s: float = 10.0,
        burst_s: float = 1.0,
        label: str = "",
    ) -> None:
        if not target_per_s >= 0.0:
            raise ConfigError(f"target_per_s must be >= 0, got {target_per_s!r}")
        for name, value in (
            ("interval_s", interval_s),
            ("smoothing_s", smoothing_s),
            ("burst_s", burst_s),
        ):
            if not value > 0.0:
                raise ConfigError(f"{name} must be > 0, got {value!r}")
        self.target_per_s = float(target_per_s)
        self.interval_s = interval_s
        self.smoothing_s = smoothing_s
        self._clock = clock
        now = clock()
        self._window_start = now
        self._last_refill = now
        self._seen = 0
        self._forced = 0
        self._rate = 0.0
        self._forced_rate = 0.0
        self._primed = False
        self._capacity = max(1.0, self.target_per_s * burst_s)
        self._tokens = self._capacity
        self._gauge = "sampling_adaptive" + (f"_{label}" if label else "")
        self.ratio = 1.0

    def offer(self, u: float) -> float:
        """Decide for one invocation no rule kept, given its draw `u` in [0, 1).

        Returns:
            The ratio it was kept with, or 0.0 when it is dropped.
        """
        self._tick(self._clock())
        self._seen += 1
        ratio = self._ratio_now()
        if u < ratio and self._tokens >= 1.0:
            self._tokens -= 1.0
            return ratio
        return 0.0

    def note_forced(self) -> None:
        """Count an invocation kept by a rule (an error): it uses the budget, never refused."""
        self._tick(self._clock())
        self._forced += 1
        self._tokens = max(self._tokens - 1.0, -self._capacity)

    def _ratio_now(self) -> float:
        # Within a window, the count so far is a lower bound of the current rate.
        in_window = self._seen / self.interval_s
        rate = max(self._rate, in_window)
        forced = max(self._forced_rate, self._forced / self.interval_s)
        if rate <= 0.0:
            return 1.0
        return min(1.0, max(0.0, (self.target_per_s - forced) / rate))

    def _tick(self, now: float) -> None:
        elapsed_refill = now - self._last_refill
        if elapsed_refill > 0.0:
            self._tokens = min(self._capacity, self._tokens + elapsed_refill * self.target_per_s * _HEADROOM)
            self._last_refill = now
        elapsed = now - self._window_start
        if elapsed < self.interval_s:
            return
        observed = self._seen / elapsed
        forced = self._forced / elapsed
        if self._primed:
            weight = 1.0 - math.exp(-elapsed / self.smoothing_s)
            self._rate += weight * (observed - self._rate)
            self._forced_rate += weight * (forced - self._forced_rate)
        else:
            self._rate, self._forced_rate, self._primed = observed, forced, True
        self._window_start = now
        self._seen = 0
        self._forced = 0
        self.ratio = self._ratio_now()
        stats.observe(self._gauge + "_ratio", self.ratio)
        stats.observe(self._gauge + "_rate_per_s", self._rate)
