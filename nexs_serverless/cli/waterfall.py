"""Draw a trace as a waterfall: one row per span, a bar on the trace's time axis.

    trace 4bf92f3577b34da6a3ce929d0e0e4736 · 3 spans · 12.41 ms
                                       0 ms                              12.41 ms
    POST /orders               12.41 ms |████████████████████████████████████| cold start
    ├── load-order              3.02 ms |█████████                           |
    └── charge                  8.10 ms |          ███████████████████████   | ERROR ValueError: declined

Plain text, so it can be pasted into an issue; ANSI colour only when asked
(the CLI asks when stdout is a terminal). Rows follow the tree (children in
start order); a span whose parent was not captured starts a new tree and
says so. Names come from requests (a path, a queue), so control characters
are shown escaped, never sent to the terminal; columns are counted as a
terminal draws them (an East Asian wide character takes two), and a row
stays within the width: long names and deep trees are cut with an ellipsis,
and so are long error messages, once the bars have narrowed to 16 columns.
"""

from __future__ import annotations

import math
import unicodedata

from ..model import StatusCode

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..typing import ReadableSpan

__all__ = ["render"]

_BAR = "█"
_MIN_BAR = 16
_MAX_BAR = 60
_MAX_LABEL = 44
_MIN_NAME = 12  # columns of a deep span's name kept visible, the tree lines giving way
_FRAME = 24  # columns besides label, duration and bar: 5 of separators, 19 for marks (cold start, ...)
_MIN_MARKS = 40  # columns the marks keep on a terminal too narrow for them, past its width


def _paint(text: str, code: str, color: bool) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if color else text


def _ms(ns: int) -> str:
    return f"{ns / 1e6:.2f} ms"


def _clean(text: str) -> str:
    r"""`text` with control and format characters escaped (``\n``, ``\x1b``), on one line."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)


def _columns(text: str) -> int:
    """How many terminal columns `text` takes: wide characters two, combining marks none."""
    if text.isascii():
        return len(text)
    return sum(
        0 if unicodedata.combining(ch) else 2 if unicodedata.east_asian_width(ch) in "WF" else 1
        for ch in text
    )


def _cut(text: str, columns: int) -> str:
    """`text` in at most `columns` columns, ending with an ellipsis when it was cut."""
    if _columns(text) <= columns:
        return text
    kept: list[str] = []
    used = 0
    for ch in text:
        used += _columns(ch)
        if used > columns - 1:
            break
        kept.append(ch)
    return "".join(kept) + "…"


def _pad(text: str, columns: int) -> str:
    return text + " " * max(0, columns - _columns(text))


def _label(prefix: str, name: str, width: int) -> str:
    """Tree prefix and name in `width` columns: the name is cut first, then the tree lines give way."""
    if len(prefix) + _columns(name) <= width:  # the tree lines are one column each
        return prefix + name
    room = width - len(prefix)
    if room >= min(_columns(name), _MIN_NAME):
        return prefix + _cut(name, room)
    keep = max(0, width - 1 - min(_columns(name), _MIN_NAME))  # the prefix's last columns
    return "…" + prefix[len(prefix) - keep :] + _cut(name, width - 1 - keep)


def _rows(members: Sequence[ReadableSpan], ids: set[int]) -> list[tuple[str, str, ReadableSpan]]:
    """(tree prefix, name, span) in depth-first order, children by start time.

    Iterative, so a trace thousands of spans deep draws; every span is drawn
    once, even spans whose parent links form a cycle (not from our tracer, but
    `render` takes any spans). `ids` are the members' span ids.
    """
    children: dict[int, list[ReadableSpan]] = {}
    roots: list[ReadableSpan] = []
    ordered = sorted(members, key=lambda s: s.start_ns)
    for span in ordered:
        parent = span.parent_span_id
        if parent and parent in ids and parent != span.span_id:
            children.setdefault(parent, []).append(span)
        else:
            roots.append(span)
    rows: list[tuple[str, str, ReadableSpan]] = []
    drawn: set[int] = set()  # id() of each span drawn

    def walk(top: ReadableSpan) -> None:
        stack: list[tuple[ReadableSpan, str, str]] = [(top, "", "")]
        while stack:
            span, prefix, glyph = stack.pop()
            if id(span) in drawn:
                continue
            drawn.add(id(span))
            rows.append((prefix + glyph, _clean(span.name), span))
            kids = [kid for kid in children.get(span.span_id, ()) if id(kid) not in drawn]
            inner = prefix + ("" if not glyph else ("    " if glyph.startswith("└") else "│   "))
            last = len(kids) - 1
            stack.extend(  # pushed last first: popped in start order
                (kids[index], inner, "└── " if index == last else "├── ") for index in range(last, -1, -1)
            )

    for root in roots:
        walk(root)
    for span in ordered:  # reachable from no root: a cycle of parents, drawn from its earliest span
        if id(span) not in drawn:
            walk(span)
    return rows


def _marks(span: ReadableSpan, orphan: bool) -> list[tuple[str, str]]:
    """The row's notes, each with its colour code."""
    marks: list[tuple[str, str]] = []
    if orphan:
        marks.append(("parent not captured", "2"))
    if span.attributes.get("faas.coldstart") is True:
        marks.append(("cold start", "36"))
    if span.force_ended:
        marks.append(("force-ended (timeout guard)", "33"))
    if span.status_code == StatusCode.ERROR:
        marks.append((("ERROR " + _clean(span.status_description or "")).rstrip(), "31"))
    return marks


