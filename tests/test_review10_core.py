"""Core span API under stress (review 10): contexts across threads, odd values, status and names."""

from __future__ import annotations

import contextvars
import enum
import functools
import threading

import pytest

from nexs_serverless import SpanContext, StatusCode, configure, current_span, flush, tracer
from nexs_serverless.exporters import InMemoryExporter
from nexs_serverless.exporters.otlp_encode import encode_spans
from nexs_serverless.finished import freeze


class Level(enum.IntEnum):
    HIGH = 3


class _RaisingMeta(type):
    def __hash__(cls) -> int:
        raise RuntimeError("no hash for this class")

    def __eq__(cls, other: object) -> bool:
        raise RuntimeError("no eq for this class")


class Odd(metaclass=_RaisingMeta):
    def __str__(self) -> str:
        return "odd"


def _only(exporter: InMemoryExporter, name: str) -> object:
    flush()
    (span,) = [s for s in exporter.spans if s.name == name]
    return span


# -- the current span across threads and contexts -------------------------------------------------


def _with_in_a_thread(span: object) -> str | None:
    """Run ``with span:`` inside a span of a new thread; the name of that thread's current span after."""
    seen: list[str | None] = []

    def work() -> None:
        with tracer.span("worker-own"):
            with span:  # type: ignore[attr-defined]
                pass
            current = current_span()
            seen.append(current.name if current else None)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    return seen[0]


def test_with_on_an_open_span_in_a_worker_restores_the_workers_current_span() -> None:
    """``with parent:`` in a worker thread leaves the worker under its own span when it exits."""
    with tracer.span("parent") as parent:
        assert _with_in_a_thread(parent) == "worker-own"


def test_with_on_an_open_span_in_a_worker_leaves_the_first_with_its_token() -> None:
    """After a worker's ``with parent:``, the thread that opened `parent` still returns to its parent."""
    with tracer.span("outer") as outer:
        with tracer.span("parent") as parent:
            _with_in_a_thread(parent)
        assert current_span() is outer
    assert current_span() is None


def test_exit_in_a_copied_context_keeps_that_contexts_current_span() -> None:
    """A `with` exited in another context (a framework's copy) leaves that context's current span alone."""
    with tracer.span("request") as request:
        inner = tracer.span("dependency")
        contextvars.copy_context().run(inner.__enter__)
        inner.__exit__(None, None, None)
        assert current_span() is request
    assert current_span() is None


def test_exit_in_a_copy_taken_inside_the_with_restores_what_the_with_replaced() -> None:
    """Exited in a copy of its own context, the span gives way to the span it replaced there."""
    with tracer.span("request") as request:
        inner = tracer.span("dependency")
        inner.__enter__()
        copy = contextvars.copy_context()
        copy.run(inner.__exit__, None, None, None)
        assert copy.run(current_span) is request


def test_entered_again_in_the_same_context_restores_the_outermost() -> None:
    """Nested `with` on the same span: the first exit restores what the outermost `with` replaced."""
    with tracer.span("outer") as outer:
        span = tracer.span("twice")
        with span, span:
            assert current_span() is span
        assert current_span() is outer


# -- attribute values ---------------------------------------------------------------------------


def test_nested_sequence_items_are_cut_to_the_value_length_limit(exporter: InMemoryExporter) -> None:
    """OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT also cuts the text a nested sequence item becomes."""
    configure(environ={"OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT": "4"})
    with tracer.span("s") as span:
        span.set_attribute("mixed", [["y" * 100], 1])
    assert _only(exporter, "s").attributes["mixed"] == ("['yy", "1")  # type: ignore[attr-defined]


def test_sequence_of_objects_whose_class_cannot_hash_is_kept_as_text(exporter: InMemoryExporter) -> None:
    """Items whose metaclass raises on hash are converted to text, as one such value alone is."""
    with tracer.span("s") as span:
        span.set_attribute("odd", [Odd(), Odd()])
        span.set_attribute("one", Odd())
    attributes = _only(exporter, "s").attributes  # type: ignore[attr-defined]
    assert attributes["odd"] == ("odd", "odd")
    assert attributes["one"] == "odd"


def test_sequence_of_int_enum_members_stays_a_sequence_of_ints(exporter: InMemoryExporter) -> None:
    """A list of IntEnum members is kept as ints, as one member alone is."""
    with tracer.span("s") as span:
        span.set_attribute("levels", [Level.HIGH, Level.HIGH])
        span.set_attribute("level", Level.HIGH)
    attributes = _only(exporter, "s").attributes  # type: ignore[attr-defined]
    assert attributes["levels"] == (3, 3)
    assert all(type(item) is int for item in attributes["levels"])
    assert attributes["level"] == 3


# -- status and names -----------------------------------------------------------------------------


@pytest.mark.parametrize("code", [2.0, True, "ERROR", None])
def test_set_status_ignores_codes_that_are_not_ints_and_the_batch_still_encodes(code: object) -> None:
    """A float, bool or text status is ignored; a stored 2.0 made the OTLP encoding of the batch fail."""
    span = tracer.span("s")
    span.set_status(code, "why")  # type: ignore[arg-type]
    span.end()
    assert span.status_code == StatusCode.UNSET
    assert encode_spans([freeze(span)])


def test_set_status_description_of_another_type_becomes_text() -> None:
    """An exception passed as the description is kept as its text, which every encoder can write."""
    span = tracer.span("s")
    span.set_status(StatusCode.ERROR, ValueError("bad input"))  # type: ignore[arg-type]
    span.end()
    assert span.status_description == "bad input"
    assert encode_spans([freeze(span)])


