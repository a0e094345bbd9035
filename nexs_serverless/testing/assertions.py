"""Assertions that read like the trace, and fail by printing it.

    assert_span(spans, "charge", parent="GET /orders", attributes={"order.id": "42"})
    assert_trace_shape(spans, ("GET /orders", ["load-order", ("charge", ["POST /v1/charges"])]))
    assert_no_errors(spans)

`spans` is what an exporter received (`SpanRecorder` methods pass their own).
A failed assertion raises `AssertionError` whose message says what differed
and then prints the captured trace as the console exporter draws it, so the
reason is visible without a debugger.

A trace shape is a span name (a span with no children) or a ``(name,
[children...])`` pair; ``...`` among the children (or the roots) allows any
further spans there. Siblings match in any order unless ``ordered=True``.
"""

from __future__ import annotations

from ..exporters.console import format_trees
from ..model import SpanKind, StatusCode

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any

    from ..typing import ReadableSpan

    Shape = Any  # str | tuple[str, list[Shape | EllipsisType]]

__all__ = ["assert_no_errors", "assert_span", "assert_trace_shape", "format_shape"]


class _Any:
    """Default of `assert_span(parent=...)`: do not check the parent."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "ANY"


_ANY: Any = _Any()


def _names_by_id(spans: Sequence[ReadableSpan]) -> dict[int, str]:
    return {span.span_id: span.name for span in spans}


def _parent_name(span: ReadableSpan, names: Mapping[int, str]) -> str | None:
    """The parent's name; None for a root; a description for a parent outside the capture."""
    if not span.parent_span_id:
        return None
    if span.parent_span_id in names:
        return names[span.parent_span_id]
    return "(remote parent)" if span.parent_is_remote else "(parent not captured)"


def _code(value: int | str, table: tuple[str, ...], what: str) -> int:
    if isinstance(value, int):
        return value
    upper = value.upper()
    if upper not in table:
        raise ValueError(f"unknown {what} {value!r}; expected one of {', '.join(table)}")
    return table.index(upper)


def _same(expected: object, actual: object) -> bool:
    """Equal values, where True is not 1 and a list equals the tuple a span stores."""
    if isinstance(expected, list):
        expected = tuple(expected)
    if (type(expected) is bool) != (type(actual) is bool):
        return False
    return bool(expected == actual)


def _mismatches(
    span: ReadableSpan,
    names: Mapping[int, str],
    parent: object,
    attributes: Mapping[str, object] | None,
    kind: int | None,
    status: int | None,
) -> list[str]:
    reasons: list[str] = []
    if parent is not _ANY:
        actual = _parent_name(span, names)
        is_root = not span.parent_span_id or span.parent_span_id not in names
        if (parent is None and not is_root) or (parent is not None and actual != parent):
            reasons.append(f"parent is {actual or '(none: a root span)'!r}, expected {parent or '(root)'!r}")
    for key, value in (attributes or {}).items():
        if key not in span.attributes:
            reasons.append(f"attribute {key!r} is missing (expected {value!r})")
        elif not _same(value, span.attributes[key]):
            reasons.append(f"attribute {key!r} is {span.attributes[key]!r}, expected {value!r}")
    if kind is not None and span.kind != kind:
        reasons.append(f"kind is {SpanKind.name_of(span.kind)}, expected {SpanKind.name_of(kind)}")
    if status is not None and span.status_code != status:
        actual_status = StatusCode.name_of(span.status_code)
        reasons.append(f"status is {actual_status}, expected {StatusCode.name_of(status)}")
    return reasons


def _fail(message: str, spans: Sequence[ReadableSpan], *, verbose: bool = False) -> AssertionError:
    tree = format_trees(spans, verbose=verbose) if spans else "(no spans were captured)\n"
    return AssertionError(f"{message}\n\ncaptured trace:\n{tree}")


