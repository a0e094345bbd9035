"""Powertools' `Tracer` on `NexsProvider`: its own decorators, our spans and exporters."""

from __future__ import annotations

import asyncio
import contextlib
import io
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest
from aws_lambda_powertools import Tracer
from aws_lambda_powertools.tracing import tracer as powertools_tracer_module

from nexs_serverless import SpanKind, configure, stats, traced_handler
from nexs_serverless.exporters import ConsoleExporter
from nexs_serverless.powertools import ANNOTATION_PREFIX, METADATA_PREFIX, NexsProvider, NexsSegment
from nexs_serverless.testing import LambdaContext, SpanRecorder, capture_spans, events

MODULE = __name__
LOCALS = f"{MODULE}.build_app.locals"  # Powertools drops X-Ray-invalid characters from names


@pytest.fixture(autouse=True)
def _fresh_powertools(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Powertools keeps Tracer config on the class and cold start in a module global: reset both."""
    Tracer._reset_config()
    monkeypatch.setattr(powertools_tracer_module, "is_cold_start", True)
    yield
    Tracer._reset_config()


@pytest.fixture
def spans() -> Iterator[SpanRecorder]:
    """Spans flushed to an in-memory exporter."""
    with capture_spans() as recorder:
        yield recorder


def make_tracer() -> Tracer:
    """A Powertools tracer on our provider (`disabled=False`: outside Lambda it would turn itself off)."""
    return Tracer(service="payment", provider=NexsProvider(), disabled=False)


def build_app(tracer: Tracer) -> dict[str, object]:
    """A handler using every Powertools decorator shape, built on `tracer`."""

    @tracer.capture_method
    def charge(amount: float) -> dict[str, object]:
        tracer.put_annotation("PaymentStatus", "CONFIRMED")
        tracer.put_metadata("payment", {"amount": amount, "card": "visa"})
        return {"charged": amount}

    @tracer.capture_method
    async def notify(channel: str) -> str:
        await asyncio.sleep(0)
        return f"sent via {channel}"

    @tracer.capture_method
    def line_items() -> Iterator[int]:
        yield 1
        yield 2

    @tracer.capture_method
    @contextlib.contextmanager
    def db_session() -> Iterator[str]:
        yield "session"

    @tracer.capture_method
    def refuse() -> None:
        raise ValueError("card declined")

    @tracer.capture_lambda_handler
    def handler(event: dict[str, object], context: object) -> dict[str, object]:
        assert sum(line_items()) == 3
        with db_session() as session:
            assert session == "session"
        charge(12.5)
        assert asyncio.run(notify("email")) == "sent via email"
        if event.get("refuse"):
            refuse()
        return {"statusCode": 201, "body": "ok"}

    return {"handler": handler, "charge": charge}


def test_handler_becomes_the_invocation_root(spans: SpanRecorder) -> None:
    """`capture_lambda_handler` starts the invocation: trigger name, SERVER kind, cold start, HTTP status."""
    handler = build_app(make_tracer())["handler"]
    assert handler(events.api_gateway_v2(method="POST", path="/orders"), LambdaContext()) == {
        "statusCode": 201,
        "body": "ok",
    }
    root = spans.assert_span(
        "POST /orders",
        parent=None,
        kind="server",
        attributes={
            "faas.trigger": "http",
            "faas.coldstart": True,
            "http.response.status_code": 201,
            ANNOTATION_PREFIX + "ColdStart": True,
            ANNOTATION_PREFIX + "Service": "payment",
            METADATA_PREFIX + "payment.handler response": '{"statusCode":201,"body":"ok"}',
        },
    )
    assert root.attributes["faas.invocation_id"]


def test_methods_are_children_of_the_handler(spans: SpanRecorder) -> None:
    """Sync, async, generator and context-manager methods are spans under the invocation root."""
    build_app(make_tracer())["handler"](events.api_gateway_v2(method="POST", path="/orders"), LambdaContext())
    prefix = f"## {LOCALS}."
    spans.assert_trace_shape(
        (
            "POST /orders",
            [f"{prefix}line_items", f"{prefix}db_session", f"{prefix}charge", f"{prefix}notify"],
        ),
        ordered=True,
    )
    spans.assert_span(f"{prefix}notify", parent="POST /orders", kind="internal")
    spans.assert_no_errors()


def test_annotations_and_metadata_become_attributes(spans: SpanRecorder) -> None:
    """`put_annotation` and `put_metadata` land on the current method's span under documented prefixes."""
    build_app(make_tracer())["handler"](events.api_gateway_v2(), LambdaContext())
    spans.assert_span(
        f"## {LOCALS}.charge",
        attributes={
            ANNOTATION_PREFIX + "PaymentStatus": "CONFIRMED",
            METADATA_PREFIX + "payment.payment": '{"amount":12.5,"card":"visa"}',
            METADATA_PREFIX + f"payment.{LOCALS}.charge response": '{"charged":12.5}',
        },
    )
    spans.assert_span(
        f"## {LOCALS}.notify",
        attributes={METADATA_PREFIX + f"payment.{LOCALS}.notify response": "sent via email"},
    )


def test_errors_are_recorded_and_reraised(spans: SpanRecorder) -> None:
    """A method's exception marks its span and the root ERROR, and reaches the caller unchanged."""
    handler = build_app(make_tracer())["handler"]
    with pytest.raises(ValueError, match="card declined"):
        handler(events.api_gateway_v2(overrides={"refuse": True}), LambdaContext())
    failed = spans.assert_span(
        f"## {LOCALS}.refuse",
        status="error",
        attributes={METADATA_PREFIX + f"payment.{LOCALS}.refuse error": "ValueError: card declined"},
    )
    assert [event.name for event in failed.events] == ["exception"]
    spans.assert_span("POST /orders", status="error", parent=None)


def test_warm_invocation_is_not_cold(spans: SpanRecorder) -> None:
    """Only the first handler call is a cold start, for us and for Powertools' annotation."""
    handler = build_app(make_tracer())["handler"]
    handler(events.api_gateway_v2(), LambdaContext())
    spans.clear()
    handler(events.api_gateway_v2(), LambdaContext())
    spans.assert_span(
        "POST /orders", attributes={"faas.coldstart": False, ANNOTATION_PREFIX + "ColdStart": False}
    )


def test_under_traced_handler_the_powertools_handler_is_a_child(spans: SpanRecorder) -> None:
    """With `@traced_handler` above, Powertools' `## handler` is an ordinary child span."""
    tracer = make_tracer()

    @traced_handler
    @tracer.capture_lambda_handler
    def handler(event: dict[str, object], context: object) -> str:
        tracer.put_annotation("inside", True)
        return "ok"

    handler(events.sqs(), LambdaContext())
    roots = [span for span in spans.collect() if not span.parent_span_id or span.parent_is_remote]
    assert len(roots) == 1
    spans.assert_span("## handler", parent=roots[0].name, attributes={ANNOTATION_PREFIX + "inside": True})


def test_escape_hatch_in_subsegment(spans: SpanRecorder) -> None:
    """`tracer.provider.in_subsegment` yields a segment whose span is ours."""
    tracer = make_tracer()

    @tracer.capture_lambda_handler
    def handler(event: dict[str, object], context: object) -> None:
        with tracer.provider.in_subsegment("## custom") as subsegment:
            assert isinstance(subsegment, NexsSegment)
            subsegment.put_annotation("step", 1)
            subsegment.put_metadata("raw", b"bytes")
            subsegment.put_metadata("items", [1, 2], namespace="")
            subsegment.span.add_event("checkpoint")

    handler({}, LambdaContext())
    custom = spans.assert_span(
        "## custom",
        attributes={
            ANNOTATION_PREFIX + "step": 1,
            METADATA_PREFIX + "default.raw": "bytes",
            METADATA_PREFIX + "default.items": "[1,2]",
        },
    )
    assert [event.name for event in custom.events] == ["checkpoint"]


def test_async_escape_hatch(spans: SpanRecorder) -> None:
    """`in_subsegment_async` works for concurrent tasks, each span under the caller's span."""
    tracer = make_tracer()

    async def fetch(name: str) -> str:
        async with tracer.provider.in_subsegment_async(f"## {name}"):
            await asyncio.sleep(0)
        return name

    @tracer.capture_method
    async def gather() -> list[str]:
        return list(await asyncio.gather(fetch("a"), fetch("b")))

    @tracer.capture_lambda_handler
    def handler(event: dict[str, object], context: object) -> list[str]:
        return asyncio.run(gather())

    assert handler({}, LambdaContext()) == ["a", "b"]
    spans.assert_trace_shape(
        ("test-function", [(f"## {MODULE}.test_async_escape_hatch.locals.gather", ["## a", "## b"])])
    )


def test_method_outside_a_handler_is_a_root_that_waits_for_the_next_flush(spans: SpanRecorder) -> None:
    """A captured call at init (no active span) is a root exported by the next flush; cold start stays."""
    app = build_app(make_tracer())
    app["charge"](1.0)
    assert spans.get_finished_spans() == []
    app["handler"](events.api_gateway_v2(), LambdaContext())
    names = [span.name for span in spans.get_finished_spans()]
    assert f"## {LOCALS}.charge" in names
    spans.assert_span("POST /orders", attributes={"faas.coldstart": True})


def test_annotation_without_a_span_is_ignored_and_counted(spans: SpanRecorder) -> None:
    """`put_annotation` with no active span neither raises nor records; it is counted."""
    make_tracer().put_annotation("orphan", "x")
    assert stats()["powertools_no_active_span"] == 1
    assert spans.collect() == []


def test_disabled_by_environment_records_nothing() -> None:
    """`POWERTOOLS_TRACE_DISABLED=true` turns the provider off; the handler still runs."""
    with capture_spans(environ={"POWERTOOLS_TRACE_DISABLED": "true"}) as recorder:
        handler = build_app(make_tracer())["handler"]
        assert handler(events.api_gateway_v2(), LambdaContext())["statusCode"] == 201
        assert recorder.collect() == []


def test_spans_flow_through_configured_exporters() -> None:
    """The spans reach whatever exporters are configured, e.g. the console exporter."""
    stream = io.StringIO()
    configure(exporters=[ConsoleExporter(stream=stream, color=False)], environ={})
    build_app(make_tracer())["handler"](events.api_gateway_v2(), LambdaContext())
    printed = stream.getvalue()
    assert "└── POST /orders [SERVER]" in printed
    assert f"## {LOCALS}.charge" in printed


def test_no_xray_sdk_needed() -> None:
    """Migrated code runs where aws-xray-sdk cannot be imported at all."""
    script = textwrap.dedent(
        """
        import sys
        sys.modules["aws_xray_sdk"] = None  # as if the package were uninstalled
        from aws_lambda_powertools import Tracer
        from nexs_serverless.powertools import NexsProvider
        from nexs_serverless.testing import LambdaContext, capture_spans

        tracer = Tracer(service="svc", provider=NexsProvider(), disabled=False)

        @tracer.capture_lambda_handler
        def handler(event, context):
            return "ok"

        with capture_spans() as spans:
            assert handler({}, LambdaContext()) == "ok"
            spans.assert_span("test-function", parent=None)
        print("migrated")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "migrated"


def test_segment_close_takes_seconds(spans: SpanRecorder) -> None:
    """`close(end_time)` takes X-Ray's epoch seconds."""
    provider = NexsProvider()
    scope = provider.in_subsegment("manual")
    segment = scope.__enter__()
    segment.close(end_time=segment.span.start_ns / 1e9 + 2.5)
    scope.__exit__(None, None, None)
    (span,) = spans.collect()
    assert round((span.end_ns - span.start_ns) / 1e9, 3) == 2.5


def test_patch_is_ignored() -> None:
    """X-Ray SDK patching is a no-op: nothing is monkey-patched."""
    import botocore.client

    before = botocore.client.BaseClient._make_api_call
    Tracer(
        service="svc", provider=NexsProvider(), disabled=False, auto_patch=True, patch_modules=["botocore"]
    )
    assert botocore.client.BaseClient._make_api_call is before


def test_kind_constants_are_ours() -> None:
    """Spans created through the provider default to INTERNAL, like X-Ray subsegments."""
    with capture_spans() as recorder:
        with NexsProvider().in_subsegment("x"):
            pass
        assert recorder.collect()[0].kind == SpanKind.INTERNAL


def test_long_metadata_is_cut_and_counted() -> None:
    """Metadata longer than `NEXS_CAPTURE_MAX_LENGTH` is cut, marked and counted."""
    with capture_spans(environ={"NEXS_CAPTURE_MAX_LENGTH": "16"}) as recorder:
        tracer = make_tracer()

        @tracer.capture_lambda_handler(capture_response=False)
        def handler(event: dict[str, object], context: object) -> None:
            tracer.put_metadata("blob", "x" * 100)

        handler({}, LambdaContext())
        recorder.assert_span(
            "test-function", attributes={METADATA_PREFIX + "payment.blob": "x" * 16 + "…[truncated]"}
        )
        assert stats()["captures_truncated"] == 1


def test_kill_switch_leaves_the_handler_alone() -> None:
    """With `OTEL_SDK_DISABLED=true` nothing is recorded and the handler's result is unchanged."""
    with capture_spans(environ={"OTEL_SDK_DISABLED": "true"}) as recorder:
        handler = build_app(make_tracer())["handler"]
        assert handler(events.api_gateway_v2(), LambdaContext()) == {"statusCode": 201, "body": "ok"}
        assert recorder.collect() == []
        assert stats().get("internal_errors", 0) == 0


def test_failure_to_start_the_invocation_falls_back_to_a_flushed_span(
    spans: SpanRecorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the invocation cannot start, the handler still runs and its span is flushed on return."""
    from nexs_serverless import powertools

    def broken() -> object:
        raise RuntimeError("invocation machinery unavailable")

    monkeypatch.setattr(powertools, "_invocation", broken)
    handler = build_app(make_tracer())["handler"]
    assert handler(events.api_gateway_v2(), LambdaContext())["statusCode"] == 201
    assert spans.get_finished_spans() != []  # flushed by the handler's exit, not by the assertion
    spans.assert_trace_shape(("## handler", [...]))
    assert stats()["internal_errors"] == 1


def test_segment_add_exception_and_metadata_values(spans: SpanRecorder) -> None:
    """X-Ray's `add_exception` marks the span ERROR; numbers stay numbers; unencodable values use repr."""
    circular: list[object] = []
    circular.append(circular)
    with NexsProvider().in_subsegment("## manual") as segment:
        segment.add_exception(KeyError("sku"), stack=[])
        segment.put_metadata("count", 3)
        segment.put_metadata("loop", circular)
    failed = spans.assert_span(
        "## manual",
        status="error",
        attributes={METADATA_PREFIX + "default.count": 3, METADATA_PREFIX + "default.loop": "[[...]]"},
    )
    assert failed.status_description == "KeyError: 'sku'"
    assert [event.name for event in failed.events] == ["exception"]
