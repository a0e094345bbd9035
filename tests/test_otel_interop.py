"""OpenTelemetry API interop: spans of OpenTelemetry tracers are ours, with one current span for both APIs."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator

import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from support.fresh_python import run_python
from support.otel_oracle import sdk_span

from nexs_serverless import SpanKind, StatusCode, configure, tracer
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
    result = run_python(script)
    assert result.stdout.strip() == "NexsTracerProvider ['from-library', 'test-function']"


# -- the Span API as the OpenTelemetry SDK implements it (the SDK is the oracle) ---------------


def _our_span(run: Callable[[trace.Tracer], None], spans: InMemoryExporter) -> FinishedSpan:
    """The one span `run` makes through our provider."""
    run(OTEL)
    flush()
    (span,) = spans.get_finished_spans()
    return span


@pytest.mark.parametrize(
    "unset",
    [trace.StatusCode.UNSET, trace.Status(trace.StatusCode.UNSET)],
    ids=["code", "status"],
)
def test_setting_unset_after_error_is_ignored_as_the_sdk_does(
    spans: InMemoryExporter, unset: trace.StatusCode | trace.Status
) -> None:
    """UNSET SHOULD be ignored (API spec): an instrumentation's reset must not wipe the ERROR set before."""

    def run(otel: trace.Tracer) -> None:
        span = otel.start_span("op")
        span.set_status(trace.Status(trace.StatusCode.ERROR, "bad"))
        span.set_status(unset)
        span.end()

    sdk = sdk_span(run)
    ours = _our_span(run, spans)
    assert (ours.status_code, ours.status_description) == (
        sdk.status.status_code.value,
        sdk.status.description,
    )
    assert ours.status_code == StatusCode.ERROR


@pytest.mark.parametrize("escaped", [True, False])
def test_record_exception_keeps_timestamp_and_escaped_as_the_sdk_does(
    spans: InMemoryExporter, escaped: bool
) -> None:
    """The event is at the given time and says whether the exception escaped, as the SDK's does."""

    def run(otel: trace.Tracer) -> None:
        span = otel.start_span("op")
        span.record_exception(ValueError("x"), {"extra": 1}, timestamp=1_234_567, escaped=escaped)
        span.end()

    sdk = sdk_span(run).events[0]
    ours = _our_span(run, spans).events[0]
    assert ours.timestamp == sdk.timestamp == 1_234_567
    keys = ("exception.type", "exception.message", "exception.escaped", "extra")
    assert {key: ours.attributes[key] for key in keys} == {key: sdk.attributes[key] for key in keys}


def test_record_exception_without_a_timestamp_is_stamped_now(spans: InMemoryExporter) -> None:
    """No timestamp: the event is stamped when recorded, within the span."""
    span = OTEL.start_span("op")
    span.record_exception(ValueError("x"))
    span.end()
    done = finish(spans)["op"]
    assert done.start_time <= done.events[0].timestamp <= done.end_time
    assert done.events[0].attributes["exception.escaped"] == "False"


INVALID = trace.INVALID_SPAN_CONTEXT
WITH_STATE = trace.SpanContext(0, 0, is_remote=False, trace_state=trace.TraceState([("vendor", "v")]))
VALID = trace.SpanContext(0x1, 0x2, is_remote=True, trace_flags=trace.TraceFlags(1))