def assert_span(
    spans: Sequence[ReadableSpan],
    name: str,
    *,
    parent: str | None = _ANY,
    attributes: Mapping[str, object] | None = None,
    kind: int | str | None = None,
    status: int | str | None = None,
) -> ReadableSpan:
    """Assert that a span named `name` exists with these properties, and return it.

    Args:
        spans: the captured spans.
        name: the span's name.
        parent: the parent span's name; None requires a root span (no parent
            among the captured spans); omitted, the parent is not checked.
        attributes: attributes the span must have with these values (others
            may exist); a list matches the tuple the span stores.
        kind: ``"server"``, ``"client"``, ... or a `SpanKind`.
        status: ``"unset"``, ``"ok"``, ``"error"`` or a `StatusCode`.

    Returns:
        The first span that matches.

    Raises:
        AssertionError: when no span matches; the message lists why each span
            of that name did not, then prints the trace.
    """
    __tracebackhide__ = True
    spans = list(spans)  # read more than once: a generator must not look empty the second time
    kind_code = None if kind is None else _code(kind, SpanKind.NAMES, "span kind")
    status_code = None if status is None else _code(status, StatusCode.NAMES, "status")
    names = _names_by_id(spans)
    candidates = [span for span in spans if span.name == name]
    if not candidates:
        known = ", ".join(sorted({repr(span.name) for span in spans})) or "none"
        raise _fail(f"no span named {name!r} (span names: {known})", spans)
    report: list[str] = []
    for span in candidates:
        reasons = _mismatches(span, names, parent, attributes, kind_code, status_code)
        if not reasons:
            return span
        report.append(f"  span {span.span_id:016x}: " + "; ".join(reasons))
    plural = "s" if len(candidates) > 1 else ""
    raise _fail(
        f"span {name!r} found ({len(candidates)} span{plural}) but none matched:\n" + "\n".join(report),
        spans,
        verbose=attributes is not None,
    )


def assert_no_errors(spans: Sequence[ReadableSpan]) -> None:
    """Assert that no captured span has status ERROR.

    Raises:
        AssertionError: naming each failed span and its status description.
    """
    __tracebackhide__ = True
    spans = list(spans)  # the failure message draws them again
    failed = [span for span in spans if span.status_code == StatusCode.ERROR]
    if failed:
        lines = [f"  {span.name!r}: {span.status_description or 'ERROR'}" for span in failed]
        raise _fail(f"{len(failed)} span(s) ended with status ERROR:\n" + "\n".join(lines), spans)


# -- trace shapes -------------------------------------------------------------------


class _Expected:
    """One node of a parsed shape: a name, the children, and whether others may exist."""

    __slots__ = ("children", "name", "open")

    def __init__(self, name: str, children: list[_Expected], open_: bool) -> None:
        self.name = name
        self.children = children
        self.open = open_


