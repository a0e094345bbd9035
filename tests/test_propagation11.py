"""Session 11, propagation: X-Ray's deferred sampling decision, repeated header lines read by a
format's own `extract`, and the OpenTelemetry bridge's detach of another context's token."""

from __future__ import annotations

import contextvars
import http.client
import io
import logging

import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace

from nexs_serverless import propagation, traced_handler, tracer
from nexs_serverless.context import current_span
from nexs_serverless.exporters import InMemoryExporter
from nexs_serverless.model import SpanContext
from nexs_serverless.otel import bridge
from nexs_serverless.propagation.baggage import BaggagePropagator
from nexs_serverless.propagation.incoming import Incoming
from nexs_serverless.propagation.tracecontext import TraceContextPropagator
from nexs_serverless.propagation.xray import incoming_from
from nexs_serverless.sampling.head import TraceIdRatio
from nexs_serverless.testing import LambdaContext, events, reset

PARENT = 0x53995C3F42CD8AD8
# Two X-Ray roots: the low 64 bits of the first are under TraceIdRatio(0.5)'s bound, the second's over.
LOW_ROOT, LOW_TRACE = "1-5759e988-bd862e3f11be46a994272793", 0x5759E988BD862E3F11BE46A994272793
HIGH_ROOT, HIGH_TRACE = "1-5759e988-bd862e3fe1be46a994272793", 0x5759E988BD862E3FE1BE46A994272793
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def _xray(root: str, sampled: str | None) -> str:
    header = f"Root={root};Parent={PARENT:016x}"
    return header if sampled is None else f"{header};Sampled={sampled}"


# -- X-Ray: Sampled=? and no Sampled leave the decision to the receiver ----------------------------


@pytest.mark.parametrize("sampled", ["?", None])
@pytest.mark.parametrize(
    ("sampler", "arg", "root", "recorded"),
    [
        ("parentbased_always_on", "1.0", HIGH_ROOT, True),
        ("always_on", "1.0", HIGH_ROOT, True),
        ("parentbased_traceidratio", "0.5", LOW_ROOT, True),
        ("parentbased_traceidratio", "0.5", HIGH_ROOT, False),
        ("traceidratio", "0.5", LOW_ROOT, True),
        ("traceidratio", "0.5", HIGH_ROOT, False),
        ("parentbased_always_off", "1.0", HIGH_ROOT, False),
        ("always_off", "1.0", HIGH_ROOT, False),
    ],
)
def test_an_undecided_x_ray_header_is_continued_and_the_sampler_decides_as_for_a_root(
    sampled: str | None, sampler: str, arg: str, root: str, recorded: bool
) -> None:
    """A header saying Sampled=? or nothing continues its trace under its parent, recorded as the
    configured sampler would record a root with that trace id; outgoing headers carry that decision."""
    exporter = InMemoryExporter()
    reset(environ={"OTEL_TRACES_SAMPLER": sampler, "OTEL_TRACES_SAMPLER_ARG": arg}, exporters=[exporter])
    outgoing: dict[str, str] = {}

    @traced_handler
    def handler(event: object, context: object) -> str:
        propagation.inject(outgoing)
        return "ok"

    event = events.api_gateway_v2(method="GET", path="/", headers={"x-amzn-trace-id": _xray(root, sampled)})
    assert handler(event, LambdaContext()) == "ok"
    trace_id = LOW_TRACE if root == LOW_ROOT else HIGH_TRACE
    found = [(s.trace_id, s.parent_span_id, s.parent_is_remote) for s in exporter.get_finished_spans()]
    assert found == ([(trace_id, PARENT, True)] if recorded else [])
    flag = "1" if recorded else "0"
    assert outgoing["X-Amzn-Trace-Id"].startswith(f"Root={root};Parent=")
    assert outgoing["X-Amzn-Trace-Id"].endswith(f";Sampled={flag}")
    assert outgoing["traceparent"].startswith(f"00-{trace_id:032x}-")
    assert outgoing["traceparent"].endswith(f"-0{flag}")


@pytest.mark.parametrize("propagators", ["tracecontext,baggage,xray", "xray", "xray-lambda", "b3,xray"])
def test_every_x_ray_reader_takes_the_samplers_decision_for_sampled_question_mark(propagators: str) -> None:
    """`propagation.extract` (the default formats' own reader, and the general path) and the
    `xray-lambda` format give a Sampled=? context the sampler's root decision, ids kept."""
    reset(
        environ={
            "OTEL_PROPAGATORS": propagators,
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": "0.5",
        }
    )
    decisions = set()
    for root, trace_id in ((LOW_ROOT, LOW_TRACE), (HIGH_ROOT, HIGH_TRACE)):
        decided = 1 if TraceIdRatio(0.5).should_sample(trace_id, None) else 0
        decisions.add(decided)
        carrier = {"X-Amzn-Trace-Id": _xray(root, "?")}
        expected = SpanContext(trace_id, PARENT, decided, (), True)
        assert propagation.extract(carrier) == expected
        assert propagation.extract_incoming(carrier).context == expected
    assert decisions == {0, 1}


