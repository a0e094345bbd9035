"""The one place where tracer failures are swallowed, counted and logged once.

Every instrumentation step that runs inside a user's invocation goes through
`report`: the user's function must never fail because of the tracer, and
a broken exporter must not flood CloudWatch with one stack trace per call.
"""

from __future__ import annotations

import logging
from _thread import allocate_lock

from . import _stats as stats

__all__ = ["logger", "report", "warn_once"]

logger = logging.getLogger("nexs_serverless")
# The keys logged so far, least recently seen first. Bounded by forgetting the least recently
# seen key: a set that stopped taking keys when full never logged a new failure again, and
# keys carrying outside text (a back end's partial-success message) filled it within hours.
# A key seen again moves to the end, so a failure that keeps recurring is never forgotten
# (and re-logged) because one-off keys came and went.
_seen: dict[str, None] = {}
_MAX_KEYS = 256
_lock = allocate_lock()  # two threads failing at once logged the same key twice


def _first(key: str) -> bool:
    """True when `key` is not among the `_MAX_KEYS` keys seen most recently; remembers it."""
    with _lock:
        if key in _seen:
            del _seen[key]
            _seen[key] = None
            return False
        if len(_seen) >= _MAX_KEYS:
            del _seen[next(iter(_seen))]
        _seen[key] = None
        return True


def report(where: str, exc: BaseException) -> None:
    """Count an internal error and log it the first time `where` fails with this type."""
    stats.incr("internal_errors")
    if not _first(where + ":" + type(exc).__name__):
        return
    logger.warning(
        "nexs_serverless: internal error in %s (swallowed; further ones are only counted): %r",
        where,
        exc,
        exc_info=exc,
    )


def warn_once(key: str, message: str, *args: object) -> None:
    """Log `message` the first time `key` is seen (again after `_MAX_KEYS` other keys came since)."""
    if _first(key):
        logger.warning(message, *args)


def forget() -> None:
    """Allow every message to be logged again (tests)."""
    with _lock:
        _seen.clear()