@pytest.mark.parametrize("at_start", [True, False], ids=["start_span", "add_link"])
def test_links_are_kept_as_the_sdk_keeps_them(spans: InMemoryExporter, at_start: bool) -> None:
    """An invalid context with attributes or a trace state is still a link (spec: SHOULD be recorded)."""
    given = [
        (INVALID, {"reason": "no-parent"}),  # kept: says why there is no context
        (WITH_STATE, None),  # kept: carries a trace state
        (INVALID, None),  # dropped: says nothing
        (VALID, {"k": "v"}),
    ]

    def run(otel: trace.Tracer) -> None:
        if at_start:
            otel.start_span("op", links=[trace.Link(c, a) for c, a in given]).end()
        else:
            span = otel.start_span("op")
            for context, attributes in given:
                span.add_link(context, attributes)
            span.end()

    sdk = [
        (link.context.span_id, dict(link.context.trace_state), dict(link.attributes or {}))
        for link in sdk_span(run).links
    ]
    ours = [
        (link.context.span_id, dict(link.context.trace_state), dict(link.attributes))
        for link in _our_span(run, spans).links
    ]
    assert ours == sdk
    assert len(ours) == 3


@pytest.mark.parametrize("sdk_sampled", [True, False], ids=["sampled", "unsampled"])
def test_our_span_under_a_local_sdk_span_has_a_local_parent(sdk_sampled: bool) -> None:
    """Another SDK's span in this process is a local parent: not remote, and followed as our spans are.

    The sampler decides for new traces and remote parents only. Ours says the opposite of the
    SDK's here, and the local parent's decision wins: its child is recorded exactly when it is.
    """
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON

    exporter = InMemoryExporter()
    configure(sampler="always_off" if sdk_sampled else "always_on", exporters=[exporter])
    app = TracerProvider(sampler=ALWAYS_ON if sdk_sampled else ALWAYS_OFF).get_tracer("app")
    with app.start_as_current_span("sdk-span") as outer, tracer.span("ours") as ours:
        pass
    assert ours.parent_span_id == outer.get_span_context().span_id
    assert ours.parent_is_remote is False
    flush()
    assert [span.name for span in exporter.get_finished_spans()] == (["ours"] if sdk_sampled else [])


def test_an_exception_leaving_a_start_span_block_is_recorded_as_the_sdk_records_it(
    spans: InMemoryExporter,
) -> None:
    """``with tracer.start_span(...)`` (not only ``start_as_current_span``): ERROR and an
    ``exception`` event, unless `start_span` was told not to; the API's own ``__exit__`` only ended."""
    otel = NexsTracerProvider().get_tracer("lib")
    with pytest.raises(ValueError, match="boom"), otel.start_span("recorded"):
        raise ValueError("boom")
    with (
        pytest.raises(ValueError, match="quiet"),
        otel.start_span("not-recorded", record_exception=False, set_status_on_exception=False),
    ):
        raise ValueError("quiet")
    finished = finish(spans)
    recorded, quiet = finished["recorded"], finished["not-recorded"]
    assert recorded.status_code == StatusCode.ERROR
    assert [event.name for event in recorded.events] == ["exception"]
    assert recorded.events[0].attributes["exception.escaped"] == "True"
    assert (quiet.status_code, quiet.events) == (StatusCode.UNSET, ())


def test_the_provider_force_flush_exports_what_has_ended(spans: InMemoryExporter) -> None:
    """``provider.force_flush()`` (OpenTelemetry's Lambda instrumentation calls it before returning)
    exports the ended spans; the provider had none, so they waited while Lambda froze the process."""
    provider = NexsTracerProvider()
    provider.get_tracer("lib").start_span("ended").end()
    assert provider.force_flush(1000) is True
    assert [span.name for span in spans.get_finished_spans()] == ["ended"]


def test_spans_started_while_the_tracer_exports_are_not_recorded(spans: InMemoryExporter) -> None:
    """An instrumentation that ignores OpenTelemetry's suppression key, called by an exporter, records
    nothing: its span would go out with the next flush, and one more with every flush after."""
    import time

    from nexs_serverless.context import exporting

    with exporting(time.monotonic() + 1.0):
        with OTEL.start_as_current_span("exporter's own POST") as span:
            assert not span.is_recording()
        assert not OTEL.start_span("another").is_recording()
    with OTEL.start_as_current_span("user call"):
        pass
    assert list(finish(spans)) == ["user call"]
