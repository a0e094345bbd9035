"""Fitting X-Ray payloads under the datagram limit, and saying on the span what was cut."""

from __future__ import annotations

import json

from support.exporter_spans import exception_event, make_span

from nexs_serverless import _stats
from nexs_serverless.exporters.otlp_encode import encode_spans
from nexs_serverless.exporters.xray_fit import MARK, dumps, fit_document, truncate_span
from nexs_serverless.exporters.xray_segments import SegmentOptions, to_document


def test_a_document_that_fits_is_serialized_unchanged() -> None:
    """No cut, no mark, nothing counted when the document already fits."""
    doc = to_document(make_span(attributes={"a": "b"}), SegmentOptions())
    data = fit_document(doc, 64_000)
    assert data == dumps(doc)
    assert "nexs" not in json.loads(data)["metadata"]  # type: ignore[arg-type]
    assert "spans_truncated" not in _stats.snapshot()


def test_the_largest_value_is_cut_and_named_in_metadata() -> None:
    """An oversized attribute is shortened with a marker; the document says which one."""
    doc = to_document(make_span(attributes={"big": "x" * 100_000, "small": "keep"}), SegmentOptions())
    data = fit_document(doc, 10_000)
    assert data is not None
    assert len(data) <= 10_000
    parsed = json.loads(data)
    assert parsed["metadata"]["default"]["small"] == "keep"
    assert parsed["metadata"]["default"]["big"].endswith(MARK)
    assert parsed["metadata"]["nexs"] == {"truncated": ["metadata/default/big"]}
    assert _stats.snapshot()["spans_truncated"] == 1


def test_long_lists_and_several_values_are_cut_until_it_fits() -> None:
    """Lists shrink by items, and cutting continues over several values until the limit holds."""
    attrs = {"ids": tuple(range(20_000)), "a": "a" * 20_000, "b": "b" * 20_000}
    doc = to_document(make_span(attributes=attrs), SegmentOptions(("a",)))
    data = fit_document(doc, 8_000)
    assert data is not None
    assert len(data) <= 8_000
    cut = json.loads(data)["metadata"]["nexs"]["truncated"]
    assert set(cut) == {"metadata/default/ids", "metadata/default/b"}  # annotation "a" was already short


def test_stack_traces_are_cut_as_values_too() -> None:
    """A huge exception message is cut like any other value and the span keeps its cause."""
    span = make_span(events=(exception_event(ValueError("m" * 80_000)),))
    data = fit_document(to_document(span, SegmentOptions()), 20_000)
    assert data is not None
    parsed = json.loads(data)
    assert parsed["cause"]["exceptions"][0]["message"].endswith(MARK)
    assert parsed["cause"]["exceptions"][0]["type"] == "ValueError"


def test_a_document_that_cannot_fit_is_dropped_and_counted() -> None:
    """When even the identity fields exceed the limit, the span is dropped and counted."""
    doc = to_document(make_span(), SegmentOptions())
    assert fit_document(doc, 100) is None
    assert _stats.snapshot()["spans_dropped_oversize"] == 1


def test_truncate_span_cuts_a_copy_and_lists_the_keys() -> None:
    """OTLP mode: the span's largest values are cut on a private copy, named in nexs.truncated.

    The copy shares its attribute mapping with the original, as the shallow copy the X-Ray
    exporter cuts does: the mapping must be replaced, never edited in place.
    """
    original = make_span(attributes={"big": "x" * 50_000, "small": "s"})
    copy = make_span(attributes=original.attributes)
    cut = truncate_span(copy, 40_000)
    assert cut == ["big"]
    assert len(str(copy.attributes["big"])) < 11_000
    assert copy.attributes["nexs.truncated"] == ("big",)
    assert copy.attributes["small"] == "s"
    assert original.attributes == {"big": "x" * 50_000, "small": "s"}
    assert len(encode_spans([copy])) < len(encode_spans([original])) - 39_000


def test_truncate_span_reaches_event_attributes() -> None:
    """An exception's stack trace (an event attribute) is cut when it is the largest value."""
    span = make_span(events=(exception_event(ValueError("v" * 30_000)),))
    before = len(encode_spans([span]))
    cut = truncate_span(span, 25_000)
    assert cut == ["events[0].exception.stacktrace"]
    assert span.attributes["nexs.truncated"] == tuple(cut)
    assert len(encode_spans([span])) <= before - 25_000
