"""`@traced_handler` on Lambda: root span, FaaS attributes, cold start, flush, failure isolation."""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
from typing import Any

import pytest

from nexs_serverless import StatusCode, configure, flush, stats, traced_handler, tracer
from nexs_serverless._watchdog import watchdog
from nexs_serverless.context import remaining_export_s
from nexs_serverless.exporters import ExportResult, InMemoryExporter
from nexs_serverless.handler import process
from nexs_serverless.testing import LambdaContext, events

# The shipped sample events (nexs_serverless/events/), one request of each HTTP trigger.
API_V1 = events.api_gateway_v1(method="GET", path="/orders/42", resource="/orders/{id}")
API_V2 = events.api_gateway_v2(method="POST", path="/orders")
FUNCTION_URL = events.function_url(method="PUT", path="/hook")
ALB = events.alb(method="DELETE", path="/items/9")


def _root(exporter: InMemoryExporter) -> Any:
    return next(s for s in exporter.get_finished_spans() if "faas.trigger" in s.attributes)


def _roots_of_calls(exporter: InMemoryExporter, calls: int) -> list[Any]:
    """Root attributes of `calls` invocations of a handler that does nothing: what init sets alone."""

    @traced_handler
    def handler(event: object, context: object) -> None:
        return None

    for _ in range(calls):
        handler({}, LambdaContext())
    return [span.attributes for span in exporter.get_finished_spans()]


@pytest.mark.parametrize(
    ("event", "name", "method", "route", "source"),
    [
        (API_V1, "GET /orders/{id}", "GET", "/orders/{id}", "api_gateway_v1"),
        (API_V2, "POST /orders", "POST", "/orders", "api_gateway_v2"),
        (FUNCTION_URL, "PUT", "PUT", None, "lambda_url"),
        (ALB, "DELETE", "DELETE", None, "alb"),
    ],
)
def test_http_events_make_a_server_root_span(
    exporter: InMemoryExporter, event: dict[str, Any], name: str, method: str, route: str | None, source: str
) -> None:
    """API Gateway v1/v2, Function URL and ALB events give a SERVER root with HTTP attributes."""

    @traced_handler
    def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
        return {"statusCode": 201}

    handler(event, LambdaContext())
    root = _root(exporter)
    assert root.name == name
    assert root.kind == 1  # SERVER
    assert root.attributes["faas.trigger"] == "http"
    assert root.attributes["http.request.method"] == method
    assert root.attributes.get("http.route") == route
    assert root.attributes["http.response.status_code"] == 201
    assert root.attributes["nexs.trigger.source"] == source
    assert root.status_code == StatusCode.UNSET


def test_root_span_has_faas_and_cloud_attributes(exporter: InMemoryExporter) -> None:
    """The root carries OpenTelemetry's FaaS and cloud attributes from the context and environment."""
    configure(
        exporters=[exporter],
        environ={
            "AWS_LAMBDA_FUNCTION_NAME": "orders",
            "AWS_REGION": "eu-west-1",
            "AWS_LAMBDA_FUNCTION_VERSION": "7",
            "AWS_LAMBDA_LOG_STREAM_NAME": "2026/11/28/[7]abc",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        },
    )

    @traced_handler
    def handler(event: object, context: object) -> str:
        return "ok"

    context = LambdaContext(
        function_name="orders",
        region="eu-west-1",
        account_id="111122223333",
        memory_limit_in_mb=256,
        aws_request_id="req-1",
        function_version="7",
    )
    handler({}, context)
    attrs = _root(exporter).attributes
    assert attrs["faas.invocation_id"] == "req-1"
    assert attrs["faas.name"] == "orders"
    assert attrs["faas.version"] == "7"
    assert attrs["faas.instance"].startswith("2026/11/28/")
    assert attrs["faas.max_memory"] == 256 * 1024 * 1024
    assert attrs["cloud.provider"] == "aws"
    assert attrs["cloud.platform"] == "aws_lambda"
    assert attrs["cloud.region"] == "eu-west-1"
    assert attrs["cloud.account.id"] == "111122223333"
    # the function's ARN qualified by the version that ran; the ARN as invoked is kept as well
    assert attrs["cloud.resource_id"] == "arn:aws:lambda:eu-west-1:111122223333:function:orders:7"
    assert attrs["aws.lambda.invoked_arn"] == "arn:aws:lambda:eu-west-1:111122223333:function:orders"
    assert attrs["faas.trigger"] == "other"
    resource = _root(exporter).resource.attributes
    assert resource["service.name"] == "orders"
    assert resource["cloud.region"] == "eu-west-1"


