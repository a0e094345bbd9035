"""Trace ids on log records, so logs and traces join (Powertools ``Logger`` and plain ``logging``).

A log-record factory (``logging.setLogRecordFactory``) wraps the current one
and stamps every record with the current span:

- ``trace_id`` (32 hex), ``span_id`` (16 hex), ``trace_sampled`` (bool);
  ``None`` outside a trace, so Powertools' JSON formatter leaves them out.

Powertools' ``Logger`` writes record attributes it does not reserve as JSON
keys, so its lines gain ``trace_id``/``span_id``; a plain format can use
``%(trace_id)s``. The factory chains to whatever factory was installed
before (OpenTelemetry's logging instrumentation included) and `uninstall`
puts that one back.
"""

from __future__ import annotations

import logging

from ..context import _current

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

__all__ = ["install", "uninstall"]

_MARK = "__nexs_traced__"
_state: dict[str, object] = {}


def install() -> bool:
    """Install the record factory (once); True when installed."""
    previous: Callable[..., logging.LogRecord] = logging.getLogRecordFactory()
    if getattr(previous, _MARK, False):
        return True

    def record_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        span = _current.get()
        if span is not None and span.trace_id:
            record.trace_id = "%032x" % span.trace_id  # noqa: UP031 - cheaper per record than f-strings
            record.span_id = "%016x" % span.span_id  # noqa: UP031
            record.trace_sampled = bool(span.trace_flags & 1)
        else:
            record.trace_id = record.span_id = record.trace_sampled = None
        return record

    setattr(record_factory, _MARK, True)
    _state["previous"] = previous
    logging.setLogRecordFactory(record_factory)
    return True


def uninstall() -> None:
    """Put back the factory that was there before `install`."""
    previous = _state.pop("previous", None)
    if previous is not None and getattr(logging.getLogRecordFactory(), _MARK, False):
        logging.setLogRecordFactory(previous)  # type: ignore[arg-type]
