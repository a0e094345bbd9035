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

    A root owns itself. Linear in the batch: each parent chain is walked once.
    """
    index: dict[tuple[int, int], int] = {}
    for i, span in enumerate(spans):
        index[(span.trace_id, span.span_id)] = i
    owner = [_PENDING] * len(spans)
    for i in range(len(spans)):
        if owner[i] != _PENDING:
            continue
        path: list[int] = []
        current = i
        found = ORPHAN
        while True:
            if owner[current] != _PENDING:
                found = owner[current]
                break
            span = spans[current]
            if is_root(span):
                found = current
                owner[current] = current
                break
            path.append(current)
            parent = index.get((span.trace_id, span.parent_span_id))
            if parent is None or parent in path:
                found = ORPHAN
                break
            current = parent
        for member in path:
            owner[member] = found
    return owner


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