def test_an_alias_in_the_invoked_arn_gives_way_to_the_version_that_ran(exporter: InMemoryExporter) -> None:
    """Invoked through alias ``prod`` (version 7 today): cloud.resource_id names version 7, not the
    alias, as the semantic conventions ask; aws.lambda.invoked_arn keeps the ARN as invoked."""

    @traced_handler
    def handler(event: object, context: object) -> str:
        return "ok"

    context = LambdaContext(function_name="orders", function_version="7")
    context.invoked_function_arn = "arn:aws:lambda:eu-west-1:111122223333:function:orders:prod"
    handler({}, context)
    attrs = _root(exporter).attributes
    assert attrs["cloud.resource_id"] == "arn:aws:lambda:eu-west-1:111122223333:function:orders:7"
    assert attrs["aws.lambda.invoked_arn"] == "arn:aws:lambda:eu-west-1:111122223333:function:orders:prod"


def test_child_spans_are_children_of_the_invocation_root(exporter: InMemoryExporter) -> None:
    """Spans started in the handler hang under the root, and all are flushed before return."""

    @traced_handler
    def handler(event: object, context: object) -> int:
        with tracer.span("load-order", attributes={"order.id": "42"}) as span:
            span.set_attribute("order.items", 3)
        return 1

    handler({}, LambdaContext())
    spans = {s.name: s for s in exporter.get_finished_spans()}
    root = _root(exporter)
    assert spans["load-order"].parent_span_id == root.span_id
    assert spans["load-order"].attributes == {"order.id": "42", "order.items": 3}


def test_coldstart_is_true_only_on_the_first_invocation(exporter: InMemoryExporter) -> None:
    """faas.coldstart is true once per process; the wait since import is recorded then."""

    @traced_handler
    def handler(event: object, context: object) -> None:
        return None

    process.import_monotonic -= 0.5  # imported half a second ago: well under the 10 s proactive threshold
    handler({}, LambdaContext())
    handler({}, LambdaContext())
    first, second = (s for s in exporter.get_finished_spans() if "faas.trigger" in s.attributes)
    assert first.attributes["faas.coldstart"] is True
    assert first.attributes["nexs.init.type"] == "on-demand"
    assert 500 <= first.attributes["nexs.init.to_first_invocation_ms"] < 5000
    assert second.attributes["faas.coldstart"] is False
    assert "nexs.init.to_first_invocation_ms" not in second.attributes


def test_late_first_invocation_is_proactive_init_not_cold_start(exporter: InMemoryExporter) -> None:
    """A first call arriving long after init (proactive initialisation) is not a cold start."""
    configure(exporters=[exporter], environ={"NEXS_PROACTIVE_INIT_MS": "1"})
    process.import_monotonic -= 1.0  # the package was imported a second ago
    attrs = _roots_of_calls(exporter, 1)[0]
    assert attrs["faas.coldstart"] is False
    assert attrs["nexs.init.type"] == "proactive"


def test_provisioned_concurrency_is_not_a_cold_start(exporter: InMemoryExporter) -> None:
    """AWS_LAMBDA_INITIALIZATION_TYPE=provisioned-concurrency marks the first call accordingly."""
    configure(exporters=[exporter], environ={"AWS_LAMBDA_INITIALIZATION_TYPE": "provisioned-concurrency"})
    attrs = _roots_of_calls(exporter, 1)[0]
    assert attrs["faas.coldstart"] is False
    assert attrs["nexs.init.type"] == "provisioned-concurrency"