def test_set_status_reads_opentelemetrys_status_and_status_code() -> None:
    """OpenTelemetry's ``StatusCode.ERROR`` and ``Status`` set ERROR (they were silently ignored)."""
    otel_trace = pytest.importorskip("opentelemetry.trace")
    by_code = tracer.span("a")
    by_code.set_status(otel_trace.StatusCode.ERROR, "boom")
    by_status = tracer.span("b")
    by_status.set_status(otel_trace.Status(otel_trace.StatusCode.ERROR, "bust"))
    assert (by_code.status_code, by_code.status_description) == (StatusCode.ERROR, "boom")
    assert (by_status.status_code, by_status.status_description) == (StatusCode.ERROR, "bust")


def test_update_name_of_another_type_becomes_text_and_the_batch_encodes() -> None:
    """``update_name(42)`` names the span "42"; an int name made the OTLP encoding of the batch fail."""
    span = tracer.span("s")
    span.update_name(42)  # type: ignore[arg-type]
    span.end()
    assert span.name == "42"
    assert encode_spans([freeze(span)])


def test_capture_name_of_another_type_becomes_text() -> None:
    """``@tracer.capture(name=...)`` with a non-str name names the spans with its text."""

    @tracer.capture(name=7)  # type: ignore[arg-type]
    def work() -> str:
        span = current_span()
        assert span is not None
        return span.name

    assert work() == "7"


def test_capture_decorates_a_partial_without_raising() -> None:
    """A `functools.partial` (no ``__qualname__``) is decorated and named after its function."""

    def add(a: int, b: int) -> tuple[int, str]:
        span = current_span()
        assert span is not None
        return a + b, span.name

    captured = tracer.capture(functools.partial(add, 1))
    assert captured(2) == (3, add.__qualname__)


# -- arguments of the wrong type: never raised, never stored where they break the batch -------------


def test_record_exception_of_a_non_exception_does_not_raise() -> None:
    """``record_exception("oops")`` or of an exception class adds an event instead of raising."""
    span = tracer.span("s")
    span.record_exception("oops")  # type: ignore[arg-type]
    span.record_exception(ValueError)  # type: ignore[arg-type]
    span.end()
    assert [event.attributes["exception.message"] for event in span.events] == [
        "oops",
        str(ValueError),
    ]
    assert encode_spans([freeze(span)])


def test_attributes_given_as_a_list_of_pairs_are_dropped_and_counted() -> None:
    """`set_attributes` and `add_event` with a list of pairs count a drop instead of raising."""
    span = tracer.span("s")
    span.set_attributes([("a", 1)])  # type: ignore[arg-type]
    span.add_event("e", [("a", 1)])  # type: ignore[arg-type]
    span.end()
    assert span.dropped_attributes == 1
    assert span.events[0].dropped_attributes == 1
    assert span.events[0].attributes == {}


@pytest.mark.parametrize("when", [1.7e18, "soon", -5])
def test_a_time_that_is_not_a_positive_int_is_converted_and_the_batch_encodes(when: object) -> None:
    """`end` and `add_event` store an int time for a float (converted) or junk (now)."""
    span = tracer.span("s")
    span.add_event("e", timestamp_ns=when)  # type: ignore[arg-type]
    span.end(when)  # type: ignore[arg-type]
    assert type(span.end_ns) is int
    assert span.end_ns > 0
    assert type(span.events[0].timestamp_ns) is int
    assert encode_spans([freeze(span)])
    if when == 1.7e18:
        assert span.end_ns == 1_700_000_000_000_000_000


def test_links_to_spans_and_bare_contexts_are_stored_as_span_contexts() -> None:
    """`add_link` and ``links=`` take a span or a bare `SpanContext`; junk is dropped and counted."""
    other = tracer.span("other")
    span = tracer.span("s", links=[SpanContext(5, 6)])
    span.add_link(other)  # type: ignore[arg-type]
    span.add_link(None)  # type: ignore[arg-type]
    span.add_link((1, 2))  # type: ignore[arg-type]
    span.end()
    assert [link.context for link in span.links] == [SpanContext(5, 6), other.context]
    assert span.dropped_links == 2
    assert encode_spans([freeze(span)])


def test_opentelemetry_contexts_as_links_and_parent_are_read_as_ours() -> None:
    """OpenTelemetry's `SpanContext` as a link or a parent is converted (its trace state broke encoding)."""
    otel_trace = pytest.importorskip("opentelemetry.trace")
    context = otel_trace.SpanContext(
        trace_id=5,
        span_id=6,
        is_remote=False,
        trace_flags=otel_trace.TraceFlags(1),
        trace_state=otel_trace.TraceState([("k", "v")]),
    )
    child = tracer.span("child", parent=context, links=[otel_trace.Link(context)])
    child.add_link(context)
    child.end()
    assert (child.trace_id, child.parent_span_id, child.trace_state) == (5, 6, (("k", "v"),))
    assert [link.context for link in child.links] == [SpanContext(5, 6, 1, (("k", "v"),))] * 2
    assert encode_spans([freeze(child)])


def test_a_finished_span_as_parent_is_followed(exporter: InMemoryExporter) -> None:
    """A `FinishedSpan` kept from an export parents a span of the same trace."""
    with tracer.span("first"):
        pass
    first = _only(exporter, "first")
    child = tracer.span("child", parent=first)
    assert (child.trace_id, child.parent_span_id) == (first.trace_id, first.span_id)  # type: ignore[attr-defined]