def test_sampled_zero_and_one_still_decide_under_a_parent_based_sampler() -> None:
    """An explicit Sampled=0 is followed (not re-decided), however the sampler would decide a root."""
    reset(environ={"OTEL_TRACES_SAMPLER": "parentbased_always_on"})
    parent = propagation.extract({"X-Amzn-Trace-Id": _xray(HIGH_ROOT, "0")})
    assert parent == SpanContext(HIGH_TRACE, PARENT, 0, (), True)
    with tracer.span("child", parent=parent) as span:
        assert span.trace_flags == 0


@pytest.mark.parametrize("sampled", ["?", None])
def test_lambdas_own_variable_and_sqs_headers_read_as_before(sampled: str | None) -> None:
    """`incoming_from` (Lambda's _X_AMZN_TRACE_ID, SQS's AWSTraceHeader) still reads an undecided
    header as not sampled, so those sources start no trace of ours from it."""
    reset(environ={"OTEL_TRACES_SAMPLER": "always_on"})
    incoming = incoming_from(_xray(HIGH_ROOT, sampled))
    assert incoming is not None
    assert incoming.context == SpanContext(HIGH_TRACE, PARENT, 0, (), True)


# -- a format's own extract reads every line of a header object -------------------------------------


def _message(*lines: tuple[str, str]) -> http.client.HTTPMessage:
    raw = "".join(f"{name}: {value}\r\n" for name, value in lines) + "\r\n"
    return http.client.parse_headers(io.BytesIO(raw.encode("latin-1")))


def test_trace_context_extract_joins_repeated_tracestate_lines() -> None:
    """TraceContextPropagator's own extract reads two tracestate lines as one list, as the composite does."""
    carrier = _message(("traceparent", TRACEPARENT), ("tracestate", "a=1"), ("tracestate", "b=2,c=3"))
    incoming = Incoming()
    TraceContextPropagator().extract(carrier, incoming)
    assert incoming.context is not None
    assert incoming.context.trace_state == (("a", "1"), ("b", "2"), ("c", "3"))
    assert TraceContextPropagator().extract_context(carrier, None) == propagation.extract(carrier)


def test_trace_context_extract_refuses_two_traceparent_lines() -> None:
    """Two traceparent lines are invalid (W3C Trace Context 3.2): the format's own extract finds none."""
    other = "00-4bf92f3577b34da6a3ce929d0e0e4737-00f067aa0ba902b7-01"
    carrier = _message(("traceparent", TRACEPARENT), ("traceparent", other))
    assert TraceContextPropagator().extract_context(carrier, None) is None
    incoming = Incoming()
    TraceContextPropagator().extract(carrier, incoming)
    assert incoming.context is None


def test_baggage_extract_joins_repeated_baggage_lines() -> None:
    """BaggagePropagator's own extract keeps the members of every baggage line."""
    incoming = Incoming()
    BaggagePropagator().extract(_message(("baggage", "userId=alice"), ("Baggage", "node=DF%2028")), incoming)
    assert incoming.baggage == {"userId": ("alice", ""), "node": ("DF 28", "")}


# -- the OpenTelemetry bridge's detach ---------------------------------------------------------------


def test_detaching_another_contexts_token_leaves_both_current_spans_alone(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A detach with a token attached in another context fails in OpenTelemetry (logged, its context
    kept); our current span stays too, so a span started next is still the open span's child."""
    reset(exporters=[InMemoryExporter()])
    assert bridge.install()
    try:
        sdk_context = trace.SpanContext(0xABC, 0xDEF, False, trace.TraceFlags(1))
        token = otel_context.attach(trace.set_span_in_context(trace.NonRecordingSpan(sdk_context)))
        seen: dict[str, object] = {}

        def elsewhere() -> None:
            with tracer.span("open") as span:
                with caplog.at_level(logging.ERROR, logger="opentelemetry.context"):
                    otel_context.detach(token)
                seen["current"] = current_span()
                seen["otel"] = trace.get_current_span().get_span_context().span_id
                with tracer.span("next") as child:
                    seen["child"] = (child.trace_id, child.parent_span_id)
                seen["span"] = (span.trace_id, span.span_id)

        contextvars.copy_context().run(elsewhere)
        otel_context.detach(token)
    finally:
        bridge.uninstall()
    trace_id, span_id = seen["span"]  # type: ignore[misc]
    assert "Failed to detach context" in caplog.text
    assert current_span() is None
    assert getattr(seen["current"], "span_id", None) == span_id
    assert seen["otel"] == span_id
    assert seen["child"] == (trace_id, span_id)
