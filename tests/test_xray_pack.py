"""Packing a batch into X-Ray documents: trees nested per datagram, split when too large, each span once."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st
from support.exporter_spans import TRACE_ID, make_span
from support.xray_daemon import nested, walk

from nexs_serverless import _stats
from nexs_serverless.exporters.xray_fit import MARK
from nexs_serverless.exporters.xray_pack import DETACHED_EXTRA, _Trees, _whole_trees, encode_documents
from nexs_serverless.exporters.xray_segments import SegmentOptions, to_document, xray_trace_id
from nexs_serverless.finished import FinishedSpan

LIMIT = 64_000 - 30


def _decode(documents: list[bytes]) -> list[dict[str, object]]:
    return [json.loads(document) for document in documents]


def _placement(tops: list[dict[str, object]]) -> dict[str, str | None]:
    """Each document id with the id of its parent: the enclosing document's, or its own parent_id."""
    out: dict[str, str | None] = {}
    for top in tops:
        for doc, enclosing in walk(top):
            assert str(doc["id"]) not in out, "a span sent twice"
            if enclosing is None:
                parent = doc.get("parent_id")
                out[str(doc["id"])] = None if parent is None else str(parent)
            else:
                out[str(doc["id"])] = str(enclosing["id"])
    return out


def test_without_nesting_each_span_is_its_own_document() -> None:
    """nest=False (the API transport) keeps one complete document per span."""
    docs = _decode(
        encode_documents(
            [make_span(span_id=2, parent_span_id=1), make_span(span_id=1)],
            SegmentOptions(),
            LIMIT,
            nest=False,
        )
    )
    assert [doc["id"] for doc in docs] == [f"{2:016x}", f"{1:016x}"]
    assert (docs[0]["type"], docs[0]["parent_id"]) == ("subsegment", f"{1:016x}")


def test_a_split_off_subtree_fits_with_its_fields_spliced_back() -> None:
    """A child cut to the embedded budget still fits once trace_id, parent_id and type are added back."""
    spans = [
        make_span(span_id=2, parent_span_id=1, attributes={"big": "b" * 100_000}),
        make_span(span_id=1, attributes={"pad": "p" * (LIMIT - 2_000)}),
    ]
    documents = encode_documents(spans, SegmentOptions(), LIMIT)
    assert len(documents) == 2
    assert max(len(document) for document in documents) <= LIMIT
    child = next(doc for doc in _decode(documents) if doc["id"] == f"{2:016x}")
    assert (child["type"], child["parent_id"], child["trace_id"]) == (
        "subsegment",
        f"{1:016x}",
        xray_trace_id(TRACE_ID),
    )
    assert str(child["metadata"]["default"]["big"]).endswith(MARK)  # type: ignore[index]
    spliced = b'"trace_id":"1-5759e988-bd862e3fe1be46a994272793","parent_id":"0000000000000001",'
    assert len(spliced + b'"type":"subsegment",') == DETACHED_EXTRA


def test_a_huge_tree_delivers_every_span_once_and_cuts_the_oversized_one() -> None:
    """200 children of 4 KB and one of 300 KB under one root: all placed once, the big one cut and marked."""
    spans = [make_span(span_id=i + 2, parent_span_id=1, attributes={"pad": "p" * 4000}) for i in range(200)]
    spans.append(make_span(span_id=0xBEEF, parent_span_id=1, attributes={"body": "b" * 300_000}))
    spans.append(make_span(span_id=1))
    documents = encode_documents(spans, SegmentOptions(), LIMIT)
    assert max(len(document) for document in documents) <= LIMIT
    placement = _placement(_decode(documents))
    assert placement == {
        f"{span.span_id:016x}": (f"{1:016x}" if span.span_id != 1 else None) for span in spans
    }
    root = next(doc for doc in _decode(documents) if doc["id"] == f"{1:016x}")
    kept = len(nested(root))
    assert kept >= 14  # 64 KB of 4 KB children; siblings that do not fit cannot share a datagram
    assert len(documents) == len(spans) - kept
    assert _stats.snapshot()["spans_truncated"] == 1


def test_a_parent_that_cannot_fit_is_dropped_and_its_children_go_on_their_own() -> None:
    """A root over the limit even after cutting is counted; its children go alone, with parent_id."""
    spans = [make_span(span_id=2, parent_span_id=1, name="c"), make_span(span_id=1, name="r" * 200)]
    docs = _decode(encode_documents(spans, SegmentOptions(), 300))
    assert [(doc["id"], doc["parent_id"], doc["type"]) for doc in docs] == [
        (f"{2:016x}", f"{1:016x}", "subsegment")
    ]
    assert _stats.snapshot()["spans_dropped_oversize"] == 1


