"""OpenTelemetry API interop: spans of OpenTelemetry tracers are ours, with one current span for both APIs."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace

from nexs_serverless import SpanKind, StatusCode, tracer
from nexs_serverless.exporters import InMemoryExporter
from nexs_serverless.finished import FinishedSpan
from nexs_serverless.flushing import flush
from nexs_serverless.otel import NexsTracerProvider, bridge
from nexs_serverless.testing import reset


@pytest.fixture(autouse=True)
def bridged() -> Iterator[None]:
    """The context bridge in place for the test only (the global provider is left alone)."""
    assert bridge.install()
    yield
    bridge.uninstall()


@pytest.fixture
def spans() -> InMemoryExporter:
    """An exporter receiving what `finish()` flushes."""
    exporter = InMemoryExporter()
    reset(exporters=[exporter])
    return exporter


def finish(exporter: InMemoryExporter) -> dict[str, FinishedSpan]:
    flush()
    return {span.name: span for span in exporter.get_finished_spans()}


OTEL = NexsTracerProvider().get_tracer("acme.instrumentation", "1.2.3")


def test_otel_spans_land_in_our_buffer_with_their_scope(spans: InMemoryExporter) -> None:
    """A span started through the OpenTelemetry API is exported by us, tagged with its library."""
    with OTEL.start_as_current_span(
        "db.query", kind=trace.SpanKind.CLIENT, attributes={"db.system": "postgresql"}
    ):
        pass
    span = finish(spans)["db.query"]
    assert span.kind == SpanKind.CLIENT
    assert span.attributes["db.system"] == "postgresql"
    assert span.attributes["otel.scope.name"] == "acme.instrumentation"
    assert span.attributes["otel.scope.version"] == "1.2.3"


def test_otel_span_inside_ours_is_its_child(spans: InMemoryExporter) -> None:
    """Our current span is OpenTelemetry's current span too."""
    with tracer.span("handler") as handler:
        assert trace.get_current_span().get_span_context().span_id == handler.span_id
        with OTEL.start_as_current_span("library-call"):
            pass
    assert finish(spans)["library-call"].parent_span_id == handler.span_id


def test_our_span_inside_an_otel_span_is_its_child(spans: InMemoryExporter) -> None:
    """A span attached by OpenTelemetry (use_span, start_as_current_span) is our current span."""
    with OTEL.start_as_current_span("outer") as outer, tracer.span("inner"):
        pass
    done = finish(spans)
    assert done["inner"].parent_span_id == outer.get_span_context().span_id
    assert done["inner"].trace_id == done["outer"].trace_id


def test_start_span_then_use_span_as_instrumentations_do(spans: InMemoryExporter) -> None:
    """`start_span` + `trace.use_span` (the common instrumentation pattern) keeps both APIs in step."""
    with tracer.span("handler") as handler:
        span = OTEL.start_span("request")
        with trace.use_span(span, end_on_exit=True), tracer.span("work"):
            pass
        assert trace.get_current_span().get_span_context().span_id == handler.span_id
    done = finish(spans)
    assert done["request"].parent_span_id == handler.span_id
    assert done["work"].parent_span_id == done["request"].span_id


def test_exception_in_otel_block_is_recorded(spans: InMemoryExporter) -> None:
    """use_span records the exception and sets ERROR through our span."""
    with pytest.raises(ValueError, match="boom"), OTEL.start_as_current_span("failing"):
        raise ValueError("boom")
    span = finish(spans)["failing"]
    assert span.status_code == StatusCode.ERROR
    assert span.events[0].name == "exception"


def test_explicit_context_without_a_span_starts_a_new_trace(spans: InMemoryExporter) -> None:
    """A context passed explicitly is the only parent source: an empty one means a root span."""
    with tracer.span("handler") as handler:
        OTEL.start_span("detached", context=otel_context.Context()).end()
    detached = finish(spans)["detached"]
    assert not detached.parent_span_id
    assert detached.trace_id != handler.trace_id


def test_links_status_events_and_name_go_through(spans: InMemoryExporter) -> None:
    """The Span API's methods act on our span."""
    other = trace.SpanContext(0x1, 0x2, is_remote=True, trace_flags=trace.TraceFlags(1))
    span = OTEL.start_span("op", links=[trace.Link(other, {"k": "v"})])
    span.add_event("step", {"n": 1})
    span.update_name("renamed")
    span.set_status(trace.Status(trace.StatusCode.ERROR, "bad"))
    span.end()
    done = finish(spans)["renamed"]
    assert done.links[0].context.span_id == 0x2
    assert done.events[0].name == "step"
    assert done.status_description == "bad"


def test_spans_of_another_sdk_become_parents_of_ours(spans: InMemoryExporter) -> None:
    """With the application's own SDK provider, our spans still join its trace."""
    from opentelemetry.sdk.trace import TracerProvider

    sdk = TracerProvider().get_tracer("app")
    with sdk.start_as_current_span("sdk-span") as outer, tracer.span("ours"):
        pass
    ours = finish(spans)["ours"]
    assert ours.trace_id == outer.get_span_context().trace_id
    assert ours.parent_span_id == outer.get_span_context().span_id


def test_bridge_uninstall_restores_opentelemetry_context() -> None:
    """After uninstall, OpenTelemetry's runtime context is its own again."""
    bridge.uninstall()
    assert not bridge.installed()
    with tracer.span("handler"):
        assert not trace.get_current_span().get_span_context().is_valid
    assert bridge.install()


def test_first_invocation_installs_the_provider_when_opentelemetry_is_imported() -> None:
    """In a fresh process with opentelemetry imported, the first invocation makes ours the global provider."""
    script = textwrap.dedent(
        """
        import opentelemetry.trace as trace
        from nexs_serverless import traced_handler
        from nexs_serverless.exporters import InMemoryExporter
        from nexs_serverless.testing import LambdaContext, reset

        exporter = InMemoryExporter()
        reset(exporters=[exporter])
        library = trace.get_tracer("library")  # a proxy, as libraries get at import

        @traced_handler
        def handler(event, context):
            with library.start_as_current_span("from-library"):
                pass

        handler({}, LambdaContext())
        names = sorted(span.name for span in exporter.get_finished_spans())
        print(type(trace.get_tracer_provider()).__name__, names)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.strip() == "NexsTracerProvider ['from-library', 'test-function']"
