"""W3C Trace Context: `traceparent`/`tracestate` read and written to the letter of the recommendation."""

from __future__ import annotations

import pytest

from nexs_serverless import propagation
from nexs_serverless.model import SpanContext
from nexs_serverless.propagation._carrier import new_context
from nexs_serverless.propagation.tracecontext import (
    TraceContextPropagator,
    parse_traceparent,
    parse_tracestate,
)

TRACE = 0x4BF92F3577B34DA6A3CE929D0E0E4736
SPAN = 0x00F067AA0BA902B7
VALID = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
W3C = propagation.CompositePropagator(("tracecontext",))


def extract(carrier: object) -> SpanContext | None:
    return W3C.extract(carrier).context


def test_valid_traceparent_gives_a_remote_sampled_context() -> None:
    """The recommendation's example header is read as trace, parent, sampled and remote."""
    assert extract({"traceparent": VALID}) == SpanContext(TRACE, SPAN, 1, (), True)


def test_unsampled_flag_is_kept() -> None:
    """Flags 00 read as not sampled."""
    context = extract({"traceparent": VALID[:-2] + "00"})
    assert context is not None
    assert not context.sampled


def test_unknown_flag_bits_are_zeroed_and_random_flag_kept() -> None:
    """Level 2's random bit (0x02) survives; bits no version defines are dropped (section 3.2.2.5)."""
    context = extract({"traceparent": VALID[:-2] + "ff"})
    assert context is not None
    assert context.trace_flags == 0x03


@pytest.mark.parametrize(
    "header",
    [
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  # version ff is forbidden
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  # all-zero trace id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  # all-zero parent id
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01",  # upper-case hex
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",  # version 00 has 4 fields
        "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",  # short trace id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-01",  # short parent id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",  # short flags
        "0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  # non-hex version
        "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",  # wrong delimiter
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x",  # non-hex flags
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",  # missing flags
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\n",  # control character
        "",
        "garbage",
    ],
)
def test_invalid_traceparent_gives_no_context(header: str) -> None:
    """Any traceparent the recommendation calls invalid starts a new trace."""
    assert extract({"traceparent": header}) is None


def test_surrounding_whitespace_is_tolerated() -> None:
    """Optional whitespace around the value (an HTTP field's OWS) does not invalidate it."""
    assert extract({"traceparent": f" \t{VALID} "}) == SpanContext(TRACE, SPAN, 1, (), True)


def test_future_version_with_more_fields_is_parsed_as_version_00() -> None:
    """A higher version is read by the version-00 layout, keeping only the sampled flag."""
    header = "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09-what-the-future-will-be-like"
    assert extract({"traceparent": header}) == SpanContext(TRACE, SPAN, 1, (), True)


@pytest.mark.parametrize(
    "header",
    [
        "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01.what",  # flags not followed by '-'
        "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",  # shorter than 55 characters
        "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-xx-rest",
    ],
)
def test_future_version_that_does_not_fit_is_invalid(header: str) -> None:
    """A higher version whose first fields break the version-00 shape gives no context."""
    assert extract({"traceparent": header}) is None


@pytest.mark.parametrize("name", ["traceparent", "Traceparent", "TRACEPARENT", "TraceParent"])
def test_header_names_are_case_insensitive(name: str) -> None:
    """HTTP field names are case-insensitive, whatever case the carrier keeps."""
    assert extract({name: VALID, "TraceState": "a=1"}) == SpanContext(TRACE, SPAN, 1, (("a", "1"),), True)


def test_tracestate_members_are_kept_in_order() -> None:
    """List members are read in order, with empty members and optional whitespace skipped."""
    state = "congo=t61rcWkgMzE, ,rojo=00f067aa0ba902b7 ,  tenant@vendor=x y"
    context = extract({"traceparent": VALID, "tracestate": state})
    assert context is not None
    assert context.trace_state == (
        ("congo", "t61rcWkgMzE"),
        ("rojo", "00f067aa0ba902b7"),
        ("tenant@vendor", "x y"),
    )