def test_a_parent_that_cannot_be_converted_leaves_its_children_placed() -> None:
    """A span the mapping fails on is counted (serialization); its child still arrives, with parent_id."""
    broken = make_span(span_id=1, attributes=None)
    docs = _decode(
        encode_documents([make_span(span_id=2, parent_span_id=1), broken], SegmentOptions(), LIMIT)
    )
    assert [(doc["id"], doc["parent_id"]) for doc in docs] == [(f"{2:016x}", f"{1:016x}")]
    assert _stats.snapshot()["spans_dropped_serialization"] == 1


def test_parent_ids_that_form_a_cycle_still_send_each_span_once() -> None:
    """Inconsistent ids (each the other's parent) cannot lose spans: the cycle is cut, both are sent."""
    spans = [make_span(span_id=1, parent_span_id=2), make_span(span_id=2, parent_span_id=1)]
    placement = _placement(_decode(encode_documents(spans, SegmentOptions(), LIMIT)))
    assert sorted(placement) == [f"{1:016x}", f"{2:016x}"]


@st.composite
def _forests(draw: st.DrawFn) -> list[FinishedSpan]:
    """Random forests over two traces, parents in or out of the batch, pads of random size, random order."""
    count = draw(st.integers(1, 40))
    spans = []
    for index in range(count):
        span_id = index + 1
        parent = draw(st.sampled_from([0, 0x7777, *range(1, span_id)]))
        pad = draw(st.sampled_from([0, 50, 400, 1500, 5000]))
        spans.append(
            make_span(
                span_id=span_id,
                parent_span_id=parent,
                trace_id=TRACE_ID + draw(st.integers(0, 1)) if parent == 0 else TRACE_ID,
                attributes={"pad": "x" * pad},
            )
        )
    return draw(st.permutations(spans))


@settings(max_examples=60, deadline=None)
@given(_forests(), st.sampled_from([1_500, 4_000, 20_000]))
def test_any_forest_is_placed_once_under_its_parent_within_the_limit(
    spans: list[FinishedSpan], limit: int
) -> None:
    """Whatever the shape and sizes: every document fits, each span once, each under its own parent."""
    documents = encode_documents(spans, SegmentOptions(), limit)
    assert max(len(document) for document in documents) <= limit
    tops = _decode(documents)
    by_id = {f"{span.span_id:016x}": span for span in spans}
    for top in tops:
        for doc, enclosing in walk(top):
            if enclosing is not None:  # nested only under a parent of the same trace
                assert by_id[str(doc["id"])].trace_id == by_id[str(enclosing["id"])].trace_id
    expected = {
        key: (f"{span.parent_span_id:016x}" if span.parent_span_id else None) for key, span in by_id.items()
    }
    assert _placement(tops) == expected


@settings(max_examples=80, deadline=None)
@given(_forests(), st.sampled_from([1_500, 4_000, 20_000, LIMIT]))
def test_one_encode_of_each_tree_makes_the_bytes_the_splicing_path_makes(
    spans: list[FinishedSpan], limit: int
) -> None:
    """The fast path (a batch whose trees fit) gives byte for byte what per-span encoding gives."""

    def fresh() -> list[dict[str, object]]:  # the splicing path cuts and pops in place
        return [to_document(span, SegmentOptions()) for span in spans]

    docs = fresh()
    before = json.dumps(docs, sort_keys=True)
    whole = _whole_trees(spans, docs, limit)
    assert json.dumps(docs, sort_keys=True) == before  # left as they were, for the other path
    if whole is not None:
        assert whole == _Trees(spans, docs).encode(limit)
    else:  # declined only because a tree is over the limit (these forests have no cycles)
        unlimited = _whole_trees(spans, fresh(), 10**9)
        assert unlimited is not None
        assert max(len(document) for document in unlimited) > limit


def test_a_batch_that_fits_takes_the_one_encode_path() -> None:
    """A small invocation-shaped batch (root, then its children) is one document from `_whole_trees`."""
    spans = [make_span(span_id=1)] + [make_span(span_id=i, parent_span_id=1) for i in range(2, 12)]
    docs = [to_document(span, SegmentOptions()) for span in spans]
    whole = _whole_trees(spans, docs, LIMIT)
    assert whole is not None
    assert len(whole) == 1
    assert whole == encode_documents(spans, SegmentOptions(), LIMIT)
    assert len(nested(_decode(whole)[0])) == 10


def test_parent_ids_in_a_cycle_leave_the_batch_to_the_splicing_path() -> None:
    """Spans that are each other's parent have no root: the fast path declines rather than drop them."""
    spans = [
        make_span(span_id=1, parent_span_id=2),
        make_span(span_id=2, parent_span_id=1),
        make_span(span_id=3),
    ]
    docs = [to_document(span, SegmentOptions()) for span in spans]
    assert _whole_trees(spans, docs, LIMIT) is None
    assert sorted(_placement(_decode(encode_documents(spans, SegmentOptions(), LIMIT)))) == [
        f"{1:016x}",
        f"{2:016x}",
        f"{3:016x}",
    ]
