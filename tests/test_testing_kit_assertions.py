"""The trace assertions of `nexs_serverless.testing` and the `SpanRecorder` they run on."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from nexs_serverless import SpanKind, traced_handler, tracer
from nexs_serverless.testing import (
    LambdaContext,
    SpanRecorder,
    assert_no_errors,
    assert_span,
    assert_trace_shape,
    capture_spans,
    events,
)
from nexs_serverless.testing.assertions import format_shape


@traced_handler
def checkout(event: dict[str, object], context: object) -> dict[str, object]:
    """An HTTP handler: load the cart, charge (which calls the bank), notify."""
    with tracer.span("load-cart", attributes={"cart.items": 3}):
        pass
    with tracer.span("charge", attributes={"amount": 12.5, "currency": "EUR", "retry": False}):
        with tracer.span("POST /v1/charges", kind=SpanKind.CLIENT):
            pass
    with tracer.span("notify", attributes={"channels": ("email", "sms")}):
        if event.get("fail_notify"):
            raise RuntimeError("smtp down")
    return {"statusCode": 201}


@pytest.fixture
def spans() -> Iterator[SpanRecorder]:
    """One successful checkout, captured."""
    with capture_spans() as recorder:
        checkout(events.api_gateway_v2(method="POST", path="/orders"), LambdaContext())
        yield recorder


def test_assert_span_returns_the_matching_span(spans: SpanRecorder) -> None:
    """A matching span is returned, so a test can look further."""
    span = spans.assert_span("charge", parent="POST /orders", attributes={"amount": 12.5}, kind="internal")
    assert span.attributes["currency"] == "EUR"


def test_assert_span_parent_none_means_root(spans: SpanRecorder) -> None:
    """`parent=None` asks for a root span, and fails on a child."""
    spans.assert_span("POST /orders", parent=None, kind="server", status="unset")
    with pytest.raises(AssertionError, match=r"parent is 'POST /orders', expected '\(root\)'"):
        spans.assert_span("charge", parent=None)


def test_assert_span_failure_lists_every_reason_and_prints_the_tree(spans: SpanRecorder) -> None:
    """The message says what differed, then shows the captured trace with its attributes."""
    with pytest.raises(AssertionError) as failure:
        spans.assert_span("charge", parent="load-cart", attributes={"amount": 13, "tax": 1}, kind="client")
    message = str(failure.value)
    assert "parent is 'POST /orders', expected 'load-cart'" in message
    assert "attribute 'amount' is 12.5, expected 13" in message
    assert "attribute 'tax' is missing (expected 1)" in message
    assert "kind is INTERNAL, expected CLIENT" in message
    assert "captured trace:\ntrace " in message
    assert "└── POST /orders [SERVER]" in message
    assert "currency=EUR" in message  # verbose tree: every attribute is shown


def test_assert_span_unknown_name_lists_the_names(spans: SpanRecorder) -> None:
    """Asking for a span that does not exist names the spans that do."""
    with pytest.raises(AssertionError, match=r"no span named 'refund' \(span names: 'POST /orders', "):
        spans.assert_span("refund")


def test_assert_span_list_matches_stored_tuple(spans: SpanRecorder) -> None:
    """A list in `attributes` matches the tuple a span stores."""
    spans.assert_span("notify", attributes={"channels": ["email", "sms"]})


def test_assert_span_bool_is_not_int(spans: SpanRecorder) -> None:
    """`False` does not match `0`: attribute types matter to back ends."""
    with pytest.raises(AssertionError, match="attribute 'retry' is False, expected 0"):
        spans.assert_span("charge", attributes={"retry": 0})


def test_assert_span_rejects_an_unknown_kind_name(spans: SpanRecorder) -> None:
    """A misspelt kind is a bug in the test, reported as ValueError."""
    with pytest.raises(ValueError, match="unknown span kind 'sever'"):
        spans.assert_span("charge", kind="sever")


def test_assert_span_checks_status(spans: SpanRecorder) -> None:
    """A status mismatch is reported by name."""
    with pytest.raises(AssertionError, match="status is UNSET, expected ERROR"):
        spans.assert_span("charge", status="error")


def test_assert_trace_shape_exact_tree(spans: SpanRecorder) -> None:
    """The full tree of names matches, siblings in any order."""
    spans.assert_trace_shape(("POST /orders", ["notify", "load-cart", ("charge", ["POST /v1/charges"])]))


def test_assert_trace_shape_leaf_means_no_children(spans: SpanRecorder) -> None:
    """A bare name is a span without children: the failure names the level that differs."""
    with pytest.raises(AssertionError) as failure:
        spans.assert_trace_shape(("POST /orders", ["load-cart", "charge", "notify"]))
    message = str(failure.value)
    assert "trace shape differs: under 'charge': expected [], found ['POST /v1/charges']" in message
    assert "expected:\n└── POST /orders\n    ├── load-cart\n    ├── charge\n    └── notify" in message
    assert "captured trace:\ntrace " in message


def test_assert_trace_shape_ellipsis_allows_more(spans: SpanRecorder) -> None:
    """`...` accepts other spans at that level."""
    spans.assert_trace_shape(("POST /orders", [("charge", [...]), ...]))


def test_assert_trace_shape_missing_child(spans: SpanRecorder) -> None:
    """A missing span is reported with what was found instead."""
    with pytest.raises(
        AssertionError, match=r"under 'POST /orders': expected \['charge', 'refund'\] \(plus any"
    ):
        spans.assert_trace_shape(("POST /orders", ["charge", "refund", ...]))


def test_assert_trace_shape_ordered(spans: SpanRecorder) -> None:
    """`ordered=True` also requires start order."""
    spans.assert_trace_shape(("POST /orders", ["load-cart", ("charge", [...]), "notify"]), ordered=True)
    with pytest.raises(AssertionError, match="not in the listed order"):
        spans.assert_trace_shape(("POST /orders", ["notify", "load-cart", ("charge", [...])]), ordered=True)


def test_assert_trace_shape_several_roots() -> None:
    """Each invocation is a root; the shape lists them all (or `...`)."""
    with capture_spans() as recorder:
        checkout(events.api_gateway_v2(), LambdaContext())
        checkout(events.api_gateway_v2(method="GET", path="/health"), LambdaContext())
        recorder.assert_trace_shape(("POST /orders", [...]), ("GET /health", [...]))
        recorder.assert_trace_shape(("GET /health", [...]), ...)
        with pytest.raises(AssertionError, match=r"roots: expected \['GET /health'\], found"):
            recorder.assert_trace_shape(("GET /health", [...]))


def test_assert_trace_shape_rejects_malformed_shapes(spans: SpanRecorder) -> None:
    """A shape that is neither a name nor a (name, children) pair raises TypeError."""
    with pytest.raises(TypeError, match="a trace shape is a span name"):
        spans.assert_trace_shape(("POST /orders", "charge", "notify"))
    with pytest.raises(TypeError, match="children must be a list"):
        spans.assert_trace_shape(("POST /orders", "charge"))


def test_format_shape_draws_the_outline() -> None:
    """The expected shape is drawn like the trace tree."""
    assert (
        format_shape([("a", ["b", ("c", [...])]), ...])
        == "├── a\n│   ├── b\n│   └── c\n│       └── ...\n└── ..."
    )


def test_assert_no_errors_passes_on_a_clean_trace(spans: SpanRecorder) -> None:
    """No span with status ERROR: nothing raised."""
    spans.assert_no_errors()


def test_assert_no_errors_names_the_failed_spans() -> None:
    """Each failed span is listed with its status description, then the tree."""
    with capture_spans() as recorder:
        with pytest.raises(RuntimeError):
            checkout(events.api_gateway_v2(overrides={"fail_notify": True}), LambdaContext())
        with pytest.raises(AssertionError) as failure:
            recorder.assert_no_errors()
    message = str(failure.value)
    assert "2 span(s) ended with status ERROR" in message
    assert "'notify': RuntimeError: smtp down" in message
    assert "'POST /orders': RuntimeError: smtp down" in message
    assert "✗ ERROR" in message


def test_module_functions_take_any_span_list(spans: SpanRecorder) -> None:
    """The assertions also work on a plain list of exported spans."""
    captured = spans.get_finished_spans()
    assert_span(captured, "load-cart", attributes={"cart.items": 3})
    assert_trace_shape(captured, ("POST /orders", [...]))
    assert_no_errors(captured)


def test_empty_capture_says_so() -> None:
    """With nothing captured, the failure says no spans were captured."""
    with pytest.raises(AssertionError, match=r"\(no spans were captured\)"):
        assert_span([], "anything")


def test_recorder_flushes_spans_traced_outside_a_handler() -> None:
    """Spans ended outside `traced_handler` (not yet flushed) are seen by the assertions."""
    with capture_spans() as recorder:
        with tracer.span("batch-job"), tracer.span("step"):
            pass
        assert recorder.get_finished_spans() == []
        recorder.assert_trace_shape(("batch-job", ["step"]))
        assert recorder.names() == ["batch-job", "step"]
        assert [span.name for span in recorder.find("step")] == ["step"]
        assert recorder.tree().startswith("trace ")


def test_capture_spans_starts_cold_every_time() -> None:
    """Each capture resets the tracer: the first invocation inside is a cold start again."""
    for _ in range(2):
        with capture_spans() as recorder:
            checkout(events.api_gateway_v2(), LambdaContext())
            recorder.assert_span("POST /orders", attributes={"faas.coldstart": True})