def test_the_first_call_after_a_snapstart_restore_is_a_cold_start(exporter: InMemoryExporter) -> None:
    """AWS_LAMBDA_INITIALIZATION_TYPE=snap-start: the snapshot's init was long ago, yet the first
    call of the restored environment is its cold start (it was labelled proactive before)."""
    configure(exporters=[exporter], environ={"AWS_LAMBDA_INITIALIZATION_TYPE": "snap-start"})
    process.import_monotonic -= 3600.0  # the snapshot was taken an hour before the restore
    first, second = _roots_of_calls(exporter, 2)
    assert (first["faas.coldstart"], first["nexs.init.type"]) == (True, "snap-start")
    assert second["faas.coldstart"] is False


def test_callable_objects_and_partials_get_a_root_span_named_after_them(exporter: InMemoryExporter) -> None:
    """Outside Lambda (no function name), a handler without ``__qualname__`` still gets its root span.

    Before, building the span name raised inside the tracer: the call ran untraced.
    """
    import functools

    class Handler:
        def __call__(self, event: object, context: object) -> str:
            return "ok"

    def handle(prefix: str, event: object, context: object) -> str:
        return prefix

    configure(exporters=[exporter], environ={})
    assert traced_handler(Handler())({}, object()) == "ok"
    assert traced_handler(functools.partial(handle, "p"))({}, object()) == "p"
    names = [span.name for span in exporter.get_finished_spans()]
    assert names[0].endswith("Handler")
    assert names[1].endswith("handle")
    assert "internal_errors" not in stats()


def test_return_value_passes_through_unchanged(exporter: InMemoryExporter) -> None:
    """The handler's return value is the very object the handler returned."""
    sentinel = {"statusCode": 200, "body": object()}

    @traced_handler
    def handler(event: object, context: object) -> dict[str, object]:
        return sentinel

    assert handler(API_V1, LambdaContext()) is sentinel


def test_exception_is_recorded_and_reraised_unchanged(exporter: InMemoryExporter) -> None:
    """The same exception object reaches the caller; the root has the event and status ERROR."""
    error = RuntimeError("payment failed")

    @traced_handler
    def handler(event: object, context: object) -> None:
        raise error

    with pytest.raises(RuntimeError) as info:
        handler({}, LambdaContext())
    assert info.value is error
    assert info.value.__traceback__ is not None
    root = _root(exporter)
    assert root.status_code == StatusCode.ERROR
    assert root.status_description == "RuntimeError: payment failed"
    assert root.events[0].attributes["exception.type"] == "RuntimeError"


def test_5xx_response_sets_error_status(exporter: InMemoryExporter) -> None:
    """For HTTP triggers a 5xx statusCode marks the root span as an error."""

    @traced_handler
    def handler(event: object, context: object) -> dict[str, int]:
        return {"statusCode": 503}

    handler(API_V2, LambdaContext())
    root = _root(exporter)
    assert root.status_code == StatusCode.ERROR
    assert root.attributes["http.response.status_code"] == 503


def test_decorator_options_name_and_capture(exporter: InMemoryExporter) -> None:
    """name, capture_event and capture_response options shape the root span."""

    @traced_handler(name="custom", capture_event=True, capture_response=True)
    def handler(event: object, context: object) -> dict[str, str]:
        return {"answer": "42"}

    handler({"q": "life"}, LambdaContext())
    root = _root(exporter)
    assert root.name == "custom"
    assert root.attributes["nexs.event"] == '{"q":"life"}'
    assert root.attributes["nexs.response"] == '{"answer":"42"}'


