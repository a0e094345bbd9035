r"""`ConsoleExporter`: each trace as a compact tree on stdout (the default exporter).

It is the first thing a new user sees, so it favours reading over completeness:
one line per span with its duration, kind when not internal, status, the
cold-start mark and a few telling attributes; the platform's bulky resource
attributes are left out (``verbose=True`` shows every attribute).

What it prints comes partly from outside (a user agent, a URL, an exception
message), and lands in a log that people read in terminals: control
characters (newlines, ANSI escapes, bidirectional overrides) are written as
escapes (``\n``, ``\x1b``), so one span is always one line and nothing in a
value can repaint the screen. Without ``verbose``, names, values and the
status description are shortened. A span whose parent is not in the batch
is printed as a root; so is the first of spans whose parents form a cycle.
A failure to write (a closed stream) is counted and reported as a FAILURE,
never raised.
"""

from __future__ import annotations

import sys

from ..model import SpanKind, StatusCode
from .base import ExportResult

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import TextIO

    from ..config import Settings
    from ..typing import ReadableSpan as AnySpan

__all__ = ["ConsoleExporter", "format_trees", "from_settings"]

# Attributes that are the same on every invocation or already shown another way.
_QUIET_PREFIXES = (
    "cloud.",
    "faas.name",
    "faas.version",
    "faas.instance",
    "faas.max_memory",
    "faas.coldstart",
    "faas.invocation_id",
    "service.",
    "nexs.init",
)
_FIRST = ("faas.trigger", "http.response.status_code", "http.route", "messaging.system", "tenant.id")
_MAX_VALUE = 48
_MAX_TEXT = 120  # span names and status descriptions, without verbose
_MAX_SHOWN = 6
# C0 and C1 controls, DEL, line/paragraph separators, bidirectional overrides and isolates.
_UNSAFE = [*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
_ESCAPES = {code: repr(chr(code))[1:-1] for code in _UNSAFE}


class ConsoleExporter:
    """Prints every exported trace as an indented tree.

    Args:
        stream: where to write (default: the `sys.stdout` of the moment, so
            pytest's capture and Lambda's log capture both see it).
        verbose: print every attribute instead of a few telling ones.
        color: ANSI colours; default when the stream is a terminal.
    """

    def __init__(
        self, *, stream: TextIO | None = None, verbose: bool = False, color: bool | None = None
    ) -> None:
        self._stream = stream
        self._verbose = verbose
        self._color = color

    def export(self, spans: Sequence[AnySpan]) -> ExportResult:
        """Write the tree of `spans`; a failure (a closed stream) is FAILURE, never raised."""
        try:
            stream = self._stream or sys.stdout
            color = self._color if self._color is not None else _isatty(stream)
            text = format_trees(spans, verbose=self._verbose, color=color)
            try:
                stream.write(text)
            except UnicodeEncodeError:  # a stray surrogate, or a stream that cannot write the tree's lines
                encoding = getattr(stream, "encoding", None) or "utf-8"
                stream.write(text.encode(encoding, "replace").decode(encoding, "replace"))
            stream.flush()
        except Exception as exc:
            from .. import _guard as guard  # only on failure: it imports logging

            guard.report("console_export", exc)
            return ExportResult.FAILURE
        return ExportResult.SUCCESS

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Nothing is pending."""
        return True

    def shutdown(self) -> None:
        """Nothing to release."""


def format_trees(spans: Sequence[AnySpan], *, verbose: bool = False, color: bool = False) -> str:
    """Render `spans` grouped by trace, children under parents, in start order."""
    by_trace: dict[int, list[AnySpan]] = {}
    for span in spans:
        by_trace.setdefault(span.trace_id, []).append(span)
    lines: list[str] = []
    for trace_id, members in by_trace.items():
        ids = {span.span_id for span in members}
        children: dict[int, list[AnySpan]] = {}
        roots: list[AnySpan] = []
        ordered = sorted(members, key=lambda s: s.start_ns)
        for span in ordered:
            parent = span.parent_span_id
            if parent and parent in ids and parent != span.span_id:
                children.setdefault(parent, []).append(span)
            else:
                roots.append(span)
        _break_cycles(ordered, roots, children)
        lines.append(_paint(f"trace {trace_id:032x}", "1", color) + f" · {len(members)} span(s)")
        _render(roots, children, lines, verbose, color)
    return "\n".join(lines) + "\n" if lines else ""


def _break_cycles(ordered: list[AnySpan], roots: list[AnySpan], children: dict[int, list[AnySpan]]) -> None:
    """Add to `roots` the earliest span of each group no root reaches (parents in a cycle)."""
    reached: set[int] = set()

    def reach(start: AnySpan) -> None:
        todo = [start]
        while todo:
            span = todo.pop()
            if id(span) not in reached:
                reached.add(id(span))
                todo.extend(children.get(span.span_id, ()))

    for root in roots:
        reach(root)
    if len(reached) == len(ordered):
        return
    for span in ordered:
        if id(span) not in reached:
            roots.append(span)
            reach(span)
    roots.sort(key=lambda s: s.start_ns)  # stable: in start order among the others


def _render(
    roots: list[AnySpan], children: dict[int, list[AnySpan]], lines: list[str], verbose: bool, color: bool
) -> None:
    """One line per span, depth first; a loop, not recursion (a trace may nest thousands deep)."""
    placed = {id(root) for root in roots}  # each span printed once, even where span ids repeat
    stack = [(root, "", index == len(roots) - 1) for index, root in enumerate(roots)]
    stack.reverse()
    while stack:
        span, prefix, last = stack.pop()
        lines.append(prefix + ("└── " if last else "├── ") + _describe(span, verbose, color))
        kids = [kid for kid in children.get(span.span_id, ()) if id(kid) not in placed]
        placed.update(id(kid) for kid in kids)
        inner = prefix + ("    " if last else "│   ")
        stack.extend((kids[index], inner, index == len(kids) - 1) for index in range(len(kids) - 1, -1, -1))


def _describe(span: AnySpan, verbose: bool, color: bool) -> str:
    parts = [_paint(_text(span.name, verbose, _MAX_TEXT), "1", color)]
    if span.kind != SpanKind.INTERNAL:
        parts.append(f"[{SpanKind.name_of(span.kind)}]")
    parts.append(f"{(span.end_ns - span.start_ns) / 1e6:.2f} ms")
    attrs = span.attributes
    if attrs.get("faas.coldstart") is True:
        parts.append(_paint("cold start", "36", color))
    if span.force_ended:
        parts.append(_paint("force-ended", "33", color))
    if span.status_code == StatusCode.ERROR:
        description = span.status_description
        parts.append(
            _paint(
                "✗ ERROR" + (f" {_text(description, verbose, _MAX_TEXT)}" if description else ""), "31", color
            )
        )
    if span.parent_is_remote and span.parent_span_id:
        parts.append(f"(remote parent {span.parent_span_id:016x})")
    ordered = _ordered(attrs, verbose)
    for key, value in ordered if verbose else ordered[:_MAX_SHOWN]:
        label = _paint(f"{_text(key, verbose, _MAX_TEXT)}=", "2", color)
        parts.append(label + _text(value, verbose, _MAX_VALUE))
    for event in span.events:
        if event.name == "exception" and not verbose:
            continue
        parts.append(_paint(f"event:{_text(event.name, verbose, _MAX_VALUE)}", "35", color))
    if span.links:
        parts.append(f"links={len(span.links)}")
    return " ".join(parts)


def _text(value: object, verbose: bool, limit: int) -> str:
    """`value` as one safe line: shortened past `limit` characters (unless verbose), controls escaped."""
    text = value if type(value) is str else str(value)
    if not verbose and len(text) > limit:
        text = text[: limit - 1] + "…"
    return text if text.isprintable() else text.translate(_ESCAPES)


def _ordered(attrs: Mapping[str, object], verbose: bool) -> list[tuple[str, object]]:
    """Telling attributes first (trigger, status, route), platform boilerplate left out."""
    if verbose:
        return list(attrs.items())
    first = [(key, attrs[key]) for key in _FIRST if key in attrs]
    rest = [
        (key, value)
        for key, value in attrs.items()
        if key not in _FIRST and not key.startswith(_QUIET_PREFIXES)
    ]
    return first + rest


def _paint(text: str, code: str, color: bool) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if color else text


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except Exception:
        return False


def from_settings(settings: Settings) -> ConsoleExporter:
    """The exporter ``OTEL_TRACES_EXPORTER=console`` stands for."""
    return ConsoleExporter()
