"""Trace ids on log records, so logs and traces join (Powertools ``Logger`` and plain ``logging``).

A log-record factory (``logging.setLogRecordFactory``) wraps the current one
and stamps every record with the current span:

- ``trace_id`` (32 hex), ``span_id`` (16 hex), ``trace_sampled`` (bool);
  ``None`` outside a trace, so Powertools' JSON formatter leaves them out.

Powertools' ``Logger`` writes record attributes it does not reserve as JSON
keys, so its lines gain ``trace_id``/``span_id``; a plain format can use
``%(trace_id)s``. The factory chains to whatever factory was installed
before (OpenTelemetry's logging instrumentation included) and `uninstall`
puts that one back. A factory installed after ours that calls ours stays
on top, with ours below it: `uninstall` then turns ours off (records pass
through it unstamped), since a stamped ``trace_id`` left behind would make
``Logger.makeRecord``, once put back, raise for a log call's own one.

A log call that names one of these itself (``extra={"trace_id": ...}``, a
``LoggerAdapter``'s ``extra``) keeps its own value: ``Logger.makeRecord``
refuses to overwrite an attribute the factory set (a KeyError into the
caller's code), so while installed it takes those keys out of ``extra`` and
sets them on the record afterwards.
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
_KEYS = frozenset({"trace_id", "span_id", "trace_sampled"})
_state: dict[str, object] = {}


def _wrap_make_record() -> None:
    """Let a log call's own ``trace_id``/``span_id``/``trace_sampled`` win over the factory's."""
    original = logging.Logger.makeRecord
    if getattr(original, _MARK, False):
        return

    def makeRecord(self: logging.Logger, *args: Any, **kwargs: Any) -> logging.LogRecord:  # noqa: N802
        # (name, level, fn, lno, msg, args, exc_info, func, extra, sinfo): `Logger._log` passes all
        positional = len(args) > 8
        extra = args[8] if positional else kwargs.get("extra")
        if not extra or _KEYS.isdisjoint(extra):
            return original(self, *args, **kwargs)
        theirs = {key: value for key, value in extra.items() if key in _KEYS}
        rest = {key: value for key, value in extra.items() if key not in _KEYS}
        if positional:
            args = (*args[:8], rest, *args[9:])
        else:
            kwargs["extra"] = rest
        record = original(self, *args, **kwargs)
        record.__dict__.update(theirs)
        return record

    setattr(makeRecord, _MARK, True)
    _state["make_record"] = original
    logging.Logger.makeRecord = makeRecord  # type: ignore[method-assign]


def install() -> bool:
    """Install the record factory (once); True when installed."""
    previous: Callable[..., logging.LogRecord] = logging.getLogRecordFactory()
    # Ours on top is the installed one only while it stamps: one `uninstall` turned off under a
    # later factory comes back on top when that factory's owner removes it (OpenTelemetry's
    # LoggingInstrumentor puts back the factory it found), and install then goes on top of it.
    if getattr(previous, _MARK, False) and previous is _state.get("factory"):
        return True
    _turn_off()  # an earlier one of ours, now under another factory: only the newest stamps
    on = [True]

    def record_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if not on[0]:  # uninstalled, but still called by a factory installed after ours
            return record
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
    _state["on"] = on
    _state["factory"] = record_factory
    _wrap_make_record()
    logging.setLogRecordFactory(record_factory)
    return True


def uninstall() -> None:
    """Put back the factory that was there before `install`, and `Logger.makeRecord`."""
    _turn_off()
    _state.pop("factory", None)
    previous = _state.pop("previous", None)
    if previous is not None and getattr(logging.getLogRecordFactory(), _MARK, False):
        logging.setLogRecordFactory(previous)  # type: ignore[arg-type]
    make_record = _state.pop("make_record", None)
    if make_record is not None and getattr(logging.Logger.makeRecord, _MARK, False):
        logging.Logger.makeRecord = make_record  # type: ignore[method-assign,assignment]


def _turn_off() -> None:
    """Make the installed factory pass records through, wherever it sits in the chain."""
    on = _state.pop("on", None)
    if isinstance(on, list):
        on[0] = False
