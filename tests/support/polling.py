"""Waiting on what happens in another process or thread, with a bound instead of a fixed sleep."""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["wait_for"]


def wait_for(predicate: Callable[[], object], timeout_s: float = 10.0) -> bool:
    """Poll `predicate` until true, or `timeout_s` has passed (a bound on hangs, not a speed check)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return bool(predicate())
