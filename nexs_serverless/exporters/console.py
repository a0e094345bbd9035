"""`ConsoleExporter`: each trace as a compact tree on stdout (the default exporter).

It is the first thing a new user sees, so it favours reading over completeness:
one line per span with its duration, kind when not internal, status, the
cold-start mark and a few telling attributes; the platform's bulky resource
attributes are left out (``verbose=True`` shows every attribute).
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
_MAX_SHOWN = 6


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
        """Write the tree of `spans`."""
        stream = self._stream or sys.stdout
        color = self._color if self._color is not None else _isatty(stream)
        text = format_trees(spans, verbose=self._verbose, color=color)
        try:
            stream.write(text)
        except UnicodeEncodeError:  # a stray surrogate, or a stream that cannot write the tree's lines
            encoding = getattr(stream, "encoding", None) or "utf-8"
            stream.write(text.encode(encoding, "replace").decode(encoding, "replace"))
        stream.flush()
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
        for span in sorted(members, key=lambda s: s.start_ns):
            if span.parent_span_id and span.parent_span_id in ids:
                children.setdefault(span.parent_span_id, []).append(span)
            else:
                roots.append(span)
        lines.append(_paint(f"trace {trace_id:032x}", "1", color) + f" · {len(members)} span(s)")
        for index, root in enumerate(roots):
            _render(root, children, "", index == len(roots) - 1, lines, verbose, color)
    return "\n".join(lines) + "\n" if lines else ""


def _render(
    span: AnySpan,
    children: dict[int, list[AnySpan]],
    prefix: str,
    last: bool,
    lines: list[str],
    verbose: bool,
    color: bool,
) -> None:
    lines.append(prefix + ("└── " if last else "├── ") + _describe(span, verbose, color))
    kids = children.get(span.span_id, [])
    for index, child in enumerate(kids):
        _render(
            child,
            children,
            prefix + ("    " if last else "│   "),
            index == len(kids) - 1,
            lines,
            verbose,
            color,
        )


def _describe(span: AnySpan, verbose: bool, color: bool) -> str:
    parts = [_paint(span.name, "1", color)]
    if span.kind != SpanKind.INTERNAL:
        parts.append(f"[{SpanKind.name_of(span.kind)}]")
    parts.append(f"{(span.end_ns - span.start_ns) / 1e6:.2f} ms")
    attrs = span.attributes
    if attrs.get("faas.coldstart") is True:
        parts.append(_paint("cold start", "36", color))
    if span.force_ended:
        parts.append(_paint("force-ended", "33", color))
    if span.status_code == StatusCode.ERROR:
        parts.append(
            _paint(
                "✗ ERROR" + (f" {span.status_description}" if span.status_description else ""), "31", color
            )
        )
    if span.parent_is_remote and span.parent_span_id:
        parts.append(f"(remote parent {span.parent_span_id:016x})")
    ordered = _ordered(attrs, verbose)
    for key, value in ordered if verbose else ordered[:_MAX_SHOWN]:
        text = str(value)
        if not verbose and len(text) > _MAX_VALUE:
            text = text[: _MAX_VALUE - 1] + "…"
        parts.append(_paint(f"{key}=", "2", color) + text)
    for event in span.events:
        if event.name == "exception" and not verbose:
            continue
        parts.append(_paint(f"event:{event.name}", "35", color))
    if span.links:
        parts.append(f"links={len(span.links)}")
    return " ".join(parts)


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