def test_captured_values_are_truncated(exporter: InMemoryExporter) -> None:
    """Captured events longer than NEXS_CAPTURE_MAX_LENGTH are truncated and counted."""
    configure(exporters=[exporter], environ={"NEXS_CAPTURE_EVENT": "true", "NEXS_CAPTURE_MAX_LENGTH": "16"})

    @traced_handler
    def handler(event: object, context: object) -> None:
        return None

    handler({"payload": "x" * 100}, LambdaContext())
    captured = _root(exporter).attributes["nexs.event"]
    assert captured.startswith('{"payload":"xxxx')
    assert captured.endswith("[truncated]")
    assert stats()["captures_truncated"] == 1


def test_invalid_decorator_options_fail_at_decoration() -> None:
    """A bad option raises ValueError when decorating, not during an invocation."""
    with pytest.raises(ValueError, match="flush_timeout_ms"):
        traced_handler(flush_timeout_ms=0)
    with pytest.raises(ValueError, match="name"):
        traced_handler(name="")


def test_double_wrapping_is_a_no_op() -> None:
    """Decorating an already traced handler returns it unchanged."""

    @traced_handler
    def handler(event: object, context: object) -> None:
        return None

    assert traced_handler(handler) is handler


def test_kill_switch_returns_the_function_unchanged() -> None:
    """With OTEL_SDK_DISABLED=true the decorator is a pass-through costing nothing."""
    configure(environ={"OTEL_SDK_DISABLED": "true"})

    def handler(event: object, context: object) -> int:
        return 1

    assert traced_handler(handler) is handler
    with tracer.span("ignored") as span:
        assert not span.is_recording()


class _RaisingExporter:
    def __init__(self) -> None:
        self.calls = 0

    def export(self, spans: object) -> ExportResult:
        self.calls += 1
        raise ConnectionError("back end down")

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True

    def shutdown(self) -> None:
        return None


def test_exporter_that_raises_never_reaches_the_handler(caplog: pytest.LogCaptureFixture) -> None:
    """A failing exporter is swallowed, counted and logged once, across invocations."""
    failing = _RaisingExporter()
    memory = InMemoryExporter()
    configure(exporters=[failing, memory])

    @traced_handler
    def handler(event: object, context: object) -> str:
        return "fine"

    with caplog.at_level(logging.WARNING, logger="nexs_serverless"):
        assert handler({}, LambdaContext()) == "fine"
        assert handler({}, LambdaContext()) == "fine"
    assert failing.calls == 2
    assert len(memory.get_finished_spans()) == 2  # the other exporter still got its spans
    assert stats()["internal_errors"] == 2
    assert len([r for r in caplog.records if "back end down" in r.getMessage()]) == 1


class _HostileContext:
    """A context object whose attributes explode when read."""

    @property
    def aws_request_id(self) -> str:
        raise RuntimeError("context exploded")

    def get_remaining_time_in_millis(self) -> int:
        raise RuntimeError("clock exploded")


def test_tracer_failure_at_start_does_not_break_the_handler(exporter: InMemoryExporter) -> None:
    """If reading the context fails, the handler still runs and returns its value untraced."""

    @traced_handler
    def handler(event: object, context: object) -> str:
        with tracer.span("inside"):
            return "still works"

    assert handler({}, _HostileContext()) == "still works"
    assert stats()["internal_errors"] == 1


def test_async_handlers_are_traced(exporter: InMemoryExporter) -> None:
    """An `async def` handler gets a root span and its awaited children."""

    @traced_handler
    async def handler(event: object, context: object) -> int:
        with tracer.span("awaited"):
            await asyncio.sleep(0)
        return 7

    assert asyncio.run(handler({}, LambdaContext())) == 7
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert spans["awaited"].parent_span_id == _root(exporter).span_id


