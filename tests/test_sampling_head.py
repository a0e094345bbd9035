"""Head sampling: OpenTelemetry semantics, agreement across functions, unsampled propagation."""

from __future__ import annotations

import pytest

from nexs_serverless import propagation, stats, traced_handler, tracer
from nexs_serverless.exporters import InMemoryExporter
from nexs_serverless.model import SpanContext
from nexs_serverless.sampling.head import AlwaysOff, AlwaysOn, ParentBased, TraceIdRatio, create
from nexs_serverless.span import NonRecordingSpan
from nexs_serverless.testing import LambdaContext, reset

FORMATS = ("tracecontext", "xray", "b3", "b3multi")
TRACES = 600


def _function_a(sampler: str, ratio: str, formats: str) -> list[tuple[int, bool, dict[str, str]]]:
    """Simulated upstream function: starts roots and injects their context into headers."""
    reset(
        environ={
            "OTEL_TRACES_SAMPLER": sampler,
            "OTEL_TRACES_SAMPLER_ARG": ratio,
            "OTEL_PROPAGATORS": formats,
        }
    )
    out = []
    for _ in range(TRACES):
        with tracer.span("a", parent=tracer.ROOT) as span:
            headers: dict[str, str] = {}
            propagation.inject(headers)
            out.append((span.trace_id, bool(span.trace_flags & 1), headers))
    return out


def _function_b(
    sent: list[tuple[int, bool, dict[str, str]]], sampler: str, ratio: str, formats: str
) -> list[bool]:
    """Simulated downstream function: extracts the context and starts its invocation root under it."""
    reset(
        environ={
            "OTEL_TRACES_SAMPLER": sampler,
            "OTEL_TRACES_SAMPLER_ARG": ratio,
            "OTEL_PROPAGATORS": formats,
        }
    )
    decisions = []
    for trace_id, _, headers in sent:
        parent = propagation.extract(headers)
        assert parent is not None
        assert parent.trace_id == trace_id
        with tracer.span("b", parent=parent) as span:
            assert span.trace_id == trace_id
            decisions.append(bool(span.trace_flags & 1))
    return decisions


@pytest.mark.parametrize("formats", FORMATS)
def test_parent_based_downstream_follows_the_upstream_ratio_decision(formats: str) -> None:
    """With W3C, X-Ray or B3 headers, a parent-based function keeps exactly the traces upstream sampled."""
    sent = _function_a("traceidratio", "0.3", formats)
    upstream = [sampled for _, sampled, _ in sent]
    assert upstream == _function_b(sent, "parentbased_always_on", "1.0", formats)
    assert upstream == _function_b(sent, "parentbased_traceidratio", "0.9", formats)
    assert 0.2 < sum(upstream) / TRACES < 0.4


def test_parent_based_always_off_still_follows_a_sampled_remote_parent() -> None:
    """OpenTelemetry's ParentBased(AlwaysOff) records remote-sampled traces and only them."""
    sent = _function_a("traceidratio", "0.5", "tracecontext")
    assert [sampled for _, sampled, _ in sent] == _function_b(
        sent, "parentbased_always_off", "1.0", "tracecontext"
    )


def test_independent_ratio_samplers_agree_on_the_same_trace_id() -> None:
    """Two functions each using traceidratio (not parent-based) decide alike, from the trace id alone."""
    sent = _function_a("traceidratio", "0.25", "tracecontext")
    assert [sampled for _, sampled, _ in sent] == _function_b(sent, "traceidratio", "0.25", "tracecontext")


def test_trace_id_ratio_reads_the_low_64_bits_like_opentelemetry_python() -> None:
    """The decision matches OpenTelemetry Python's TraceIdRatioBased bound on the id's low 64 bits."""
    sampler = TraceIdRatio(0.5)
    assert sampler.should_sample((1 << 127) | (1 << 63) - 1, None)
    assert not sampler.should_sample(1 << 63, None)
    assert TraceIdRatio(0.0).should_sample(1, None) is False
    assert TraceIdRatio(1.0).should_sample((1 << 128) - 1, None) is True
    with pytest.raises(ValueError, match="within"):
        TraceIdRatio(1.5)


def test_create_builds_every_otel_sampler_name() -> None:
    """Each OTEL_TRACES_SAMPLER name maps to the sampler OpenTelemetry specifies."""
    assert isinstance(create("always_on", 1.0), AlwaysOn)
    assert isinstance(create("always_off", 1.0), AlwaysOff)
    assert isinstance(create("traceidratio", 0.5), TraceIdRatio)
    parent_based = create("parentbased_traceidratio", 0.5)
    assert isinstance(parent_based, ParentBased)
    assert parent_based.description == "parentbased{traceidratio{0.5}}"
    remote_unsampled = SpanContext(1, 2, 0, is_remote=True)
    assert create("parentbased_always_on", 1.0).should_sample(5, remote_unsampled) is False
    with pytest.raises(ValueError, match="unknown sampler"):
        create("sometimes", 1.0)


def test_unsampled_invocation_propagates_context_with_sampled_flag_zero(exporter: InMemoryExporter) -> None:
    """An unsampled invocation records nothing; its children and outgoing headers carry the trace, flag 0."""
    reset(environ={"OTEL_TRACES_SAMPLER": "always_off"}, exporters=[exporter])
    seen: dict[str, object] = {}

    @traced_handler
    def handler(event: object, context: object) -> str:
        with tracer.span("outgoing call") as child:
            headers: dict[str, str] = {}
            propagation.inject(headers)
            seen["child"] = child
            seen["root"] = tracer.current_span()
            seen["headers"] = headers
        return "ok"

    assert handler({}, LambdaContext()) == "ok"
    child = seen["child"]
    assert isinstance(child, NonRecordingSpan)
    assert child.trace_id
    assert child.span_id
    assert child.trace_flags == 0
    traceparent = seen["headers"]["traceparent"]  # type: ignore[index]
    assert traceparent == f"00-{child.trace_id:032x}-{child.span_id:016x}-00"
    assert exporter.get_finished_spans() == []
    assert stats()["spans_unsampled"] >= 2


def test_unsampled_remote_parent_keeps_its_trace_and_tracestate() -> None:
    """A remote parent with sampled=0 yields a context-only span in the same trace, tracestate intact."""
    parent = SpanContext(0xABC, 0xDEF, 0, (("vendor", "v1"),), is_remote=True)
    with tracer.span("b", parent=parent) as span:
        assert isinstance(span, NonRecordingSpan)
        assert (span.trace_id, span.parent_span_id, span.trace_state) == (0xABC, 0xDEF, (("vendor", "v1"),))
        headers: dict[str, str] = {}
        propagation.inject(headers)
    assert headers["traceparent"].endswith("-00")
