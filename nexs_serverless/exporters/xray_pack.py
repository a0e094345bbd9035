"""A batch of spans as few X-Ray segment documents: each trace tree nested in one document when it fits.

Why: one document per span costs a JSON encode and a ``sendto`` per span,
more than twice what the X-Ray SDK spends on the same invocation. The segment
document format lets a segment or subsegment carry its subsegments inline
(``subsegments``); an embedded subsegment leaves out ``trace_id``,
``parent_id`` and ``type``, which X-Ray requires only of a subsegment sent on
its own. So a span whose parent is in the same batch (same trace, local
parent) is embedded in its parent's document, and a whole invocation (the
subsegment tree under the Lambda function segment, or a root segment with its
subsegments) usually leaves as one datagram.

A batch whose trees each fit in a datagram (the usual invocation) is encoded
as nested dicts, one encode per tree. Otherwise, splitting: every document is
encoded once (`xray_fit.fit_document`, which cuts oversized values) and trees
are assembled from the encoded bytes, so sizes are exact. Bottom-up, a
document keeps the children that fit its budget (smallest first, which keeps
the most of them); each child that does not fit leaves as a document of its
own subtree, with ``trace_id``, ``parent_id`` and ``type`` spliced back in:
the placement spans had before nesting. Embedded documents are fitted with
room for those fields, so any subtree can be split off. Every span is in
exactly one document; spans whose parent is not in the batch (it ends later,
or was carried over) keep their ``parent_id``.
"""

from __future__ import annotations

from .. import _guard as guard
from .. import _stats as stats
from .xray_fit import dumps, fit_document
from .xray_segments import to_document

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..typing import ReadableSpan
    from .xray_segments import SegmentOptions

__all__ = ["DETACHED_EXTRA", "encode_documents", "pack_documents", "pack_parts"]

_OPEN = b',"subsegments":['
_CLOSE = b"]}"


def _detached_prefix(trace_id: object, parent_id: object) -> bytes:
    """The fields an embedded subsegment needs again when sent on its own (after its ``{``)."""
    return f'{{"trace_id":"{trace_id}","parent_id":"{parent_id}","type":"subsegment",'.encode()


# Trace ids (35 characters) and parent ids (16) have fixed lengths.
DETACHED_EXTRA = len(_detached_prefix("1-00000000-" + "0" * 24, "0" * 16)) - 1


def encode_documents(
    spans: Sequence[ReadableSpan], options: SegmentOptions, max_bytes: int, *, nest: bool = True
) -> list[bytes]:
    """The JSON documents for `spans`, each at most `max_bytes` (`pack_documents` without the drops)."""
    return pack_documents(spans, options, max_bytes, nest=nest)[0]


def pack_documents(
    spans: Sequence[ReadableSpan], options: SegmentOptions, max_bytes: int, *, nest: bool = True
) -> tuple[list[bytes], list[ReadableSpan]]:
    """The JSON documents for `spans`, each at most `max_bytes`, and the spans left out of them.

    `pack_parts` without the spans each document carries.
    """
    documents, _, dropped = pack_parts(spans, options, max_bytes, nest=nest)
    return documents, dropped


def pack_parts(
    spans: Sequence[ReadableSpan], options: SegmentOptions, max_bytes: int, *, nest: bool = True
) -> tuple[list[bytes], list[list[ReadableSpan]], list[ReadableSpan]]:
    """The JSON documents for `spans`, the spans each one carries, and the spans left out of them.

    A document carries a whole subtree, so a sender that fails after some
    documents went out needs the spans of the others (and only those) to name
    them undelivered: sending the batch again would deliver the first ones twice.

    Args:
        spans: the batch (live records: read here, never kept).
        options: the mapping's options (`xray_segments.SegmentOptions`).
        max_bytes: the most one document may take.
        nest: embed children in their parent's document; False gives one
            document per span (the layout before nesting).

    Returns:
        The documents, a nested tree's split-off subtrees before their root;
        the spans in each document (in batch order, one list per document);
        and the spans in none of them (in batch order), so that the exporter
        reports them as dropped, not sent. A span that cannot be
        converted is counted (``spans_dropped_serialization``), one that cannot
        be cut to fit is counted (``spans_dropped_oversize``); its children are
        sent on their own.
    """
    docs = [_convert(span, options) for span in spans]
    dropped = [i for i, doc in enumerate(docs) if doc is None] if None in docs else []
    if not nest:
        out: list[bytes] = []
        carried: list[list[ReadableSpan]] = []
        for i, doc in enumerate(docs):
            data = _fit(doc, max_bytes) if doc is not None else None
            if data:
                out.append(data)
                carried.append([spans[i]])
            elif doc is not None:
                dropped.append(i)
        return out, carried, [spans[i] for i in sorted(dropped)]
    if not dropped:
        groups: list[list[int]] = []
        whole = _whole_trees(spans, docs, max_bytes, groups=groups)  # type: ignore[arg-type]  # no None in docs
        if whole is not None:
            return whole, [[spans[i] for i in sorted(group)] for group in groups], []
    trees = _Trees(spans, docs)
    out = trees.encode(max_bytes)
    carried = [[spans[i] for i in sorted(group)] for group in trees.members]
    return out, carried, [spans[i] for i in sorted(dropped + trees.unfit)]