def test_partials_and_objects_with_async_call_are_traced_as_async(exporter: InMemoryExporter) -> None:
    """A `functools.partial` of a coroutine function, or an object with ``async def __call__``,
    gets its root span around the awaited work, not around the creation of the coroutine."""
    import functools

    async def handle(prefix: str, event: object, context: object) -> str:
        with tracer.span("awaited"):
            await asyncio.sleep(0)
        return prefix

    class Handler:
        async def __call__(self, event: object, context: object) -> str:
            return await handle("object", event, context)

    for fn, name in ((functools.partial(handle, "partial"), "partial"), (Handler(), "object")):
        exporter.clear()
        traced = traced_handler(name="root")(fn)
        assert asyncio.run(traced({}, LambdaContext())) == name
        spans = {s.name: s for s in exporter.get_finished_spans()}
        assert spans["awaited"].parent_span_id == spans["root"].span_id
        assert spans["root"].end_time >= spans["awaited"].end_time


class _SlowExporter:
    """On its first export, blocks for as long as the flush deadline allows; then it is fast."""

    def __init__(self) -> None:
        self.allowed_s: list[float] = []

    def export(self, spans: object) -> ExportResult:
        allowed = remaining_export_s(60.0)
        self.allowed_s.append(allowed)
        if len(self.allowed_s) == 1:
            threading.Event().wait(allowed)
        return ExportResult.SUCCESS

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True

    def shutdown(self) -> None:
        return None


def test_flush_budget_is_capped_by_the_remaining_time() -> None:
    """The flush gets min(flush timeout, remaining time - margin); what has no time left is carried over."""
    slow = _SlowExporter()
    after = InMemoryExporter()

    @traced_handler
    def handler(event: object, context: object) -> str:
        return "done"

    handler({}, LambdaContext())  # load the per-invocation modules outside the measured call
    configure(exporters=[slow, after], flush_timeout_ms=5000)
    # 550 ms left in the invocation, 50 ms safety margin: the flush may take 500 ms at most. The
    # lower bound leaves 200 ms for the call itself before the flush (a pause on a loaded machine):
    # it catches a budget cut to a fraction, not a few ms of arithmetic.
    assert handler({}, LambdaContext(timeout_ms=550)) == "done"
    assert slow.allowed_s
    assert 0.3 <= slow.allowed_s[0] <= 0.5
    assert after.get_finished_spans() == []  # no time left for it: carried over, not lost
    assert stats()["export_spans_carried_over"] == 1
    assert handler({}, LambdaContext(timeout_ms=60_000)) == "done"
    assert len(after.get_finished_spans()) == 2


def test_flush_timeout_option_caps_the_budget() -> None:
    """`flush_timeout_ms` on the decorator bounds the flush when the invocation has more time."""
    slow = _SlowExporter()

    @traced_handler(flush_timeout_ms=300)
    def handler(event: object, context: object) -> None:
        return None

    handler({}, LambdaContext(timeout_ms=60_000))  # warm-up: load the per-invocation modules
    configure(exporters=[slow])
    handler({}, LambdaContext(timeout_ms=60_000))
    # the 300 ms option, not the 1 s default nor a fraction of it (200 ms left for a pause before the flush)
    assert 0.1 <= slow.allowed_s[0] <= 0.3


class _SignallingExporter(InMemoryExporter):
    def __init__(self) -> None:
        super().__init__()
        self.received = threading.Event()

    def export(self, spans: Any) -> ExportResult:
        result = super().export(spans)
        self.received.set()
        return result


def test_timeout_guard_flushes_before_the_deadline() -> None:
    """Near the deadline, open spans are ended, marked and flushed while the handler still runs."""
    exporter = _SignallingExporter()
    configure(exporters=[exporter], timeout_guard_ms=250)
    flushed_while_running: list[bool] = []

    @traced_handler
    def handler(event: object, context: object) -> str:
        with tracer.span("slow-query"):
            # Stand-in for work that outlives the invocation: wait until the guard has flushed.
            flushed_while_running.append(exporter.received.wait(5.0))
        return "late"

    assert handler({}, LambdaContext(timeout_ms=300)) == "late"
    assert flushed_while_running == [True]
    spans = {s.name: s for s in exporter.get_finished_spans()}
    query, root = spans["slow-query"], _root(exporter)
    assert query.attributes["nexs.force_ended"] is True
    assert query.force_ended
    assert root.attributes["nexs.timed_out"] is True
    assert root.status_code == StatusCode.ERROR
    assert "timed out" in (root.status_description or "")
    assert stats()["timeout_guard_fired"] == 1
    assert len([s for s in exporter.get_finished_spans() if s.name == "slow-query"]) == 1