class _Node:
    """One captured span in tree form."""

    __slots__ = ("children", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self.children: list[_Node] = []


def _parse_list(items: Sequence[Shape]) -> tuple[list[_Expected], bool]:
    if not isinstance(items, (list, tuple)):
        raise TypeError(f"children must be a list of shapes, got {items!r}")
    nodes = [_parse(item) for item in items if item is not Ellipsis]
    return nodes, len(nodes) != len(items)


def _parse(shape: Shape) -> _Expected:
    if isinstance(shape, str):
        return _Expected(shape, [], False)
    if isinstance(shape, tuple) and len(shape) == 2 and isinstance(shape[0], str):
        children, open_ = _parse_list(shape[1])
        return _Expected(shape[0], children, open_)
    raise TypeError(f"a trace shape is a span name or a (name, [children]) pair, got {shape!r}")


def _forest(spans: Sequence[ReadableSpan]) -> list[_Node]:
    nodes = {span.span_id: _Node(span.name) for span in spans}
    roots: list[_Node] = []
    for span in sorted(spans, key=lambda s: s.start_ns):
        node = nodes[span.span_id]
        parent = nodes.get(span.parent_span_id) if span.parent_span_id else None
        (parent.children if parent is not None else roots).append(node)
    return roots


def _match(expected: _Expected, node: _Node, ordered: bool, memo: dict[tuple[int, int], bool]) -> bool:
    key = (id(expected), id(node))
    found = memo.get(key)
    if found is None:
        found = memo[key] = expected.name == node.name and _match_all(
            expected.children, expected.open, node.children, ordered, memo
        )
    return found


def _match_all(
    expected: list[_Expected],
    open_: bool,
    nodes: list[_Node],
    ordered: bool,
    memo: dict[tuple[int, int], bool],
) -> bool:
    """Whether each expected shape has its own captured node (all of them, unless `open_`).

    Unordered, this is a bipartite matching, found by augmenting paths (Kuhn's algorithm) over
    the memoised pairwise matches: polynomial, where trying every assignment took minutes for a
    dozen same-named siblings of which one differs.
    """
    if len(expected) > len(nodes) or (not open_ and len(expected) != len(nodes)):
        return False
    if ordered:
        found = 0  # earliest match first is optimal for a subsequence
        for node in nodes:
            if found < len(expected) and _match(expected[found], node, ordered, memo):
                found += 1
        return found == len(expected)
    fits = [[p for p, node in enumerate(nodes) if _match(shape, node, ordered, memo)] for shape in expected]
    owner = [-1] * len(nodes)  # captured node -> the expected shape it is matched to

    def augment(index: int, seen: set[int]) -> bool:
        for position in fits[index]:
            if position not in seen:
                seen.add(position)
                if owner[position] == -1 or augment(owner[position], seen):
                    owner[position] = index
                    return True
        return False

    return all(augment(index, set()) for index in range(len(expected)))


def _explain(expected: list[_Expected], open_: bool, nodes: list[_Node], where: str) -> str:
    """Best effort: the first level, top down, where the names differ."""
    want = sorted(node.name for node in expected)
    have = sorted(node.name for node in nodes)
    if want != have and not (open_ and all(want.count(n) <= have.count(n) for n in set(want))):
        extra = " (plus any others)" if open_ else ""
        return f"{where}: expected {want}{extra}, found {have}"
    pool = list(nodes)
    for node in expected:
        twin = next(candidate for candidate in pool if candidate.name == node.name)
        pool.remove(twin)
        reason = _explain(node.children, node.open, twin.children, f"under {node.name!r}")
        if reason:
            return reason
    return ""


def format_shape(shape: Sequence[Shape]) -> str:
    """Draw expected root shapes as an indented outline (``...`` for "any others")."""
    roots, open_ = _parse_list(shape)
    lines: list[str] = []

    def draw(nodes: list[_Expected], open_: bool, prefix: str) -> None:
        items: list[str | _Expected] = [*nodes, *(["..."] if open_ else [])]
        for index, item in enumerate(items):
            last = index == len(items) - 1
            label = item if isinstance(item, str) else item.name
            lines.append(prefix + ("└── " if last else "├── ") + label)
            if isinstance(item, _Expected):
                draw(item.children, item.open, prefix + ("    " if last else "│   "))

    draw(roots, open_, "")
    return "\n".join(lines)


def assert_trace_shape(spans: Sequence[ReadableSpan], *shape: Shape, ordered: bool = False) -> None:
    """Assert that the captured spans form exactly these trees of names.

    Args:
        spans: the captured spans.
        shape: one shape per root span (a span whose parent was not captured);
            ``...`` allows other roots.
        ordered: siblings must appear in start order as listed.

    Raises:
        AssertionError: with the first level that differs, the expected
            outline and the captured trace.
        TypeError: for a malformed shape.
    """
    __tracebackhide__ = True
    spans = list(spans)  # read twice below: a generator came back empty the second time, and passed
    roots, open_ = _parse_list(shape)
    forest = _forest(spans)
    if _match_all(roots, open_, forest, ordered, {}):
        return
    reason = _explain(roots, open_, forest, "roots") or (
        "the spans are not in the listed order" if ordered else "no arrangement of the spans matches"
    )
    raise _fail(f"trace shape differs: {reason}\n\nexpected:\n{format_shape(shape)}", spans)
