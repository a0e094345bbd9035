"""Which invocation each span of a flushed batch belongs to.

A batch holds the spans of the invocation(s) that ended since the last flush.
An invocation's root is the span that carries ``faas.trigger`` or
``faas.invocation_id`` (set by `invocation.begin`), or, for spans started
outside a handler, a span with no local parent (a new trace, or a remote
parent). Every other span belongs to the nearest root above it in the batch.
A span whose local parent is not in the batch (a thread that outlived its
invocation, a manual `flush` mid-invocation) has no root here: its owner is
`ORPHAN`, and callers fall back on what they remember about its trace.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..typing import ReadableSpan

__all__ = ["ORPHAN", "BoundedMemory", "is_root", "owners"]

ORPHAN = -1
_PENDING = -2


def is_root(span: ReadableSpan) -> bool:
    """Whether `span` starts an invocation (or a local trace)."""
    attributes = span.attributes
    return (
        "faas.trigger" in attributes
        or "faas.invocation_id" in attributes
        or not span.parent_span_id
        or span.parent_is_remote
    )


def owners(spans: Sequence[ReadableSpan]) -> list[int]:
    """For each span, the index of its invocation's root in `spans`, or `ORPHAN`.

    A root owns itself. One pass suffices when parents come before their
    children (the buffer's start order); otherwise the parent chain is walked.
    """
    index = {span.span_id: i for i, span in enumerate(spans)}
    owner = [_PENDING] * len(spans)
    for i, span in enumerate(spans):
        attributes = span.attributes
        if (
            "faas.trigger" in attributes
            or "faas.invocation_id" in attributes
            or not span.parent_span_id
            or span.parent_is_remote
        ):
            owner[i] = i
            continue
        parent = index.get(span.parent_span_id)
        if parent is None or spans[parent].trace_id != span.trace_id:
            owner[i] = ORPHAN
        elif owner[parent] != _PENDING:
            owner[i] = owner[parent]
    if _PENDING in owner:
        _walk_pending(spans, index, owner)
    return owner


def _walk_pending(spans: Sequence[ReadableSpan], index: dict[int, int], owner: list[int]) -> None:
    """Resolve spans whose parent came later in the batch, by walking up the chain."""
    for i in range(len(spans)):
        if owner[i] != _PENDING:
            continue
        path = [i]
        on_path = {i}  # a set: a deep chain listed child first must not cost its depth squared
        current = i
        while True:
            parent = index.get(spans[current].parent_span_id)
            if parent is None or parent in on_path or spans[parent].trace_id != spans[current].trace_id:
                found = ORPHAN
                break
            if owner[parent] != _PENDING:
                found = owner[parent]
                break
            path.append(parent)
            on_path.add(parent)
            current = parent
        for member in path:
            owner[member] = found


class BoundedMemory:
    """The last `size` trace ids' verdicts, for spans that arrive after their root.

    Oldest entries are forgotten first, so memory stays bounded however many
    traces a long-lived instance sees.
    """

    __slots__ = ("_items", "size")

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self._items: dict[int, object] = {}

    def get(self, trace_id: int) -> object:
        """The remembered value, or None."""
        return self._items.get(trace_id)

    def put(self, trace_id: int, value: object) -> None:
        """Remember `value` for `trace_id`, forgetting the oldest entry when full."""
        items = self._items
        items.pop(trace_id, None)
        items[trace_id] = value
        if len(items) > self.size:
            del items[next(iter(items))]

    def __len__(self) -> int:
        return len(self._items)
