"""How a failed span reads in X-Ray: the ``fault``/``error``/``throttle`` flags and the ``cause``.

X-Ray's meaning of the flags: ``throttle`` (with ``error``) for 429, ``error``
for other client errors (4xx), ``fault`` for server errors (5xx) and for a
span whose status is ERROR without a 4xx. A status outside 400-599 says
nothing either way (the Collector's rule): only the span status counts then.

The ``cause`` lists the span's ``exception`` events (type, message, the Python
stack parsed into frames, most recent call first, as X-Ray's console lists
them; ``remote`` when the exception came from a downstream call), or the
status description when no exception was recorded. A chained traceback
("During handling of the above exception..." or "The above exception was the
direct cause...") is one exception per link, each with its own frames and
the next one's id in ``cause``, as the segment document schema describes
(the Collector does the same for "During handling"). An exception group
(``asyncio.TaskGroup``'s) keeps the frames Python prints after ``  | ``, not
those of its sub-exceptions. Exception ids are derived from the span id, so a
span sent twice keeps them.
"""

from __future__ import annotations

import re

from ..model import StatusCode

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..typing import ReadableSpan

__all__ = ["MAX_EXCEPTIONS", "MAX_FRAMES", "cause_of", "set_flags"]

MAX_EXCEPTIONS = 10  # entries of one cause, chained ones included
MAX_FRAMES = 32
# A frame line of a Python traceback: '  File "path", line 12, in label'. An exception
# group (``ExceptionGroup``, what ``asyncio.TaskGroup`` raises) prints its own frames
# after "  | "; its sub-exceptions' tracebacks, further in ("    | "), are not its frames.
_GROUP = r"(?:  \| )?"
_FRAME = re.compile("^" + _GROUP + r'\s*File "([^"]*)", line (\d+), in (.*)$', re.MULTILINE)
# The exception line of a group's own traceback ("  | ExceptionGroup: message (2 sub-exceptions)").
_GROUP_LINE = re.compile(r"^  \| (\S.*)$", re.MULTILINE)
# The lines Python prints between the tracebacks of a chain (traceback.format_exception).
_CHAIN = re.compile(
    r"^(?:During handling of the above exception, another exception occurred:"
    r"|The above exception was the direct cause of the following exception:)[ \t]*$",
    re.MULTILINE,
)
# What Python prints instead of a frame repeated more than 3 times (a deep recursion).
_REPEATED = re.compile("^" + _GROUP + r"\s*\[Previous line repeated (\d+) more times?\]$", re.MULTILINE)
_MASK = 0xFFFFFFFFFFFFFFFF


def set_flags(span: ReadableSpan, status: int | None, doc: dict[str, object]) -> None:
    """Set X-Ray's failure flags on `doc` from the HTTP `status` and the span status."""
    if status is not None and 400 <= status < 500:
        doc["error"] = True
        if status == 429:
            doc["throttle"] = True
    elif status is not None and 500 <= status < 600:
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
        entry: dict[str, object] = {"id": _exception_id(span.span_id, index, 0)}
        for field, key in (("type", "exception.type"), ("message", "exception.message")):
            if key in attrs:
                entry[field] = str(attrs[key])
        stack = attrs.get("exception.stacktrace")
        causes: list[str] = []
        if isinstance(stack, str):
            # The raised exception's own traceback is the last block; its causes precede it.
            *causes, own = _CHAIN.split(stack) if "exception" in stack else (stack,)
            _add_frames(entry, own)
        if remote:
            entry["remote"] = True
        exceptions.append(entry)
        previous = entry
        for depth, block in enumerate(reversed(causes), start=1):
            if len(exceptions) >= MAX_EXCEPTIONS:
                break
            linked = _chained(block, _exception_id(span.span_id, index, depth), remote)
            previous["cause"] = linked["id"]
            exceptions.append(linked)
            previous = linked
    if not exceptions and span.status_code == StatusCode.ERROR and span.status_description:
        exceptions.append({"id": _exception_id(span.span_id, 0, 0), "message": span.status_description})
    return {"exceptions": exceptions} if exceptions else None


def _chained(block: str, exception_id: str, remote: bool) -> dict[str, object]:
    """The exception of one earlier traceback of a chain: its last line names it."""
    entry: dict[str, object] = {"id": exception_id}
    group = _GROUP_LINE.search(block) if "+ Exception Group Traceback" in block else None
    lines = [group.group(1)] if group else [line for line in block.strip().splitlines() if line.strip()]
    if lines:
        kind, sep, message = lines[-1].partition(": ")
        if not kind.startswith(" "):  # an exception line, not a frame or source line
            entry["type"] = kind
            if sep:
                entry["message"] = message
    _add_frames(entry, block)
    if remote:
        entry["remote"] = True
    return entry


def _add_frames(entry: dict[str, object], traceback_text: str) -> None:
    frames = [
        {"path": path, "line": int(line), "label": label.strip()}
        for path, line, label in _FRAME.findall(traceback_text)
    ]
    frames.reverse()  # most recent call first, as X-Ray's console lists them
    # ``truncated``: frames left out, the ones Python folded into "[Previous line repeated N more times]" too.
    omitted = (
        sum(int(count) for count in _REPEATED.findall(traceback_text)) if "[Previous" in traceback_text else 0
    )
    if len(frames) > MAX_FRAMES:
        omitted += len(frames) - MAX_FRAMES
        frames = frames[:MAX_FRAMES]
    if omitted:
        entry["truncated"] = omitted
    if frames:
        entry["stack"] = frames


def _exception_id(span_id: int, index: int, depth: int) -> str:
    # Deterministic, unique per span, event and link of a chain: the same span re-sent keeps its ids.
    mixed = span_id ^ ((index + 1) * 0x9E3779B97F4A7C15) ^ (depth * 0xC2B2AE3D27D4EB4F)
    return f"{mixed & _MASK:016x}"
