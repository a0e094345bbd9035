"""Process-wide counters behind `nexs_serverless.stats()`.

Why a plain dict: counters are bumped on rare paths (drops, conversions,
errors, flushes); the per-span path counts pool hits on the pool itself.
Counters live as long as the process, so they add up across warm invocations.

The names are bounded (`_MAX_NAMES`): a few are built from a caller's text
(``flush(reason=...)``), and each new name lives for the process and lengthens
every ``NEXS_STATS_LOG_EVERY`` line. Past the bound, increments of new names are
counted as ``stats_names_dropped``.
"""

from __future__ import annotations

from _thread import allocate_lock

__all__ = ["incr", "observe", "reset", "snapshot"]

_MAX_NAMES = 512  # the package uses about a hundred
_OVERFLOW = "stats_names_dropped"

_counters: dict[str, int] = {}
_gauges: dict[str, float] = {}
# A read-add-write is not atomic: threads dropping spans at once lost counts without it, and
# two flushes observing at once could leave the smaller value as a gauge's maximum.
_lock = allocate_lock()


def incr(name: str, amount: int = 1) -> None:
    """Add `amount` to counter `name` (created at 0)."""
    with _lock:
        value = _counters.get(name)
        if value is None:
            if len(_counters) >= _MAX_NAMES:
                name, amount = _OVERFLOW, 1
                value = _counters.get(name, 0)
            else:
                value = 0
        _counters[name] = value + amount


def observe(name: str, value: float) -> None:
    """Record the latest value of gauge `name` and keep its maximum as ``<name>_max``."""
    key = name + "_max"
    with _lock:
        if name not in _gauges and len(_gauges) >= _MAX_NAMES:
            _counters[_OVERFLOW] = _counters.get(_OVERFLOW, 0) + 1
            return
        _gauges[name] = value
        if value > _gauges.get(key, float("-inf")):
            _gauges[key] = value


def snapshot() -> dict[str, float]:
    """A copy of every counter and gauge."""
    with _lock:
        out: dict[str, float] = dict(_counters)
        out.update(_gauges)
    return out


def reset() -> None:
    """Zero everything (tests and `configure(reset_stats=True)`)."""
    with _lock:
        _counters.clear()
        _gauges.clear()
