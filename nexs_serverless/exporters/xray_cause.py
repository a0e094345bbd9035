"""How a failed span reads in X-Ray: the ``fault``/``error``/``throttle`` flags and the ``cause``.

X-Ray's meaning of the flags: ``throttle`` (with ``error``) for 429, ``error``
for other client errors (4xx), ``fault`` for server errors (5xx) and for a
span whose status is ERROR without a 4xx. The ``cause`` lists the span's
``exception`` events (type, message, the Python stack parsed into frames,
most recent call first, as X-Ray's console lists them; ``remote`` when the
exception came from a downstream call), or the status description when no
exception was recorded. Exception ids are derived from the span id, so a
span sent twice keeps them.
"""

from __future__ import annotations

import re

from ..model import StatusCode

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..typing import ReadableSpan

__all__ = ["MAX_EXCEPTIONS", "MAX_FRAMES", "cause_of", "set_flags"]

MAX_EXCEPTIONS = 10
MAX_FRAMES = 32
# A frame line of a Python traceback: '  File "path", line 12, in label'.
_FRAME = re.compile(r'^\s*File "([^"]*)", line (\d+), in (.*)$', re.MULTILINE)


def set_flags(span: ReadableSpan, status: int | None, doc: dict[str, object]) -> None:
    """Set X-Ray's failure flags on `doc` from the HTTP `status` and the span status."""
    if status is not None and status == 429:
        doc["throttle"] = True
        doc["error"] = True
    elif status is not None and 400 <= status < 500:
        doc["error"] = True
    elif status is not None and status >= 500:
        doc["fault"] = True
    if span.status_code == StatusCode.ERROR and "error" not in doc:
        doc["fault"] = True


def cause_of(span: ReadableSpan, *, remote: bool = False) -> dict[str, object] | None:
    """The ``cause`` object for `span`, or None when nothing failed."""
    exceptions: list[dict[str, object]] = []
    for index, event in enumerate(span.events):
        if event.name != "exception" or len(exceptions) >= MAX_EXCEPTIONS:
            continue
        attrs = event.attributes
        entry: dict[str, object] = {"id": _exception_id(span.span_id, index)}
        for field, key in (("type", "exception.type"), ("message", "exception.message")):
            if key in attrs:
                entry[field] = str(attrs[key])
        stack = attrs.get("exception.stacktrace")
        if isinstance(stack, str):
            frames = [
                {"path": path, "line": int(line), "label": label.strip()}
                for path, line, label in _FRAME.findall(stack)
            ]
            frames.reverse()  # most recent call first, as X-Ray's console lists them
            if len(frames) > MAX_FRAMES:
                entry["truncated"] = len(frames) - MAX_FRAMES
                frames = frames[:MAX_FRAMES]
            if frames:
                entry["stack"] = frames
        if remote:
            entry["remote"] = True
        exceptions.append(entry)
    if not exceptions and span.status_code == StatusCode.ERROR and span.status_description:
        exceptions.append({"id": _exception_id(span.span_id, 0), "message": span.status_description})
    return {"exceptions": exceptions} if exceptions else None


def _exception_id(span_id: int, index: int) -> str:
    # Deterministic, unique per span and event: the same span re-sent keeps its ids.
    return f"{(span_id ^ ((index + 1) * 0x9E3779B97F4A7C15)) & 0xFFFFFFFFFFFFFFFF:016x}"
