"""Property-based: every format gives back what it wrote, and no input makes extraction raise."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nexs_serverless
from nexs_serverless import propagation
from nexs_serverless.model import SpanContext
from nexs_serverless.propagation.baggage import format_baggage, parse_baggage

FORMATS = sorted(propagation._FORMATS)
TRACE_FORMATS = [name for name in FORMATS if name != "baggage"]
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

trace_ids = st.integers(min_value=1, max_value=(1 << 128) - 1)
span_ids = st.integers(min_value=1, max_value=(1 << 64) - 1)
_KEY_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_-*/"
_VALUE_CHARS = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) not in ",=")
state_keys = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=1).flatmap(
    lambda first: st.text(alphabet=_KEY_CHARS, max_size=20).map(lambda rest: first + rest)
)
state_values = st.text(alphabet=_VALUE_CHARS, min_size=1, max_size=30).filter(lambda v: v[-1] != " ")
trace_states = st.lists(st.tuples(state_keys, state_values), max_size=32, unique_by=lambda pair: pair[0]).map(
    tuple
)


def _round_trip(name: str, context: SpanContext) -> SpanContext | None:
    composite = propagation.CompositePropagator((name,))
    carrier: dict[str, str] = {}
    composite.inject(carrier, context)
    return composite.extract(carrier).context


@pytest.mark.parametrize("name", TRACE_FORMATS)
@FAST
@given(trace_id=trace_ids, span_id=span_ids, sampled=st.booleans())
def test_inject_then_extract_gives_the_same_context(
    name: str, trace_id: int, span_id: int, sampled: bool
) -> None:
    """For every format, what inject writes, extract reads back as the same remote context."""
    if name == "request_id":
        sampled = True  # Request-Id carries no sampling decision: it reads as sampled
    context = SpanContext(trace_id, span_id, 1 if sampled else 0)
    assert _round_trip(name, context) == SpanContext(trace_id, span_id, context.trace_flags, (), True)


@FAST
@given(trace_id=trace_ids, span_id=span_ids, flags=st.integers(0, 3), state=trace_states)
def test_tracecontext_round_trip_keeps_flags_and_tracestate(
    trace_id: int, span_id: int, flags: int, state: tuple[tuple[str, str], ...]
) -> None:
    """W3C keeps the sampled and random flags and the whole tracestate (up to 32 members)."""
    context = SpanContext(trace_id, span_id, flags, state)
    assert _round_trip("tracecontext", context) == SpanContext(trace_id, span_id, flags, state, True)


tokens = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$&'*+-.^_`|~", min_size=1
)


@FAST
@given(entries=st.dictionaries(tokens, st.text(max_size=40), max_size=20))
def test_baggage_round_trip_keeps_any_text(entries: dict[str, str]) -> None:
    """Any text value survives encoding and decoding."""
    header = format_baggage({key: (value, "") for key, value in entries.items()})
    decoded = parse_baggage(header) if header else None
    assert {key: value for key, (value, _) in (decoded or {}).items()} == entries


header_values = st.one_of(
    st.text(max_size=120),
    st.binary(max_size=120),
    st.lists(st.text(max_size=40), max_size=3),
    st.sampled_from(["00-", "Root=1-", "|", "-", ";o=1", "b3", ",", "="]).flatmap(
        lambda prefix: st.text(max_size=80).map(lambda rest: prefix + rest)
    ),
)
header_names = st.one_of(
    st.sampled_from(
        [
            "traceparent",
            "tracestate",
            "baggage",
            "X-Amzn-Trace-Id",
            "Lambda-Runtime-Trace-Id",
            "b3",
            "X-B3-TraceId",
            "X-B3-SpanId",
            "X-B3-Sampled",
            "X-B3-Flags",
            "X-Cloud-Trace-Context",
            "Request-Id",
        ]
    ),
    st.text(max_size=20),
)


@pytest.mark.parametrize("name", FORMATS)
@FAST
@given(carrier=st.dictionaries(header_names, header_values, max_size=8))
def test_arbitrary_headers_never_raise(name: str, carrier: dict[str, object]) -> None:
    """Random text, bytes and lists under every known header name give a context or None, never an error."""
    before = nexs_serverless.stats().get("internal_errors", 0)
    incoming = propagation.CompositePropagator((name,)).extract(carrier)
    assert incoming.context is None or incoming.context.is_valid
    assert nexs_serverless.stats().get("internal_errors", 0) == before  # nothing was raised and swallowed


@FAST
@given(value=st.one_of(st.none(), st.integers(), st.binary(), st.text(), st.lists(st.integers())))
def test_non_mapping_carriers_never_raise(value: object) -> None:
    """Anything passed as a carrier gives None instead of an exception."""
    assert propagation.extract(value) is None
