"""Process-wide counters behind `nexs_serverless.stats()`.

Why a plain dict: counters are bumped on rare paths (drops, conversions,
errors, flushes); the per-span path counts pool hits on the pool itself.
Counters live as long as the process, so they add up across warm invocations.
"""

from __future__ import annotations

from _thread import allocate_lock

__all__ = ["incr", "observe", "reset", "snapshot"]

_counters: dict[str, int] = {}
_gauges: dict[str, float] = {}
# A read-add-write is not atomic: threads dropping spans at once lost counts without it.
_lock = allocate_lock()


def incr(name: str, amount: int = 1) -> None:
    """Add `amount` to counter `name` (created at 0)."""
    with _lock:
        _counters[name] = _counters.get(name, 0) + amount


def observe(name: str, value: float) -> None:
    """Record the latest value of gauge `name` and keep its maximum as ``<name>_max``."""
    _gauges[name] = value
    key = name + "_max"
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
    _counters.clear()
    _gauges.clear()
