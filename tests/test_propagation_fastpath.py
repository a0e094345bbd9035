"""The fast paths of `extract`/`inject` agree with the general ones they shortcut."""

from __future__ import annotations

import pytest

import nexs_serverless
from nexs_serverless import baggage, propagation
from nexs_serverless.model import SpanContext
from nexs_serverless.propagation._carrier import headers_from
from nexs_serverless.propagation.incoming import Incoming
from nexs_serverless.testing import reset

TRACE = 0x4BF92F3577B34DA6A3CE929D0E0E4736
SPAN = 0x00F067AA0BA902B7
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
XRAY = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1;Lineage=a:1"
ALL_FORMATS = "tracecontext,baggage,xray,xray-lambda,b3,b3multi,cloud_trace,request_id"

CARRIERS = [
    {},
    {"traceparent": TRACEPARENT},
    {"Traceparent": TRACEPARENT, "TraceState": "a=1,b=2"},
    {"traceparent": "ff-" + TRACEPARENT[3:]},
    {"x-amzn-trace-id": XRAY},
    {"traceparent": TRACEPARENT, "X-Amzn-Trace-Id": XRAY},
    {"traceparent": TRACEPARENT, "X-Amzn-Trace-Id": "Root=broken"},
    {"b3": "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1"},
    {"X-B3-TraceId": "4bf92f3577b34da6a3ce929d0e0e4736", "X-B3-SpanId": "00f067aa0ba902b7"},
    {"X-Cloud-Trace-Context": "4bf92f3577b34da6a3ce929d0e0e4736/123;o=1"},
    {"Request-Id": "|4bf92f3577b34da6a3ce929d0e0e4736.00f067aa0ba902b7."},
    {"lambda-runtime-trace-id": XRAY, "baggage": "k=v"},
]


@pytest.mark.parametrize("order", [ALL_FORMATS, ",".join(reversed(ALL_FORMATS.split(",")))])
@pytest.mark.parametrize("carrier", CARRIERS)
def test_context_only_extraction_equals_the_full_one(order: str, carrier: dict[str, str]) -> None:
    """`extract` and `extract_context` give the context `extract_incoming` gives, in any format order."""
    reset(environ={"OTEL_PROPAGATORS": order})
    expected = propagation.extract_incoming(carrier).context
    assert propagation.extract(carrier) == expected
    assert propagation.composite().extract_context(carrier) == expected
    assert propagation.extract(headers_from(carrier)) == expected


@pytest.mark.parametrize("name", ALL_FORMATS.split(",")[:1] + ALL_FORMATS.split(",")[2:])
def test_each_format_keeps_the_earlier_context_when_it_finds_none(name: str) -> None:
    """A format's `extract_context` returns the context found before it when its header is absent."""
    earlier = SpanContext(TRACE, SPAN, 1, (), True)
    propagator = propagation.load(name)
    assert propagator.extract_context(headers_from({"other": "x"}), earlier) is earlier  # type: ignore[attr-defined]
    incoming = Incoming(earlier)
    propagator.extract(headers_from({"other": "x"}), incoming)  # type: ignore[attr-defined]
    assert incoming.context is earlier


@pytest.mark.parametrize("with_baggage", [False, True])
@pytest.mark.parametrize("carrier", [{}, {"Traceparent": "old", "X-AMZN-TRACE-ID": "old", "other": "x"}])
def test_module_inject_writes_what_the_composite_writes(with_baggage: bool, carrier: dict[str, str]) -> None:
    """The inlined module-level `inject` writes the same headers, in the same order, as the method."""
    reset(environ={"OTEL_PROPAGATORS": "tracecontext,baggage,xray,b3"})
    if with_baggage:
        baggage.set("tenant", "acme")
    context = SpanContext(TRACE, SPAN, 1, (("a", "1"),), True)
    by_module = dict(carrier)
    by_method = dict(carrier)
    propagation.inject(by_module, context)
    propagation.composite().inject(by_method, context)
    baggage.clear()
    assert list(by_module.items()) == list(by_method.items())
    assert ("baggage" in by_module) is with_baggage


def test_baggage_set_after_the_composite_is_built_is_written_in_its_place() -> None:
    """Baggage is read per call, and written between the formats listed before and after it."""
    propagation.composite()
    carrier: dict[str, str] = {}
    with nexs_serverless.tracer.span("work") as span:
        baggage.set("tenant", "acme")
        propagation.inject(carrier, span)
        baggage.clear()
    assert list(carrier) == ["traceparent", "baggage", "X-Amzn-Trace-Id"]
    assert carrier["baggage"] == "tenant=acme"


def test_an_invalid_context_writes_only_the_baggage() -> None:
    """With no valid context, the trace formats write nothing and the baggage is still sent."""
    baggage.set("tenant", "acme")
    carrier: dict[str, str] = {}
    propagation.inject(carrier, SpanContext(0, SPAN, 1))
    baggage.clear()
    assert carrier == {"baggage": "tenant=acme"}