def test_the_timeout_guard_ends_only_its_own_invocations_spans() -> None:
    """A request served concurrently (Cloud Run, Azure) keeps its running spans when another
    request's guard fires; before, the guard ended every running span of the process."""
    exporter = _SignallingExporter()
    configure(exporters=[exporter], timeout_guard_ms=250)
    other_started = threading.Event()
    release_other = threading.Event()

    def other_request() -> None:
        with tracer.span("other-request", parent=tracer.ROOT):
            other_started.set()
            release_other.wait(5.0)

    other = threading.Thread(target=other_request)
    other.start()
    assert other_started.wait(5.0)

    @traced_handler
    def handler(event: object, context: object) -> str:
        with tracer.span("slow-query"):
            exporter.received.wait(5.0)  # until the guard has flushed
        return "late"

    try:
        assert handler({}, LambdaContext(timeout_ms=300)) == "late"
    finally:
        release_other.set()
        other.join(5.0)
    flush()
    spans = {span.name: span for span in exporter.get_finished_spans()}
    assert spans["slow-query"].attributes["nexs.force_ended"] is True
    assert "nexs.force_ended" not in spans["other-request"].attributes
    assert not spans["other-request"].force_ended


def test_timeout_guard_does_not_fire_for_fast_invocations(exporter: InMemoryExporter) -> None:
    """A handler that returns in time disarms the guard; nothing is marked."""
    configure(exporters=[exporter], timeout_guard_ms=250)

    @traced_handler
    def handler(event: object, context: object) -> int:
        return 1

    for _ in range(3):
        handler({}, LambdaContext(timeout_ms=2000))
    # Each guard would fire ~1.75 s after its call: returning must have cancelled it, not left it pending.
    assert watchdog.pending() == 0
    assert "timeout_guard_fired" not in stats()
    assert all("nexs.timed_out" not in s.attributes for s in exporter.get_finished_spans())


