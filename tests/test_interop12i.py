"""Interop review: OpenTelemetry's baggage and suppression through the bridge, the provider's
exception options, the SDK adapter's force_flush, and a Powertools tracer that is off."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence

import pytest
from aws_lambda_powertools import Tracer
from aws_lambda_powertools.tracing import tracer as powertools_tracer_module
from opentelemetry import baggage as otel_baggage
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.instrumentation.utils import is_instrumentation_enabled, suppress_instrumentation
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from support.exporter_spans import make_span
from support.otel_oracle import sdk_span
from support.otlp_receiver import OTLPReceiver

from nexs_serverless import baggage, configure, traced_handler, tracer
from nexs_serverless.context import exporting, suppressed
from nexs_serverless.exporters import InMemoryExporter
from nexs_serverless.exporters.otel_sdk import OTelSDKExporter
from nexs_serverless.flushing import flush
from nexs_serverless.otel import NexsTracerProvider, bridge
from nexs_serverless.powertools import NexsProvider
from nexs_serverless.propagation import inject
from nexs_serverless.testing import LambdaContext, capture_spans, events

OTEL = NexsTracerProvider().get_tracer("acme.instrumentation", "1.0")


@pytest.fixture(autouse=True)
def bridged() -> Iterator[None]:
    """The context bridge in place for the test only (the global provider is left alone)."""
    assert bridge.install()
    yield
    bridge.uninstall()


def our_headers() -> dict[str, str]:
    """What our propagators write for the current context."""
    headers: dict[str, str] = {}
    inject(headers)
    return headers


# -- suppression ----------------------------------------------------------------------------------


def test_the_sdk_exporters_own_request_is_not_traced_by_our_http_instrumentation(
    receiver: OTLPReceiver,
) -> None:
    """An SDK span processor exports with OpenTelemetry's suppression set: our urllib3 instrumentation
    made a span of the exporter's POST (in our trace) and sent our traceparent to the collector."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    from nexs_serverless import instrumentation

    ours = InMemoryExporter()
    configure(exporters=[ours])
    assert instrumentation.instrument("urllib3") == ["urllib3"]
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=receiver.url)))
    try:
        with tracer.span("handler"), provider.get_tracer("app").start_as_current_span("sdk-span"):
            pass
    finally:
        provider.shutdown()
    flush()
    assert [span.name for span in ours.get_finished_spans()] == ["handler"]
    assert receiver.span_names() == ["sdk-span"]
    assert [request.headers.get("traceparent") for request in receiver] == [None]


def test_opentelemetry_suppression_suppresses_ours_until_detached() -> None:
    """``suppress_instrumentation()`` turns our instrumentation off for its block, and only there."""
    assert not suppressed()
    with suppress_instrumentation():
        assert suppressed()
    assert not suppressed()


def test_spans_started_by_hand_under_opentelemetry_suppression_are_recorded_as_the_sdk_records_them() -> None:
    """Suppression is for instrumentations: the SDK's tracer records a span started by hand inside
    ``suppress_instrumentation()``, and so does ours, our spans inside it staying its children."""

    def run(otel: trace.Tracer) -> None:
        with suppress_instrumentation(), otel.start_as_current_span("by hand"):
            pass

    assert sdk_span(run).name == "by hand"  # the SDK recorded it
    exporter = InMemoryExporter()
    configure(exporters=[exporter])
    with suppress_instrumentation(), OTEL.start_as_current_span("by hand") as span, tracer.span("ours"):
        assert span.is_recording()
    flush()
    finished = {span.name: span for span in exporter.get_finished_spans()}
    assert finished["ours"].parent_span_id == finished["by hand"].span_id


def test_opentelemetry_instrumentations_see_our_export_as_suppressed() -> None:
    """While we export, ``is_instrumentation_enabled()`` (what every OpenTelemetry instrumentation asks)
    is False, so our exporters' calls are not traced by them; after, it is True again."""
    with exporting(time.monotonic() + 1.0):
        assert not is_instrumentation_enabled()
    assert is_instrumentation_enabled()


def test_our_export_stays_suppressed_inside_a_context_opentelemetry_attaches() -> None:
    """Only OpenTelemetry's "suppressed" is mirrored: a context attached during our export without the
    key (an instrumentation's ``use_span``) does not turn our suppression off."""
    with exporting(time.monotonic() + 1.0):
        token = otel_context.attach(otel_context.Context())
        try:
            assert suppressed()
        finally:
            otel_context.detach(token)


# -- baggage --------------------------------------------------------------------------------------


def test_baggage_set_through_opentelemetry_goes_out_with_our_propagators() -> None:
    """``opentelemetry.baggage`` entries attached to the context are ours too, until detached."""
    with tracer.span("handler"):
        token = otel_context.attach(otel_baggage.set_baggage("tenant", "acme"))
        try:
            assert baggage.get("tenant") == "acme"
            assert our_headers()["baggage"] == "tenant=acme"
        finally:
            otel_context.detach(token)
        assert baggage.get("tenant") is None
        assert "baggage" not in our_headers()


