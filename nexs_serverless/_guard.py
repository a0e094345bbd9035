"""The one place where tracer failures are swallowed, counted and logged once.

Every instrumentation step that runs inside a user's invocation goes through
`report`: the user's function must never fail because of the tracer, and
a broken exporter must not flood CloudWatch with one stack trace per call.
"""

from __future__ import annotations

import logging

from . import _stats as stats

__all__ = ["logger", "report", "warn_once"]

logger = logging.getLogger("nexs_serverless")
_seen: set[str] = set()
_MAX_KEYS = 256  # bound the dedup set itself


def report(where: str, exc: BaseException) -> None:
    """Count an internal error and log it the first time `where` fails with this type."""
    stats.incr("internal_errors")
    key = where + ":" + type(exc).__name__
    if key in _seen or len(_seen) >= _MAX_KEYS:
        return
    _seen.add(key)
    logger.warning(
        "nexs_serverless: internal error in %s (swallowed; further ones are only counted): %r",
        where,
        exc,
        exc_info=exc,
    )


def warn_once(key: str, message: str, *args: object) -> None:
    """Log `message` once per process for `key`."""
    if key in _seen or len(_seen) >= _MAX_KEYS:
        return
    _seen.add(key)
    logger.warning(message, *args)


def forget() -> None:
    """Allow every message to be logged again (tests)."""
    _seen.clear()