def test_failure_after_the_root_started_leaves_no_current_span(
    exporter: InMemoryExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If arming the timeout guard fails, the handler runs untraced and no span stays current."""
    from nexs_serverless import current_span
    from nexs_serverless._watchdog import watchdog

    def broken_arm(due: float, callback: object) -> int:
        raise RuntimeError("timer thread could not start")

    configure(exporters=[exporter], timeout_guard_ms=250)
    monkeypatch.setattr(watchdog, "arm", broken_arm)  # failure injection: the guard's timer breaks
    seen: list[object] = []

    @traced_handler
    def handler(event: object, context: object) -> str:
        seen.append(current_span())
        return "ok"

    assert handler({}, LambdaContext()) == "ok"
    assert seen == [None]
    assert current_span() is None
    assert stats()["internal_errors"] == 1


def test_a_nested_traced_call_keeps_the_outer_timeout_guard(exporter: InMemoryExporter) -> None:
    """The timeout guard of the outer invocation still fires after a nested traced call returned.

    The watchdog held one callback: the inner call's `arm` replaced the outer's and its
    `disarm` then cancelled it, so the outer invocation ran past its deadline unguarded.
    """
    configure(exporters=[exporter], timeout_guard_ms=250)

    @traced_handler(name="inner")
    def inner(event: object, context: object) -> str:
        return "inner"

    @traced_handler(name="outer")
    def outer(event: object, context: object) -> bool:
        inner(event, context)
        with tracer.span("slow"):
            waited_until = time.monotonic() + 5.0  # the guard is due ~0.05 s in
            while "timeout_guard_fired" not in stats() and time.monotonic() < waited_until:
                time.sleep(0.01)
            return "timeout_guard_fired" in stats()

    assert outer({}, LambdaContext(timeout_ms=300)) is True
    assert stats()["timeout_guard_fired"] == 1
    assert watchdog.pending() == 0


def test_baggage_set_by_a_handler_does_not_reach_the_next_invocation(exporter: InMemoryExporter) -> None:
    """What a handler puts in the baggage is gone when it returns, whether or not its trigger carried any."""
    from nexs_serverless import baggage

    configure(exporters=[exporter])
    seen: list[dict[str, str]] = []

    @traced_handler
    def handler(event: dict[str, str], context: object) -> str:
        seen.append(baggage.get_all())
        if "tenant" in event:
            baggage.set("tenant.id", event["tenant"])
        return "ok"

    handler({"tenant": "acme"}, LambdaContext())
    handler({}, LambdaContext())
    assert seen == [{}, {}]
    assert baggage.get_all() == {}


def test_a_failed_begin_leaves_no_incoming_baggage_behind(
    exporter: InMemoryExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When setup fails after the trigger's baggage was adopted, the baggage is put back too."""
    from nexs_serverless import baggage

    def broken_arm(due: float, callback: object) -> int:
        raise RuntimeError("timer thread could not start")

    configure(exporters=[exporter], timeout_guard_ms=250)
    monkeypatch.setattr(watchdog, "arm", broken_arm)  # failure injection, after the trigger's enter
    seen: list[dict[str, str]] = []

    @traced_handler
    def handler(event: object, context: object) -> str:
        seen.append(baggage.get_all())
        return "ok"

    carrying = {**API_V1, "headers": {**API_V1["headers"], "baggage": "tenant.id=acme"}}  # type: ignore[dict-item]
    assert handler(carrying, LambdaContext()) == "ok"
    assert handler({}, LambdaContext()) == "ok"
    assert seen == [{}, {}]
    assert baggage.get_all() == {}


def test_spans_never_ended_cannot_crowd_out_later_invocations(exporter: InMemoryExporter) -> None:
    """Running spans keep at most half the buffer; past that the oldest are ended, marked and exported."""
    configure(exporters=[exporter], max_buffered_spans=50)

    @traced_handler
    def handler(event: dict[str, bool], context: object) -> str:
        if event.get("leak"):
            tracer.start_span("never-ended")  # as when an exception skips `end`
        else:
            for index in range(3):
                with tracer.span(f"child-{index}"):
                    pass
        return "ok"

    for _ in range(50):
        handler({"leak": True}, LambdaContext())
    exported = len(exporter.get_finished_spans())
    for _ in range(5):
        handler({}, LambdaContext())
    assert len(exporter.get_finished_spans()) - exported == 5 * 4  # every root and child
    assert "spans_dropped_buffer_full" not in stats()
    abandoned = [s for s in exporter.get_finished_spans() if s.name == "never-ended"]
    assert len(abandoned) == stats()["spans_force_ended_abandoned"] == 50 - 25
    assert all(s.attributes["nexs.force_ended"] is True for s in abandoned)


def test_baggage_set_under_a_carried_context_does_not_reach_the_next_request(
    exporter: InMemoryExporter,
) -> None:
    """A request carrying a traceparent but no baggage: what its handler sets is gone afterwards.

    Before, adopting the carried context skipped the baggage snapshot, and one request's
    baggage reached the next request served by the same thread (and its outgoing calls).
    """
    from nexs_serverless import baggage

    configure(exporters=[exporter])
    seen: list[dict[str, str]] = []

    @traced_handler
    def handler(event: dict[str, Any], context: object) -> str:
        seen.append(baggage.get_all())
        baggage.set("user", event["headers"]["x-user"])
        return "ok"

    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    for user in ("alice", "bob"):
        event = {**API_V1, "headers": {**API_V1["headers"], "traceparent": traceparent, "x-user": user}}
        handler(event, LambdaContext())
    assert seen == [{}, {}]
    assert baggage.get_all() == {}


def test_counters_add_up_under_threads() -> None:
    """Drops counted from many threads at once are all counted (a read-add-write lost some)."""
    from nexs_serverless import _stats

    def bump() -> None:
        for _ in range(20_000):
            _stats.incr("test_threads_counted")

    threads = [threading.Thread(target=bump) for _ in range(8)]
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(previous)
    assert stats()["test_threads_counted"] == 8 * 20_000


def test_running_spans_of_requests_in_flight_are_never_force_ended(exporter: InMemoryExporter) -> None:
    """Past half the buffer, only running spans no running invocation owns are ended: many
    concurrent requests (Cloud Run, Azure) keep theirs, whatever another request's flush finds."""

    async def serve(count: int) -> None:
        gate = asyncio.Event()

        @traced_handler
        async def handler(event: object, context: object) -> str:
            with tracer.span("work"):
                await gate.wait()
            return "ok"

        requests = [asyncio.ensure_future(handler({}, LambdaContext())) for _ in range(count)]
        await asyncio.sleep(0.05)  # every request started and waits, its two spans running
        flush()  # another request's flush, with the running spans past half the buffer
        gate.set()
        await asyncio.gather(*requests)

    configure(exporters=[exporter], max_buffered_spans=40)
    asyncio.run(serve(15))
    flush()
    spans = exporter.get_finished_spans()
    assert len(spans) == 30
    assert not any(span.force_ended for span in spans)
    assert "spans_force_ended_abandoned" not in stats()


def test_warm_invocations_reuse_their_root_records(exporter: InMemoryExporter) -> None:
    """The root's record goes back to the pool at the end of each invocation (before, the invocation
    still held it during the flush, so every warm invocation allocated a new root)."""
    configure(exporters=[exporter])

    @traced_handler
    def handler(event: object, context: object) -> str:
        return "ok"

    from nexs_serverless.runtime import runtime

    handler({}, LambdaContext())  # warm-up
    misses, recycled = runtime.pool.misses, runtime.pool.recycled
    for _ in range(200):
        handler({}, LambdaContext())
    assert runtime.pool.misses - misses <= 1
    assert runtime.pool.recycled - recycled >= 190


def test_a_decorated_method_reads_the_event_and_context_after_self(exporter: InMemoryExporter) -> None:
    """``def handle(self, event, context)``: the same root as for a function (it took `self` for the
    event: trigger `other`, no FaaS attributes, the caller's context lost)."""

    class Handler:
        @traced_handler
        def handle(self, event: object, context: object) -> str:
            return "ok"

    assert Handler().handle(API_V1, LambdaContext(aws_request_id="req-1")) == "ok"
    attributes = _root(exporter).attributes
    assert (attributes["faas.trigger"], attributes["faas.invocation_id"]) == ("http", "req-1")


@pytest.mark.parametrize("option", ["capture_event", "capture_response"])
def test_capture_options_must_be_booleans(option: str) -> None:
    """``capture_event="false"`` is a truthy string: refused at decoration, never capturing."""
    with pytest.raises(ValueError, match=option):
        traced_handler(**{option: "false"})  # type: ignore[call-overload]


def test_static_and_class_methods_are_decorated_as_such(exporter: InMemoryExporter) -> None:
    """``@traced_handler`` above ``@staticmethod`` keeps a staticmethod (it became a plain function
    that bound `self`), and an async one is traced as async (its root ended before it ran)."""

    class Service:
        @traced_handler
        @staticmethod
        def handle(event: object, context: object) -> str:
            return "sync"

        @traced_handler
        @staticmethod
        async def handle_async(event: object, context: object) -> str:
            await asyncio.sleep(0.01)
            return "async"

    assert Service().handle({}, LambdaContext()) == "sync"
    assert asyncio.run(Service.handle_async({}, LambdaContext())) == "async"
    slow = exporter.get_finished_spans()[-1]
    assert (slow.end_ns - slow.start_ns) >= 5_000_000  # the root covered the awaited 10 ms