def _whole_trees(
    spans: Sequence[ReadableSpan],
    docs: list[dict[str, object]],
    max_bytes: int,
    *,
    groups: list[list[int]] | None = None,
) -> list[bytes] | None:
    """Each tree nested as dicts and encoded in one call, or None when any tree does not fit.

    The usual batch (one invocation, well under 64 KiB) needs no splitting, and
    one encode per tree saves the per-span encodes and the byte splicing: about 70
    us of a warm invocation with 10 child spans (interleaved A/B). The output is
    what `_Trees.encode` makes of a batch that fits (the ``subsegments`` key last,
    children in batch order, roots in batch order). `docs` is left as it was, for
    `_Trees` to take over: on a tree that is too large, parent ids that form a
    cycle, or a value JSON cannot take. `groups`, when given, gets the batch
    indices of each tree (one list per document, in document order).
    """
    index = {(span.trace_id, span.span_id): i for i, span in enumerate(spans)}
    copies = [dict(doc) for doc in docs]
    roots: list[int] = []
    children: dict[int, list[int]] = {}
    for i, span in enumerate(spans):
        parent = span.parent_span_id
        j = index.get((span.trace_id, parent), -1) if parent and not span.parent_is_remote else -1
        if j < 0 or j == i:
            roots.append(i)
        else:
            children.setdefault(j, []).append(i)
    trees: list[list[int]] = []
    reached = 0
    for root in roots:
        tree = [root]
        stack = [root]
        while stack:
            kid_ids = children.get(stack.pop())
            if kid_ids:
                tree.extend(kid_ids)
                stack.extend(kid_ids)
        reached += len(tree)
        trees.append(tree)
    if reached != len(spans):  # a cycle: `_Trees` cuts it
        return None
    for j, kid_ids in children.items():
        kids = []
        for i in kid_ids:
            # Embedded: trace_id, parent_id and type are implied by the enclosing document.
            copy = copies[i]
            del copy["trace_id"], copy["parent_id"]
            copy.pop("type", None)
            kids.append(copy)
        copies[j]["subsegments"] = kids
    try:
        out = [dumps(copies[i]) for i in roots]
    except (ValueError, TypeError, RecursionError):
        return None
    for data in out:
        if len(data) > max_bytes:
            return None
    if groups is not None:
        groups[:] = trees
    return out


