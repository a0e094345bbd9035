"""Draw a trace as a waterfall: one row per span, a bar on the trace's time axis.

    trace 4bf92f3577b34da6a3ce929d0e0e4736 · 3 spans · 12.41 ms
                                       0 ms                              12.41 ms
    POST /orders               12.41 ms |████████████████████████████████████| cold start
    ├── load-order              3.02 ms |█████████                           |
    └── charge                  8.10 ms |          ███████████████████████   | ERROR ValueError: declined

Plain text, so it can be pasted into an issue; ANSI colour only when asked
(the CLI asks when stdout is a terminal). Rows follow the tree (children in
start order); a span whose parent was not captured starts a new tree.
"""

from __future__ import annotations

import math

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


def _paint(text: str, code: str, color: bool) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if color else text


def _ms(ns: int) -> str:
    return f"{ns / 1e6:.2f} ms"


def _rows(members: Sequence[ReadableSpan]) -> list[tuple[str, ReadableSpan]]:
    """(tree prefix + name, span) in depth-first order, children by start time."""
    ids = {span.span_id for span in members}
    children: dict[int, list[ReadableSpan]] = {}
    roots: list[ReadableSpan] = []
    for span in sorted(members, key=lambda s: s.start_ns):
        if span.parent_span_id and span.parent_span_id in ids:
            children.setdefault(span.parent_span_id, []).append(span)
        else:
            roots.append(span)
    rows: list[tuple[str, ReadableSpan]] = []

    def walk(span: ReadableSpan, prefix: str, glyph: str) -> None:
        rows.append((prefix + glyph + span.name, span))
        kids = children.get(span.span_id, [])
        inner = prefix + ("" if not glyph else ("    " if glyph.startswith("└") else "│   "))
        for index, kid in enumerate(kids):
            walk(kid, inner, "└── " if index == len(kids) - 1 else "├── ")

    for root in roots:
        walk(root, "", "")
    return rows


def _marks(span: ReadableSpan, color: bool) -> str:
    marks: list[str] = []
    if span.attributes.get("faas.coldstart") is True:
        marks.append(_paint("cold start", "36", color))
    if span.force_ended:
        marks.append(_paint("force-ended (timeout guard)", "33", color))
    if span.status_code == StatusCode.ERROR:
        marks.append(_paint("ERROR " + (span.status_description or ""), "31", color).rstrip())
    return "  ".join(marks)


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
        origin = min(span.start_ns for span in members)
        total = max(1, max(span.end_ns for span in members) - origin)
        rows = _rows(members)
        label_width = min(_MAX_LABEL, max(len(label) for label, _ in rows))
        durations = [_ms(span.end_ns - span.start_ns) for _, span in rows]
        duration_width = max(len(text) for text in durations)
        bar_width = max(_MIN_BAR, min(_MAX_BAR, width - label_width - duration_width - 24))
        plural = "s" if len(members) > 1 else ""
        lines = [
            _paint(f"trace {trace_id:032x}", "1", color) + f" · {len(members)} span{plural} · {_ms(total)}",
            " " * (label_width + duration_width + 3) + "0 ms".ljust(bar_width - len(_ms(total))) + _ms(total),
        ]
        for (full_label, span), duration in zip(rows, durations, strict=True):
            label = full_label if len(full_label) <= label_width else full_label[: label_width - 1] + "…"
            failed = span.status_code == StatusCode.ERROR
            bar = _paint(_bar(span, origin, total, bar_width), "31" if failed else "32", color)
            marks = _marks(span, color)
            line = f"{label:<{label_width}} {duration:>{duration_width}} |{bar}|"
            lines.append(f"{line} {marks}" if marks else line)
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n" if blocks else "(no spans)\n"