def test_incoming_baggage_reaches_opentelemetry_as_its_own_propagator_reads_it() -> None:
    """Baggage an invocation's trigger brought in is OpenTelemetry's baggage inside the handler (the same
    value its W3C propagator extracts) and goes out with ``opentelemetry.propagate.inject``."""
    header = "tenant=acme;ttl=30,user=bob"
    expected = otel_baggage.get_all(
        W3CBaggagePropagator().extract({"baggage": header}, otel_context.Context())
    )
    seen: dict[str, object] = {}

    @traced_handler
    def handler(event: object, context: object) -> None:
        seen.update(otel_baggage.get_all())
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        seen["header"] = carrier.get("baggage")

    configure(exporters=[])
    handler(events.api_gateway_v2(headers={"baggage": header}), LambdaContext())
    header_out = seen.pop("header")
    assert seen == dict(expected)
    assert isinstance(header_out, str)
    assert header_out.startswith("tenant=acme")
    assert "user=bob" in header_out
    assert otel_baggage.get_all() == {}  # the invocation's baggage is gone with it


def test_baggage_set_with_our_api_is_opentelemetrys_and_keeps_its_properties() -> None:
    """Our entries are OpenTelemetry's baggage; a span OpenTelemetry makes current (an attach of that
    context) leaves them as they were, properties included."""
    baggage.set("tenant", "acme", metadata="ttl=30")
    try:
        assert otel_baggage.get_baggage("tenant") == "acme;ttl=30"
        with OTEL.start_as_current_span("library-call"):
            assert baggage.get("tenant") == "acme"
            assert our_headers()["baggage"] == "tenant=acme;ttl=30"
    finally:
        baggage.clear()


def test_opentelemetry_baggage_our_api_cannot_hold_stays_opentelemetrys() -> None:
    """An OpenTelemetry entry whose name is no HTTP token is left out of ours and stays in its context."""
    token = otel_context.attach(otel_baggage.set_baggage("not a token", 1))
    try:
        assert otel_baggage.get_baggage("not a token") == 1
        assert baggage.get_all() == {}
    finally:
        otel_context.detach(token)


# -- the provider's exception options ----------------------------------------------------------------


def _raise_inside_the_span_itself(otel: trace.Tracer) -> None:
    """`start_as_current_span` told not to record, with the span used as a context manager inside."""
    with pytest.raises(ValueError, match="quiet"):
        with (
            otel.start_as_current_span("op", record_exception=False, set_status_on_exception=False) as span,
            span,
        ):
            raise ValueError("quiet")


def test_start_as_current_span_hands_its_exception_options_to_the_span_as_the_sdk_does() -> None:
    """The span `start_as_current_span` makes honours `record_exception`/`set_status_on_exception` as a
    context manager too (the SDK passes them to `start_span`): no event, no ERROR."""
    sdk = sdk_span(_raise_inside_the_span_itself)
    exporter = InMemoryExporter()
    configure(exporters=[exporter])
    _raise_inside_the_span_itself(OTEL)
    flush()
    (ours,) = exporter.get_finished_spans()
    assert (ours.status_code, len(ours.events)) == (sdk.status.status_code.value, len(sdk.events)) == (0, 0)


# -- the SDK exporter adapter ------------------------------------------------------------------------


class _StuckExporter(SpanExporter):
    """An SDK exporter whose export waits until released, as on a slow back end; counts what it sent."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.sent = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.release.wait(30)
        self.sent += len(spans)
        return SpanExportResult.SUCCESS

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Nothing of its own to flush, as the SDK's OTLP exporters (the base class returns None)."""
        return True


def test_force_flush_waits_for_an_export_that_overran_and_is_false_while_it_runs() -> None:
    """At exit (`force_flush`, then the interpreter drops the worker thread) an export that overran its
    flush is waited for within the budget; it returned True at once, the batch still in flight."""
    stuck = _StuckExporter()
    adapter = OTelSDKExporter(stuck, timeout_ms=1)
    try:
        assert adapter.export([make_span()]).name == "FAILURE"  # overran: still running
        assert adapter.force_flush(10) is False
        stuck.release.set()
        assert adapter.force_flush(10_000) is True
        assert stuck.sent == 1
    finally:
        stuck.release.set()


# -- Powertools ------------------------------------------------------------------------------------


@pytest.fixture
def fresh_powertools(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Powertools' class-level Tracer config and cold-start global reset; the X-Ray SDK, which a disabled
    Tracer turns off for the process, turned back on."""
    import aws_xray_sdk

    Tracer._reset_config()
    monkeypatch.setattr(powertools_tracer_module, "is_cold_start", True)
    yield
    Tracer._reset_config()
    aws_xray_sdk.global_sdk_config.set_sdk_enabled(True)


@pytest.mark.usefixtures("fresh_powertools")
def test_a_disabled_powertools_tracer_records_nothing_through_our_provider() -> None:
    """``Tracer(disabled=True)`` (also how Powertools turns itself off outside Lambda): its decorators
    still ask the provider for subsegments, which recorded every span but the annotations."""
    tracer_ = Tracer(service="payment", provider=NexsProvider(), disabled=True)

    @tracer_.capture_method
    def charge() -> str:
        return "charged"

    @tracer_.capture_lambda_handler
    def handler(event: object, context: object) -> str:
        tracer_.put_annotation("step", "charge")
        return charge()

    with capture_spans() as spans:
        assert handler(events.api_gateway_v2(), LambdaContext()) == "charged"
        assert spans.collect() == []