class _Trees:
    """The batch as a forest: parent index per span, children per span, a post-order walk."""

    __slots__ = ("children", "docs", "fields", "members", "ordered", "parent", "unfit")

    def __init__(self, spans: Sequence[ReadableSpan], docs: list[dict[str, object] | None]) -> None:
        self.docs = docs
        index = {(span.trace_id, span.span_id): i for i, span in enumerate(spans) if docs[i] is not None}
        self.parent = [-1] * len(docs)
        self.children: dict[int, list[int]] = {}
        # Spans arrive in the order they ended, children before parents: then the
        # batch order is already a post-order walk and no walk is needed.
        self.ordered = True
        for i, span in enumerate(spans):
            parent_span_id = span.parent_span_id
            if docs[i] is None or not parent_span_id or span.parent_is_remote:
                continue
            j = index.get((span.trace_id, parent_span_id), -1)
            if j >= 0 and j != i:
                self.parent[i] = j
                self.children.setdefault(j, []).append(i)
                self.ordered = self.ordered and j > i
        self.fields: dict[int, tuple[object, object]] = {}  # trace_id, parent_id of embedded documents
        self.unfit: list[int] = []  # spans `encode` left out: even cut, too big (or JSON refused them)
        self.members: list[list[int]] = []  # the spans in each document `encode` returns, in its order

    def encode(self, max_bytes: int) -> list[bytes]:
        """Encode every tree bottom-up; returns the documents to send (and fills `members`)."""
        out: list[bytes] = []
        members = self.members
        packed: dict[int, bytes] = {}
        inside: dict[int, list[int]] = {}  # the spans in each packed document
        docs, parents, children, fields = self.docs, self.parent, self.children, self.fields
        for node in range(len(docs)) if self.ordered else self._post_order():
            doc = docs[node]
            if doc is None:
                continue
            embedded = parents[node] >= 0
            budget = max_bytes
            if embedded:
                # Sent inside its parent: trace_id, parent_id and type are implied there.
                fields[node] = (doc.pop("trace_id"), doc.pop("parent_id"))
                doc.pop("type", None)
                budget -= DETACHED_EXTRA
            data = _fit(doc, budget)
            if data is None:
                self.unfit.append(node)
            carried = [node]
            kid_ids = children.get(node)
            if kid_ids:
                kid_ids = [kid for kid in kid_ids if kid in packed]  # not the dropped ones
                kids = [packed.pop(kid) for kid in kid_ids]
                if data is None:
                    out.extend(self._detach(kid, body) for kid, body in zip(kid_ids, kids, strict=True))
                    members.extend(inside.pop(kid) for kid in kid_ids)
                    continue
                if kids:
                    data = self._nest(data, kid_ids, kids, budget, out, carried, inside)
            if data is None:
                continue
            if embedded:
                packed[node] = data
                inside[node] = carried
            else:
                out.append(data)
                members.append(carried)
        return out

    def _nest(
        self,
        data: bytes,
        kid_ids: list[int],
        kids: list[bytes],
        budget: int,
        out: list[bytes],
        carried: list[int],
        inside: dict[int, list[int]],
    ) -> bytes:
        """`data` with the children that fit embedded; the others go to `out` on their own.

        The spans of the embedded children (`inside` each) join `carried`, the
        spans of `data`'s document; those of the others go to `members` with them.
        """
        room = budget - len(data) - len(_OPEN) - 1  # data's "}" moves to the end, after the "]"
        keep = list(range(len(kids)))
        if sum(len(body) for body in kids) + len(kids) - 1 > room:
            chosen: set[int] = set()
            used = -1  # no comma before the first child
            for k in sorted(keep, key=lambda k: len(kids[k])):
                if used + 1 + len(kids[k]) > room:
                    break
                used += 1 + len(kids[k])
                chosen.add(k)
            stats.incr("xray_subtrees_split", len(kids) - len(chosen))
            out.extend(self._detach(kid_ids[k], kids[k]) for k in keep if k not in chosen)
            self.members.extend(inside.pop(kid_ids[k]) for k in keep if k not in chosen)
            keep = [k for k in keep if k in chosen]
        for k in keep:
            carried.extend(inside.pop(kid_ids[k]))
        if not keep:
            return data
        return data[:-1] + _OPEN + b",".join(kids[k] for k in keep) + _CLOSE

    def _detach(self, node: int, body: bytes) -> bytes:
        """An embedded document (and its subtree) as a document of its own."""
        return _detached_prefix(*self.fields[node]) + body[1:]

    def _post_order(self) -> list[int]:
        """Every span once, children before parents; a parent cycle is cut at its first span."""
        order: list[int] = []
        seen = [False] * len(self.docs)
        roots = [i for i, parent in enumerate(self.parent) if parent < 0]
        for start in (*roots, *range(len(self.docs))):
            if seen[start]:
                continue
            if self.parent[start] >= 0:  # unreached from any root: ids form a cycle
                self.children[self.parent[start]].remove(start)
                self.parent[start] = -1
            seen[start] = True
            stack: list[tuple[int, bool]] = [(start, False)]
            while stack:
                node, done = stack.pop()
                if done:
                    order.append(node)
                    continue
                stack.append((node, True))
                for kid in self.children.get(node, ()):
                    if not seen[kid]:
                        seen[kid] = True
                        stack.append((kid, False))
        return order


def _convert(span: ReadableSpan, options: SegmentOptions) -> dict[str, object] | None:
    """`to_document`, with a span the mapping fails on counted as a serialization drop."""
    try:
        return to_document(span, options)
    except Exception as exc:  # one odd span must not cost the batch
        guard.report("xray_document", exc)
        stats.incr("spans_dropped_serialization")
        return None


def _fit(doc: dict[str, object], max_bytes: int) -> bytes | None:
    """`fit_document`, with a document JSON cannot take counted as a serialization drop."""
    try:
        return fit_document(doc, max_bytes)
    except Exception as exc:  # a value JSON cannot take, or a bug: one span, not the batch
        guard.report("xray_document", exc)
        stats.incr("spans_dropped_serialization")
        return None
