"""The span record: attributes, limits, events, exceptions, status."""

from __future__ import annotations

import enum

import pytest

from nexs_serverless import SpanContext, StatusCode, configure, flush, stats, tracer
from nexs_serverless.exporters import InMemoryExporter


class Color(enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


class Region(str, enum.Enum):
    EU = "eu-west-1"


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no")


def test_primitive_attributes_are_kept_as_given() -> None:
    """str, bool, int and float values are stored unchanged."""
    with tracer.span("s", attributes={"a": "x", "b": True, "c": 3, "d": 1.5}) as span:
        pass
    assert dict(span.attributes) == {"a": "x", "b": True, "c": 3, "d": 1.5}


def test_homogeneous_sequences_become_tuples() -> None:
    """Lists of one primitive type are kept, as tuples."""
    with tracer.span("s") as span:
        span.set_attribute("ids", [1, 2, 3])
        span.set_attribute("names", ["a", "b"])
        span.set_attribute("empty", [])
    assert span.attributes["ids"] == (1, 2, 3)
    assert span.attributes["names"] == ("a", "b")
    assert span.attributes["empty"] == ()


def test_other_values_are_converted_and_counted() -> None:
    """Enums, bytes, mixed lists and objects are converted, never raised, and counted."""
    with tracer.span("s") as span:
        span.set_attribute("level", Level.HIGH)
        span.set_attribute("color", Color.RED)
        span.set_attribute("region", Region.EU)
        span.set_attribute("raw", b"caf\xc3\xa9")
        span.set_attribute("mixed", [1, "a"])
        span.set_attribute("numbers", [1, 2.5])
        span.set_attribute("obj", {"k": 1})
    attrs = span.attributes
    assert attrs["level"] == 3
    assert type(attrs["level"]) is int
    assert attrs["color"] == "Color.RED"
    assert attrs["region"] == "eu-west-1"  # a str enum: its value (str() of it is "Region.EU")
    assert attrs["raw"] == "café"
    assert attrs["mixed"] == ("1", "a")
    assert attrs["numbers"] == (1.0, 2.5)
    assert attrs["obj"] == "{'k': 1}"
    assert stats()["attributes_converted"] == 7


def test_unusable_values_are_dropped_and_counted() -> None:
    """None, an object whose str() raises, and non-str keys are dropped, never raised."""
    with tracer.span("s") as span:
        span.set_attribute("none", None)
        span.set_attribute("bad", Unprintable())
        span.set_attribute(42, "x")  # type: ignore[arg-type]
        span.set_attribute("", "x")
    assert dict(span.attributes) == {}
    assert span.dropped_attributes == 4


def test_attribute_count_limit_keeps_first_and_counts_the_rest() -> None:
    """Past OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT new keys are dropped; existing keys may be updated."""
    configure(environ={"OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT": "2"})
    with tracer.span("s", attributes={"a": 1, "b": 2, "c": 3}) as span:
        span.set_attribute("a", 10)
        span.set_attribute("d", 4)
    assert dict(span.attributes) == {"a": 10, "b": 2}
    assert span.dropped_attributes == 2


def test_value_length_limit_truncates_strings() -> None:
    """OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT truncates strings and strings inside sequences."""
    configure(environ={"OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT": "3"})
    with tracer.span("s", attributes={"s": "abcdef", "l": ["abcd", "x"], "n": 123456}) as span:
        pass
    assert span.attributes == {"s": "abc", "l": ("abc", "x"), "n": 123456}


def test_event_and_link_limits_count_drops() -> None:
    """Events and links past their limits are counted on the span."""
    configure(environ={"OTEL_SPAN_EVENT_COUNT_LIMIT": "1", "OTEL_SPAN_LINK_COUNT_LIMIT": "1"})
    other = SpanContext(1, 2)
    with tracer.span("s") as span:
        span.add_event("one", {"k": "v"})
        span.add_event("two")
        span.add_link(other)
        span.add_link(other, {"k": 1})
    assert [e.name for e in span.events] == ["one"]
    assert span.dropped_events == 1
    assert len(span.links) == 1
    assert span.dropped_links == 1


def test_exception_leaving_a_span_is_recorded_and_propagates() -> None:
    """An exception becomes an OpenTelemetry exception event and status ERROR, then propagates."""
    with pytest.raises(ValueError, match="boom"), tracer.span("s") as span:
        raise ValueError("boom")
    event = span.events[0]
    assert event.name == "exception"
    assert event.attributes["exception.type"] == "ValueError"
    assert event.attributes["exception.message"] == "boom"
    assert "raise ValueError" in str(event.attributes["exception.stacktrace"])
    assert span.status_code == StatusCode.ERROR
    assert span.status_description == "ValueError: boom"


def test_ended_span_ignores_changes() -> None:
    """After end, attributes, events and status are no longer changed."""
    span = tracer.span("s")
    span.end()
    end = span.end_ns
    span.set_attribute("late", 1)
    span.add_event("late")
    span.set_status(StatusCode.ERROR, "late")
    span.end()
    assert span.attributes == {}
    assert not span.events
    assert span.status_code == StatusCode.UNSET
    assert span.end_ns == end


def test_status_ok_is_final_and_description_only_with_error() -> None:
    """OK cannot be overridden, and descriptions are dropped for non-error statuses."""
    with tracer.span("a") as a:
        a.set_status(StatusCode.OK, "ignored")
        a.set_status(StatusCode.ERROR, "too late")
    assert a.status_code == StatusCode.OK
    assert a.status_description is None


def test_ids_are_random_nonzero_and_the_right_width() -> None:
    """Trace ids are 128-bit, span ids 64-bit, never zero, and do not repeat."""
    spans = []
    for _ in range(2000):
        with tracer.span("s") as span:
            spans.append((span.trace_id, span.span_id))
    assert all(0 < t < 1 << 128 and 0 < s < 1 << 64 for t, s in spans)
    assert len({t for t, _ in spans}) == 2000
    assert len({s for _, s in spans}) == 2000
    assert max(t for t, _ in spans) >= 1 << 120  # uses the high bits too


def test_span_context_rejects_mutation() -> None:
    """SpanContext is an immutable value with equality."""
    ctx = SpanContext(1, 2, 1, (("k", "v"),), True)
    with pytest.raises(AttributeError):
        ctx.trace_id = 3  # type: ignore[misc]
    assert ctx == SpanContext(1, 2, 1, (("k", "v"),), True)
    assert ctx.is_valid
    assert ctx.sampled
    assert not SpanContext(0, 2).is_valid


def test_span_context_fields_defaults_hash_and_copies() -> None:
    """Fields by name and by default; equal contexts hash alike; pickling and repr keep every field."""
    import pickle

    ctx = SpanContext(0xABC, 0xDEF)
    assert (ctx.trace_id, ctx.span_id, ctx.trace_flags, ctx.trace_state, ctx.is_remote) == (
        0xABC,
        0xDEF,
        1,
        (),
        False,
    )
    remote = SpanContext(1, 2, 0, (("k", "v"),), True)
    assert not remote.sampled
    assert hash(remote) == hash(SpanContext(1, 2, 0, (("k", "v"),), True))
    assert remote != SpanContext(1, 2, 0, (("k", "v"),), False)
    assert pickle.loads(pickle.dumps(remote)) == remote
    assert type(pickle.loads(pickle.dumps(remote))) is SpanContext
    assert repr(remote) == (
        "SpanContext(trace_id=1, span_id=2, trace_flags=0, trace_state=(('k', 'v'),), is_remote=True)"
    )


def test_exported_span_reads_like_an_opentelemetry_span(exporter: InMemoryExporter) -> None:
    """Exported copies carry context, parent, times, resource and scope under OpenTelemetry's names."""
    from nexs_serverless import flush

    with tracer.span("parent") as parent, tracer.span("child") as child:
        pass
    flush()
    by_name = {s.name: s for s in exporter.get_finished_spans()}
    exported = by_name["child"]
    assert exported.context == SpanContext(child.trace_id, child.span_id, 1)
    assert exported.parent is not None
    assert exported.parent.span_id == parent.span_id
    assert exported.start_time <= exported.end_time
    assert exported.resource.attributes["telemetry.sdk.name"] == "nexs_serverless"
    assert exported.instrumentation_scope.name == "nexs_serverless"


def test_setting_unset_keeps_an_error() -> None:
    """OpenTelemetry's API: a status of UNSET is ignored, it does not wipe an ERROR set earlier."""
    with tracer.span("s") as span:
        span.set_status(StatusCode.ERROR, "db down")
        span.set_status(StatusCode.UNSET)
    assert (span.status_code, span.status_description) == (StatusCode.ERROR, "db down")


def test_an_unhashable_attribute_key_is_dropped_not_raised() -> None:
    """A key that cannot be looked up (a list) is dropped and counted like any invalid key."""
    with tracer.span("s") as span:
        span.set_attribute(["k"], 1)  # type: ignore[arg-type]
    assert span.dropped_attributes == 1
    assert span.attributes == {}


def test_attributes_kept_by_the_user_survive_the_span_records_reuse(exporter: InMemoryExporter) -> None:
    """A kept ``span.attributes`` mapping is neither emptied nor filled by the next span (pool reuse)."""
    configure(exporters=[exporter])
    with tracer.span("a", attributes={"user": "alice"}) as first:
        pass
    kept = first.attributes
    del first
    flush()
    with tracer.span("b", attributes={"user": "bob", "secret": "x"}):
        pass
    assert kept == {"user": "alice"}


def test_exception_type_is_qualified_as_the_sdk_qualifies_it() -> None:
    """A class of the script being run is ``__main__.Foo`` (we wrote ``Foo``); built-ins stay bare."""
    from opentelemetry.sdk.trace import TracerProvider

    class FooError(Exception):
        pass

    FooError.__module__ = "__main__"
    sdk_span = TracerProvider().get_tracer("x").start_span("s")
    sdk_span.record_exception(FooError("x"))
    with tracer.span("s") as span:
        span.record_exception(FooError("x"))
        span.record_exception(ValueError("y"))
    ours = [event.attributes["exception.type"] for event in span.events]
    assert ours == [sdk_span.events[0].attributes["exception.type"], "ValueError"]
    assert ours[0].startswith("__main__.")