def test_tracestate_split_over_several_headers_is_joined() -> None:
    """Several tracestate fields (a list of values) are combined with commas."""
    context = extract({"traceparent": VALID, "tracestate": ["a=1", "b=2"]})
    assert context is not None
    assert context.trace_state == (("a", "1"), ("b", "2"))


@pytest.mark.parametrize(
    "state",
    [
        ",".join(f"k{i}=v" for i in range(33)),  # more than 32 members
        "a=1,a=2",  # duplicate key
        "Upper=1",  # keys are lower case
        "a=1,=2",  # empty key
        "a=b=c",  # '=' is not allowed in a value
        "a=" + "x" * 257,  # value longer than 256
        "a=",  # empty value
        "tenant@systemidtoolong123=1",  # system id longer than 14
        "k" * 257 + "=1",  # key longer than 256
        "a=1\tb",  # tab inside a value
        "a=\u00e9",  # non-ASCII value
    ],
)
def test_bad_tracestate_is_dropped_and_traceparent_kept(state: str) -> None:
    """A tracestate that breaks the grammar or the limits is discarded whole; the context stays."""
    assert extract({"traceparent": VALID, "tracestate": state}) == SpanContext(TRACE, SPAN, 1, (), True)


def test_thirty_two_members_are_allowed() -> None:
    """Exactly 32 members is within the limit."""
    state = ",".join(f"k{i}=v{i}" for i in range(32))
    context = extract({"traceparent": VALID, "tracestate": state})
    assert context is not None
    assert len(context.trace_state) == 32


def test_tracestate_without_traceparent_gives_no_context() -> None:
    """tracestate is only read with a valid traceparent."""
    assert extract({"tracestate": "a=1"}) is None
    assert extract({"traceparent": "ff" + VALID[2:], "tracestate": "a=1"}) is None


def test_inject_writes_version_00_and_tracestate() -> None:
    """Injection writes a version-00 traceparent and the context's tracestate."""
    carrier: dict[str, str] = {}
    W3C.inject(carrier, SpanContext(TRACE, SPAN, 0, (("a", "1"), ("b@c", "2"))))
    assert carrier == {
        "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
        "tracestate": "a=1,b@c=2",
    }


def test_inject_replaces_a_differently_cased_header_in_a_dict() -> None:
    """A plain dict carrier does not end up with both `Traceparent` and `traceparent`."""
    carrier = {"Traceparent": "stale", "Accept": "text/plain"}
    W3C.inject(carrier, SpanContext(TRACE, SPAN, 1))
    assert carrier == {"Accept": "text/plain", "traceparent": VALID}


def test_inject_writes_nothing_for_an_invalid_context() -> None:
    """A context with a zero id is not propagated."""
    carrier: dict[str, str] = {}
    W3C.inject(carrier, SpanContext(0, SPAN, 1))
    assert carrier == {}


def test_fast_and_general_paths_agree() -> None:
    """The 55-character fast path gives the same context as the general parser."""
    assert parse_traceparent(VALID) == parse_traceparent(f" {VALID}")


def test_fast_context_builder_equals_the_constructor() -> None:
    """Contexts built through the slots equal the ones `SpanContext(...)` builds."""
    built = new_context(TRACE, SPAN, 1, (("a", "1"),))
    assert built == SpanContext(TRACE, SPAN, 1, (("a", "1"),), True)
    assert hash(built) == hash(SpanContext(TRACE, SPAN, 1, (("a", "1"),), True))


def test_parse_tracestate_returns_none_for_invalid() -> None:
    """The tracestate parser reports an invalid list as None, an empty one as ()."""
    assert parse_tracestate("a=1,a=1") is None
    assert parse_tracestate(" , ") == ()


def test_propagator_declares_its_fields() -> None:
    """The fields a CORS allow-list needs are the two W3C headers."""
    assert TraceContextPropagator.fields == ("traceparent", "tracestate")