def _marks_width(marks: list[tuple[str, str]]) -> int:
    return sum(_columns(text) for text, _ in marks) + 2 * max(0, len(marks) - 1)


def _fit(marks: list[tuple[str, str]], columns: int, color: bool) -> str:
    """`marks` in at most `columns` columns, the last one (an error's description) cut first."""
    if not marks:
        return ""
    *others, (last, code) = marks
    room = columns - _marks_width(others) - (2 if others else 0)
    fitted = [*others, (_cut(last, max(room, len("ERROR") + 2)), code)]
    return "  ".join(_paint(text, code, color) for text, code in fitted)


def _orphan(span: ReadableSpan, ids: set[int]) -> bool:
    """A span whose local parent is not among the spans (a remote parent is expected to be missing)."""
    parent = span.parent_span_id
    return bool(parent) and parent not in ids and not getattr(span, "parent_is_remote", False)


def _bar(span: ReadableSpan, origin: int, total: int, width: int) -> str:
    start = (span.start_ns - origin) / total * width
    end = (span.end_ns - origin) / total * width
    first = min(width - 1, max(0, math.floor(start)))
    last = min(width, max(first + 1, math.ceil(end)))
    return " " * first + _BAR * (last - first) + " " * (width - last)


def render(spans: Sequence[ReadableSpan], *, width: int = 100, color: bool = False) -> str:
    """The waterfall of every trace in `spans`, one block per trace.

    Args:
        spans: ended spans (ours or any with the same fields).
        width: the terminal width to fit.
        color: ANSI colours (errors red, cold start cyan, bars green).
    """
    by_trace: dict[int, list[ReadableSpan]] = {}
    for span in spans:
        by_trace.setdefault(span.trace_id, []).append(span)
    blocks: list[str] = []
    for trace_id, members in by_trace.items():
        ids = {span.span_id for span in members}
        origin = min(span.start_ns for span in members)
        total = max(1, max(span.end_ns for span in members) - origin)
        rows = _rows(members, ids)
        label_width = min(_MAX_LABEL, max(len(prefix) + _columns(name) for prefix, name, _ in rows))
        durations = [_ms(span.end_ns - span.start_ns) for _, _, span in rows]
        duration_width = max(len(text) for text in durations)
        notes = [_marks(span, _orphan(span, ids)) for _, _, span in rows]
        bar_width = max(_MIN_BAR, min(_MAX_BAR, width - label_width - duration_width - _FRAME))
        longest = max(_marks_width(marks) for marks in notes)
        if longest > _FRAME - 5:  # long marks (an error's message): the bar narrows before they are cut
            room = width - label_width - duration_width - 5 - longest
            bar_width = max(_MIN_BAR, min(bar_width, room))
        marks_width = max(_MIN_MARKS, width - (label_width + duration_width + bar_width + 5))
        plural = "s" if len(members) > 1 else ""
        lines = [
            _paint(f"trace {trace_id:032x}", "1", color) + f" · {len(members)} span{plural} · {_ms(total)}",
            " " * (label_width + duration_width + 3) + "0 ms".ljust(bar_width - len(_ms(total))) + _ms(total),
        ]
        for (prefix, name, span), duration, note in zip(rows, durations, notes, strict=True):
            label = _label(prefix, name, label_width)
            failed = span.status_code == StatusCode.ERROR
            bar = _paint(_bar(span, origin, total, bar_width), "31" if failed else "32", color)
            marks = _fit(note, marks_width, color)
            line = f"{_pad(label, label_width)} {duration:>{duration_width}} |{bar}|"
            lines.append(f"{line} {marks}" if marks else line)
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n" if blocks else "(no spans)\n"
