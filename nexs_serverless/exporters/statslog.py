"""One structured JSON line of `stats()` every N invocations (``NEXS_STATS_LOG_EVERY``, 0: off).

Why: users of other tracers learn that spans were lost only from their back
end's silence. This line lands in the function's log (CloudWatch, Cloud
Logging) next to the invocations it describes, so drops, carry-over,
rejections and breaker trips can be graphed and alarmed on from logs alone.
It is written to stdout, which every FaaS platform captures whatever the
logging configuration (a logger at INFO would be filtered out by default).

Invocations end on several threads at once where the platform runs them
concurrently (Cloud Functions gen2, Azure Functions, a local server): the
count is kept under a lock, so every N-th invocation writes exactly one line.
"""

from __future__ import annotations

import sys
import threading

from .. import config

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..config import Settings

__all__ = ["after_invocation"]

_state: dict[str, object] = {"settings": None, "every": 0, "count": 0}
_lock = threading.Lock()


def _every(settings: Settings) -> int:
    if _state["settings"] is not settings:
        reader = config.Reader(settings.environ)
        _state["every"] = reader.integer("NEXS_STATS_LOG_EVERY", default=0)
        _state["settings"] = settings
        _state["count"] = 0  # new settings (configure): count from here
        config.report(reader.problems)
    every: int = _state["every"]  # type: ignore[assignment]
    return every


def after_invocation(settings: Settings) -> bool:
    """Count one invocation; every N-th, write the stats line. Returns whether it wrote."""
    with _lock:
        every = _every(settings)
        if every <= 0:
            return False
        count: int = _state["count"]  # type: ignore[assignment]
        count += 1
        _state["count"] = count
    if count % every:
        return False
    import json

    from ..runtime import stats_snapshot

    line = json.dumps(
        {"nexs_stats": {"invocations": count, **stats_snapshot()}}, separators=(",", ":"), sort_keys=True
    )
    sys.stdout.write(line + "\n")
    sys.stdout.flush()
    return True
