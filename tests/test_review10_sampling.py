"""Review 10, sampling and tenancy: OpenTelemetry's sampler semantics against its own SDK, bad
configuration, tail-sampling accounting and bounds, concurrency, and tenants' stamping, routing
and isolation."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from support.tail_spans import FakeSpan

from nexs_serverless import ConfigError, StatusCode, config, flush, propagation, stats, traced_handler, tracer
from nexs_serverless.context import exporting
from nexs_serverless.exporters import ExportResult, InMemoryExporter
from nexs_serverless.model import SpanContext
from nexs_serverless.runtime import runtime
from nexs_serverless.sampling import tail as tail_module
from nexs_serverless.sampling.head import TraceIdRatio, create
from nexs_serverless.sampling.invocations import owners
from nexs_serverless.sampling.tail import TailSampler, load_document
from nexs_serverless.tenancy import TenantRouter, TenantSource, TenantStamp, extract, route_exporters
from nexs_serverless.testing import LambdaContext, reset

HTTP = {"requestContext": {"http": {"method": "GET", "path": "/"}}}
LOW_64 = (1 << 64) - 1
_rng = random.Random(10)


# -- head sampling: OpenTelemetry's own SDK as the reference ----------------------------------------


def _otel_ratio_decides(ratio: float, trace_id: int) -> bool:
    from opentelemetry.sdk.trace.sampling import TraceIdRatioBased

    return TraceIdRatioBased(ratio).should_sample(None, trace_id, "x").decision.is_sampled()


@pytest.mark.parametrize("ratio", [0.0, 1e-19, 1e-12, 0.1, 0.25, 1 / 3, 0.5, 0.999999, 1.0])
def test_ratio_decisions_match_opentelemetry_python_at_the_bound_and_elsewhere(ratio: float) -> None:
    """Same decision as the SDK's TraceIdRatioBased for ids around the bound, at the extremes of
    the low 64 bits, with any high bits, and for random ids: a trace crossing our functions and
    SDK-instrumented Python services is kept or dropped as one."""
    ours = TraceIdRatio(ratio)
    bound = ours.bound
    lows = {0, 1, LOW_64, LOW_64 - 1, 1 << 63, (1 << 63) - 1}
    lows |= {low for low in (bound - 1, bound, bound + 1) if 0 <= low <= LOW_64}
    ids = [(high << 64) | low for low in lows for high in (0, 1, LOW_64)]
    ids += [_rng.getrandbits(128) for _ in range(300)]
    for trace_id in ids:
        assert ours.should_sample(trace_id, None) is _otel_ratio_decides(ratio, trace_id), hex(trace_id)


def test_a_higher_ratio_keeps_every_trace_a_lower_one_keeps() -> None:
    """The spec's second requirement: sampling at 0.3 keeps a superset of what 0.1 keeps."""
    ratios = [TraceIdRatio(r) for r in (0.0, 0.01, 0.1, 0.3, 0.9, 1.0)]
    for _ in range(2000):
        trace_id = _rng.getrandbits(128)
        decisions = [sampler.should_sample(trace_id, None) for sampler in ratios]
        assert decisions == sorted(decisions)  # False... then True...


@pytest.mark.parametrize(
    "ratio", [math.nan, -0.1, -math.inf, 1.0000001, math.inf, "0.5", "", None, True, False, [0.5]]
)
def test_a_ratio_that_is_not_a_number_in_0_1_is_a_value_error(ratio: object) -> None:
    """NaN, out-of-range numbers, strings, None and bools are refused with ValueError (a string
    used to raise TypeError from the comparison, a bool was taken as 1 or 0)."""
    with pytest.raises(ValueError, match="within"):
        TraceIdRatio(ratio)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="within"):
        create("parentbased_traceidratio", ratio)  # type: ignore[arg-type]


def test_an_integer_ratio_is_accepted_as_a_float() -> None:
    """0 and 1 as ints are the same samplers as 0.0 and 1.0."""
    assert TraceIdRatio(1).description == TraceIdRatio(1.0).description
    assert TraceIdRatio(0).bound == 0


@pytest.mark.parametrize("raw", ["nan", "-0.5", "1.5", "inf", "abc", "0x1", "50%"])
def test_a_bad_sampler_arg_warns_naming_the_variable_and_samples_everything(
    raw: str, caplog: pytest.LogCaptureFixture
) -> None:
    """OTEL_TRACES_SAMPLER_ARG that is not a number in [0, 1]: one warning naming it, and 1.0."""
    with caplog.at_level(logging.WARNING, logger="nexs_serverless"):
        settings = config.from_env({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": raw})
    assert settings.sampler_arg == 1.0
    (line,) = [r.getMessage() for r in caplog.records if "OTEL_TRACES_SAMPLER_ARG" in r.getMessage()]
    assert "using 1.0" in line


@pytest.mark.parametrize("raw", ["xray", "parentbased_jaeger_remote", "sometimes"])
def test_an_unknown_sampler_warns_and_uses_the_default(raw: str, caplog: pytest.LogCaptureFixture) -> None:
    """An unsupported OTEL_TRACES_SAMPLER value is ignored with a warning (the spec's default)."""
    with caplog.at_level(logging.WARNING, logger="nexs_serverless"):
        settings = config.from_env({"OTEL_TRACES_SAMPLER": raw})
    assert settings.sampler == "parentbased_always_on"
    assert any("OTEL_TRACES_SAMPLER" in r.getMessage() for r in caplog.records)


def _otel_sampler(name: str) -> Any:
    from opentelemetry.sdk.trace import sampling

    return {
        "always_on": sampling.ALWAYS_ON,
        "always_off": sampling.ALWAYS_OFF,
        "traceidratio": sampling.TraceIdRatioBased(0.5),
        "parentbased_always_on": sampling.ParentBased(sampling.ALWAYS_ON),
        "parentbased_always_off": sampling.ParentBased(sampling.ALWAYS_OFF),
        "parentbased_traceidratio": sampling.ParentBasedTraceIdRatio(0.5),
    }[name]


def _otel_decides(name: str, trace_id: int, parent: tuple[bool, bool] | None) -> bool:
    from opentelemetry import trace

    context = None
    if parent is not None:
        remote, sampled = parent
        parent_context = trace.SpanContext(trace_id, 0xBEEF, remote, trace.TraceFlags(1 if sampled else 0))
        context = trace.set_span_in_context(trace.NonRecordingSpan(parent_context))
    return _otel_sampler(name).should_sample(context, trace_id, "x").decision.is_sampled()


@pytest.mark.parametrize("name", config.SAMPLER_NAMES)
def test_each_sampler_decides_as_opentelemetry_for_roots_and_remote_parents(name: str) -> None:
    """For every OTEL_TRACES_SAMPLER value, the tracer's decision for a root and for remote parents
    sampled or not (ParentBased's root, remoteParentSampled and remoteParentNotSampled delegates)
    equals the SDK's; for local parents (another SDK's span through the bridge) the parent-based
    samplers follow the parent as the SDK's localParent delegates do."""
    reset(environ={"OTEL_TRACES_SAMPLER": name, "OTEL_TRACES_SAMPLER_ARG": "0.5"})
    cases: list[tuple[bool, bool] | None] = [None, (True, True), (True, False)]
    if name.startswith("parentbased_"):
        cases += [(False, True), (False, False)]
    for _ in range(40):
        trace_id = _rng.getrandbits(128) or 1
        for parent in cases:
            if parent is None:
                # a root: the trace id is the tracer's own; decide with the one it drew
                with tracer.span("root", parent=tracer.ROOT) as span:
                    expected = _otel_decides(name, span.trace_id, None)
                    assert bool(span.trace_flags & 1) is expected
                continue
            remote, sampled = parent
            context = SpanContext(trace_id, 0xBEEF, 1 if sampled else 0, (), remote)
            with tracer.span("child", parent=context) as span:
                assert bool(span.trace_flags & 1) is _otel_decides(name, trace_id, parent), (name, parent)


def test_an_unsampled_roots_descendants_and_outgoing_headers_are_unsampled(
    exporter: InMemoryExporter,
) -> None:
    """Under parentbased_traceidratio, an unsampled invocation's children and grandchildren are
    unsampled, nothing is exported, and W3C and X-Ray headers both carry the decision (00,
    Sampled=0) in the same trace."""
    reset(
        environ={
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": "0.0",
            "OTEL_PROPAGATORS": "tracecontext,xray",
        },
        exporters=[exporter],
    )
    seen: dict[str, Any] = {}

    @traced_handler
    def handler(event: object, context: object) -> str:
        with tracer.span("child") as child, tracer.span("grandchild") as grandchild:
            headers: dict[str, str] = {}
            propagation.inject(headers)
            seen.update(child=child, grandchild=grandchild, headers=headers)
        return "ok"

    handler({}, LambdaContext())
    child, grandchild, headers = seen["child"], seen["grandchild"], seen["headers"]
    assert child.trace_flags == grandchild.trace_flags == 0
    assert child.trace_id == grandchild.trace_id
    assert headers["traceparent"].endswith("-00")
    assert headers["X-Amzn-Trace-Id"].endswith("Sampled=0") or "Sampled=0;" in headers["X-Amzn-Trace-Id"]
    assert exporter.get_finished_spans() == []


@pytest.mark.parametrize(
    ("sampler", "sampled", "expected"),
    [
        ("parentbased_always_off", "1", True),
        ("parentbased_always_on", "0", False),
        ("parentbased_traceidratio", "1", True),
        ("always_on", "0", True),
        ("always_off", "1", False),
    ],
)
def test_x_ray_sampled_field_is_the_remote_parents_flag(sampler: str, sampled: str, expected: bool) -> None:
    """``Sampled=1``/``0`` of an incoming X-Ray header reaches the sampler as the remote parent's
    flag: parent-based samplers follow it, the others ignore it."""
    reset(
        environ={"OTEL_TRACES_SAMPLER": sampler, "OTEL_TRACES_SAMPLER_ARG": "0.0", "OTEL_PROPAGATORS": "xray"}
    )
    header = f"Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled={sampled}"
    parent = propagation.extract({"X-Amzn-Trace-Id": header})
    assert parent is not None
    with tracer.span("b", parent=parent) as span:
        assert bool(span.trace_flags & 1) is expected
        assert span.trace_id == 0x5759E988BD862E3FE1BE46A994272793


# -- tail sampling ----------------------------------------------------------------------------------


def test_an_invocation_kept_for_its_traces_sake_is_counted_kept_not_dropped() -> None:
    """Two invocations of one trace in a batch, the first clean and judged first, the second
    failed: both are exported, and the counters say two kept (one same_trace), none dropped.
    Before, the first was counted dropped and the kept rate read 0.5."""
    stage = TailSampler.from_document({"ratio": 0.0, "rules": [{"when": "error"}]})
    trace_id = 0xABC << 64 | 0x123
    inner_root = FakeSpan(trace_id, 20, parent=11, attributes={"faas.trigger": "http"})
    outer_child = FakeSpan(trace_id, 11, parent=10, status=StatusCode.ERROR)
    outer_root = FakeSpan(trace_id, 10, attributes={"faas.trigger": "http"})
    assert len(stage([inner_root, outer_child, outer_root])) == 3  # type: ignore[list-item]
    assert inner_root.attributes["sampling.rule"] == "same_trace"
    counters = stats()
    assert counters["tail_invocations"] == 2
    assert counters["tail_kept"] == 2
    assert counters["tail_kept_same_trace"] == 1
    assert "tail_dropped" not in counters
    assert counters["tail_rate"] == 1.0


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"rules": [{"when": "attribute", "key": "k", "above": "x"}]}, r"above: expected a number, got 'x'"),
        (
            {"rules": [{"when": "attribute", "key": "k", "below": math.nan}]},
            r"below: expected a number, got nan",
        ),
        (
            {"rules": [{"when": "duration", "above_ms": math.inf}]},
            r"above_ms: expected a number from 0 to 1e\+09",
        ),
        ({"ratio": math.nan}, r"^ratio: expected a number from 0 to 1, got nan"),
        ({"ratio": "0.5"}, r"^ratio: expected a number from 0 to 1, got '0.5'"),
        ({"target_per_minute": -1}, r"target_per_minute: expected a number from 0"),
        ({"rules": [{"when": "error", "ratio": -0.5}]}, r"rules\[0\]\.ratio"),
        ({"rules": [{"when": "error"}], "sample": 1}, r"policy: unknown key\(s\) 'sample'; accepted: "),
        ({"tenants": {"acme": {"ratio": 1.0, "rule": []}}}, r"tenants\.acme: unknown key\(s\) 'rule'"),
        ({"tenants": {"acme": {"rules": [{"when": "cold"}]}}}, r"tenants\.acme\.rules\[0\]\.when"),
        ({"tenants": ["acme"]}, r"tenants: expected an object"),
        (42, "expected an object or a list"),
    ],
)
def test_each_bad_document_names_its_place_once(document: object, message: str) -> None:
    """Errors name the place and what is accepted, without "a number a number"."""
    with pytest.raises(ConfigError, match=message) as caught:
        TailSampler.from_document(document)
    assert "a number a number" not in str(caught.value)


@pytest.mark.parametrize(
    ("variable", "raw", "expected"),
    [
        ("NEXS_TAIL_SAMPLING_RULES", '{"rules": [{"when": "error"}]', "invalid JSON"),
        ("NEXS_TAIL_SAMPLING_RULES", "{'rules': []}", "invalid JSON"),
        ("NEXS_TAIL_SAMPLING_RULES", '{"rules": [], "ratio": 0.1, "extra": true}', "unknown key(s) 'extra'"),
        ("NEXS_TAIL_SAMPLING_RULES", "[" * 100_000, "nested too deeply"),
        ("NEXS_TAIL_SAMPLING_FILE", "{not json", "invalid JSON"),
        ("NEXS_TAIL_SAMPLING_FILE", "[" * 60_000, "nested too deeply"),
    ],
    ids=lambda value: value[:24] if isinstance(value, str) else None,
)
def test_bad_tail_configuration_names_its_variable_and_keeps_everything(
    variable: str,
    raw: str,
    expected: str,
    exporter: InMemoryExporter,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Syntax errors and unknown fields, in the variable or in the file: one warning naming the
    variable, and tail sampling off (every invocation exported). Before, a file's bad JSON was
    reported as NEXS_TAIL_SAMPLING_RULES='', and JSON nested deeper than the interpreter's stack
    raised RecursionError out of the stage build: every flush lost its spans."""
    value = raw
    if variable == "NEXS_TAIL_SAMPLING_FILE":
        path = tmp_path / "rules.json"
        path.write_text(raw)
        value = str(path)
    reset(environ={variable: value}, exporters=[exporter])
    with caplog.at_level(logging.WARNING, logger="nexs_serverless"):
        with tracer.span("job", parent=tracer.ROOT):
            pass
        flush()
    (line,) = [r.getMessage() for r in caplog.records if "tail-sampling" in r.getMessage()]
    assert f"invalid {variable}=" in line
    assert expected in line
    assert "every invocation kept" in line
    assert [s.name for s in exporter.get_finished_spans()] == ["job"]


def test_a_rules_file_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    """A file saved by a Windows editor starts with a UTF-8 BOM; it is JSON all the same."""
    path = tmp_path / "rules.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({"rules": [{"when": "error"}]}).encode())
    settings = config.from_env({"NEXS_TAIL_SAMPLING_FILE": str(path)})
    assert load_document(settings) == ("NEXS_TAIL_SAMPLING_FILE", {"rules": [{"when": "error"}]})


def test_a_rules_file_over_64_kib_is_refused(tmp_path: Path) -> None:
    """The file limit: 64 KiB passes, one byte more is refused with the path in the message."""
    path = tmp_path / "rules.json"
    body = json.dumps({"rules": [{"when": "error"}]})
    path.write_text(body + " " * (64 * 1024 - len(body)))
    settings = config.from_env({"NEXS_TAIL_SAMPLING_FILE": str(path)})
    assert load_document(settings) is not None
    path.write_text(body + " " * (64 * 1024 - len(body) + 1))
    with pytest.raises(ValueError, match="larger than 65536 bytes"):
        load_document(settings)


def test_spans_waiting_for_their_root_are_bounded_oldest_out_first() -> None:
    """10,000 spans of 5,000 traces whose roots still run: at most MAX_WAITING_SPANS wait, the
    oldest traces go out undecided (counted), whole, and in arrival order."""
    now = [0.0]
    stage = TailSampler.from_document({"ratio": 0.0}, clock=lambda: now[0])
    released: list[FakeSpan] = []
    sent = []
    for trace in range(5000):
        batch = [FakeSpan(trace + 1, 2 * trace + 10, parent=1), FakeSpan(trace + 1, 2 * trace + 11, parent=1)]
        sent.extend(batch)
        released += stage(batch)  # type: ignore[arg-type]
        assert stage._waiting_spans <= tail_module.MAX_WAITING_SPANS
    assert len(released) == 10_000 - stage._waiting_spans
    assert released == sent[: len(released)]
    assert stats()["tail_waited_out"] == len(released)
    now[0] += tail_module.MAX_WAIT_S
    assert len(stage([])) == 10_000 - len(released)  # type: ignore[arg-type]
    assert stage._waiting_spans == 0


def _assert_whole_and_stamped(spans: list[Any], per_invocation: int) -> dict[int, list[Any]]:
    by_trace: dict[int, list[Any]] = defaultdict(list)
    for span in spans:
        by_trace[span.trace_id].append(span)
    assert len({span.span_id for span in spans}) == len(spans)  # nothing exported twice
    for members in by_trace.values():
        assert len(members) == per_invocation  # kept whole or dropped whole
        tenants = {span.attributes.get("tenant.id") for span in members}
        assert len(tenants) == 1
        assert None not in tenants  # every span says whose it is
    return by_trace


def test_threads_finishing_invocations_at_once_keep_traces_whole_and_stamped(
    exporter: InMemoryExporter,
) -> None:
    """8 threads, 100 invocations each, flushing at every return while the others run: each
    failed invocation is exported whole, no clean one is, and every span carries its tenant.
    Before, a span another request's flush took while its root ran got no ``tenant.id``."""
    rules = {"rules": [{"when": "error"}], "ratio": 0.0}
    reset(
        environ={"NEXS_TENANT_ID_FROM": "header:x-tenant", "NEXS_TAIL_SAMPLING_RULES": json.dumps(rules)},
        exporters=[exporter],
    )
    failed: set[str] = set()

    @traced_handler
    def handler(event: dict[str, Any], context: object) -> str:
        for step in range(3):
            with tracer.span(f"step{step}") as span:
                if event["fail"] and step == 1:
                    span.set_status(StatusCode.ERROR, "declined")
                time.sleep(random.random() / 5000)
        return "ok"

    def worker(number: int) -> None:
        rng = random.Random(number)
        for i in range(100):
            fail = rng.random() < 0.3
            if fail:
                failed.add(f"t{number}/{i}")
            event = {**HTTP, "fail": fail, "i": i, "headers": {"x-tenant": f"t{number}", "x-i": str(i)}}
            handler(event, LambdaContext())

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    flush()
    by_trace = _assert_whole_and_stamped(exporter.get_finished_spans(), 4)
    assert len(by_trace) == len(failed)
    counters = stats()
    assert counters["tail_invocations"] == 800
    assert counters["tail_kept"] == len(failed)
    assert counters["tail_dropped"] == 800 - len(failed)


def test_asyncio_tasks_finishing_together_keep_traces_whole_and_stamped(exporter: InMemoryExporter) -> None:
    """200 async invocations interleaved on one loop: same guarantees as with threads."""
    rules = {"rules": [{"when": "error"}], "ratio": 0.0}
    reset(
        environ={"NEXS_TENANT_ID_FROM": "header:x-tenant", "NEXS_TAIL_SAMPLING_RULES": json.dumps(rules)},
        exporters=[exporter],
    )

    @traced_handler
    async def handler(event: dict[str, Any], context: object) -> str:
        for step in range(3):
            with tracer.span(f"step{step}") as span:
                await asyncio.sleep(random.random() / 1000)
                if event["fail"] and step == 2:
                    span.set_status(StatusCode.ERROR)
        return "ok"

    async def main() -> None:
        await asyncio.gather(
            *(
                handler({**HTTP, "fail": i % 3 == 0, "headers": {"x-tenant": f"t{i % 7}"}}, LambdaContext())
                for i in range(200)
            )
        )

    asyncio.run(main())
    flush()
    by_trace = _assert_whole_and_stamped(exporter.get_finished_spans(), 4)
    assert len(by_trace) == len(range(0, 200, 3))


# -- tenants ----------------------------------------------------------------------------------------


def test_a_span_flushed_while_its_root_runs_is_stamped_with_the_roots_tenant() -> None:
    """Concurrent requests: another request's flush takes an ended child of a running invocation.
    The child gets its running root's tenant (through its running parents), not none."""
    exporter = InMemoryExporter()
    reset(environ={"NEXS_TENANT_ID_FROM": "header:x-tenant"}, exporters=[exporter])
    started, release = threading.Event(), threading.Event()

    @traced_handler
    def slow(event: object, context: object) -> str:
        with tracer.span("outer"):
            with tracer.span("early"):
                pass
            started.set()
            release.wait(5)
        return "ok"

    @traced_handler
    def fast(event: object, context: object) -> str:
        return "ok"

    thread = threading.Thread(target=slow, args=({**HTTP, "headers": {"x-tenant": "acme"}}, LambdaContext()))
    thread.start()
    assert started.wait(5)
    fast({**HTTP, "headers": {"x-tenant": "other"}}, LambdaContext())
    early = [s for s in exporter.get_finished_spans() if s.name == "early"]
    assert [s.attributes.get("tenant.id") for s in early] == ["acme"]  # out before its root ended
    release.set()
    thread.join()
    spans = exporter.get_finished_spans()
    assert {s.attributes.get("tenant.id") for s in spans if s.name in ("early", "outer")} == {"acme"}
    roots = sorted(s.attributes["tenant.id"] for s in spans if "faas.trigger" in s.attributes)
    assert roots == ["acme", "other"]


def test_a_routed_tenants_spans_never_reach_the_default_exporters_under_concurrency() -> None:
    """With routing and no copy to the defaults, spans flushed while their root still runs go to
    their tenant's exporter too. Before, they had no tenant yet and went to the defaults."""
    a, b, shared = InMemoryExporter(), InMemoryExporter(), InMemoryExporter()
    reset(
        environ={"NEXS_TENANT_ID_FROM": "header:x-tenant"},
        exporters=[TenantRouter({"a": a, "b": b}, [shared])],
    )

    @traced_handler
    def handler(event: object, context: object) -> str:
        for step in range(3):
            with tracer.span(f"step{step}"):
                time.sleep(random.random() / 5000)
        return "ok"

    def worker(tenant: str) -> None:
        for _ in range(60):
            handler({**HTTP, "headers": {"x-tenant": tenant}}, LambdaContext())

    threads = [threading.Thread(target=worker, args=(t,)) for t in ("a", "b", "a", "b", "c", "c")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    flush()
    assert {s.attributes.get("tenant.id") for s in a.get_finished_spans()} == {"a"}
    assert {s.attributes.get("tenant.id") for s in b.get_finished_spans()} == {"b"}
    assert {s.attributes.get("tenant.id") for s in shared.get_finished_spans()} == {"c"}
    assert (
        len(a.get_finished_spans()) == len(b.get_finished_spans()) == len(shared.get_finished_spans()) == 480
    )


def _ended_root(tenant: object) -> Any:
    with tracer.span("root", parent=tracer.ROOT, attributes={"faas.trigger": "other"}) as root:
        root.set_attribute("tenant.id", tenant)  # type: ignore[arg-type]
        with tracer.span("child"):
            pass
    return root


def test_a_tenant_past_the_flush_deadline_is_carried_over_not_lost() -> None:
    """Tenant a's slow back end uses up the flush budget: tenant b's spans wait in b's carry-over
    and go out at the next flush, as the runtime does for its own exporters. Before, b was
    skipped and its spans were lost."""

    class Slow(InMemoryExporter):
        def export(self, spans: Any) -> ExportResult:
            time.sleep(0.05)
            return super().export(spans)

    a, b = Slow(), InMemoryExporter()
    router = TenantRouter({"a": a, "b": b}, [])
    reset(exporters=[InMemoryExporter()])
    _ended_root("a")
    _ended_root("b")
    batch = runtime.buffer.take_ended()
    with exporting(time.monotonic() + 0.01):
        assert router.export(batch) is ExportResult.FAILURE
    assert b.get_finished_spans() == []
    assert stats()["export_spans_carried_over"] >= 2
    assert router.force_flush(1000)
    assert [s.attributes["tenant.id"] for s in b.get_finished_spans()] == ["b", "b"]


def test_a_non_string_tenant_set_by_the_handler_routes_its_whole_invocation() -> None:
    """A root's ``tenant.id`` set as an integer is routed by its text ("42"); its children follow
    it to the same exporter instead of going to the defaults."""
    tenant, shared = InMemoryExporter(), InMemoryExporter()
    reset(exporters=[TenantRouter({"42": tenant}, [shared])])
    _ended_root(42)
    flush()
    assert sorted(s.name for s in tenant.get_finished_spans()) == ["child", "root"]
    assert shared.get_finished_spans() == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("ácme-東京", "ácme-東京"),
        ("  padded  ", "padded"),
        ("🚀", "🚀"),
        ("x" * 128, "x" * 128),
        ("x" * 129, None),
        ("", None),
        ("zero\u200bwidth", None),
        ("bidi\u202eoverride", None),
        ("lone\ud800surrogate", None),
        ("tab\there", None),
        (10**127, str(10**127)),
        (10**128, None),
        (10**5000, None),  # str() of it would raise past Python's 4300-digit limit
        (-7, "-7"),
    ],
    ids=lambda value: repr(value)[:20] if not isinstance(value, int) or value < 10**20 else "huge",
)
def test_odd_tenant_ids_are_accepted_or_ignored_without_raising(value: object, expected: str | None) -> None:
    """Non-ASCII printable ids are kept; empty, over 128 characters, invisible format characters,
    lone surrogates (not encodable) and huge integers are ignored, never raised."""
    assert extract({"t": value}, [TenantSource("path:t")]) == expected


def test_many_distinct_tenants_use_bounded_memory() -> None:
    """20,000 tenants through the stamp stage and a router: remembered tenants stay at the bound,
    and unrouted tenants all go to the defaults."""
    stamp = TenantStamp(memory=1024, running=list)
    for number in range(20_000):
        root = FakeSpan(number + 1, 1, attributes={"faas.trigger": "http", "tenant.id": f"tenant-{number}"})
        child = FakeSpan(number + 1, 2, parent=1)
        stamp([root, child])  # type: ignore[list-item]
        assert child.attributes["tenant.id"] == f"tenant-{number}"
    assert len(stamp._memory) == 1024


def test_a_tenant_endpoint_inherits_neither_the_operators_endpoint_nor_its_headers() -> None:
    """The function's OTLP variables point at the operator's back end with its API key; a tenant
    whose env names its own endpoint gets its own endpoint (the operator's TRACES_ENDPOINT used
    to win over it) and none of the operator's headers (its key went to the tenant's back end)."""
    environ = {
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://operator.example/v1/traces",
        "OTEL_EXPORTER_OTLP_HEADERS": "x-api-key=OPERATOR_SECRET",
        "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip",
        "NEXS_TENANT_EXPORTERS": json.dumps(
            {
                "acme": {"exporter": "otlp", "env": {"OTEL_EXPORTER_OTLP_ENDPOINT": "https://acme.example"}},
                "beta": {
                    "exporter": "otlp",
                    "env": {
                        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://beta.example/t",
                        "OTEL_EXPORTER_OTLP_HEADERS": "x-beta=1",
                    },
                },
                "same": "otlp",
            }
        ),
    }
    (router,) = route_exporters([], config.from_env(environ))
    acme, beta, same = (router.routes[t][0].inner for t in ("acme", "beta", "same"))  # type: ignore[attr-defined]
    assert acme.endpoint == "https://acme.example/v1/traces"
    assert "x-api-key" not in acme._headers
    assert acme.compression == "gzip"  # what is not about the destination is still inherited
    assert beta.endpoint == "https://beta.example/t"
    assert beta._headers.get("x-beta") == "1"
    assert "x-api-key" not in beta._headers
    assert same.endpoint == "https://operator.example/v1/traces"  # no env: the function's exporter
    assert same._headers.get("x-api-key") == "OPERATOR_SECRET"


def test_a_tenant_can_have_a_list_of_exporters(
    exporter: InMemoryExporter, caplog: pytest.LogCaptureFixture
) -> None:
    """``{"acme": ["memory", "memory"]}`` builds both; one that cannot be built is reported and
    the tenant's spans still go to the other; an empty list drops them."""
    table = {"acme": ["memory", "memory"], "beta": ["no-such", "memory"], "gamma": []}
    reset(environ={"NEXS_TENANT_EXPORTERS": json.dumps(table)}, exporters=[exporter])
    with caplog.at_level(logging.WARNING, logger="nexs_serverless"):
        (router,) = runtime.exporters()
    assert isinstance(router, TenantRouter)
    assert [len(router.routes[t]) for t in ("acme", "beta", "gamma")] == [2, 1, 0]
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "no-such" in messages
    assert "gamma" in messages
    for tenant in ("acme", "beta", "gamma"):
        _ended_root(tenant)
    flush()
    for route, tenant in ((router.routes["acme"], "acme"), (router.routes["beta"], "beta")):
        for target in route:
            assert {s.attributes["tenant.id"] for s in target.inner.get_finished_spans()} == {tenant}  # type: ignore[attr-defined]
    assert exporter.get_finished_spans() == []
    assert stats()["tenant_spans_unroutable"] == 2


def test_tenant_exporters_nested_too_deeply_are_reported_not_raised(
    exporter: InMemoryExporter, caplog: pytest.LogCaptureFixture
) -> None:
    """``NEXS_TENANT_EXPORTERS`` nested deeper than the stack: one warning, spans still flow."""
    reset(environ={"NEXS_TENANT_EXPORTERS": "[" * 100_000}, exporters=[exporter])
    with caplog.at_level(logging.WARNING, logger="nexs_serverless"):
        _ended_root("acme")
        flush()
    assert any("nested too deeply" in r.getMessage() for r in caplog.records)
    assert len(exporter.get_finished_spans()) == 2
    deep_body = {"body": "[" * 100_000}
    assert extract(deep_body, [TenantSource("path:body[0]")], default="fallback") == "fallback"


def test_a_tenant_header_is_found_in_an_alb_multi_value_event() -> None:
    """An ALB with multi-value headers on sends ``multiValueHeaders`` and no ``headers``."""
    event = {"requestContext": {"elb": {}}, "multiValueHeaders": {"X-Tenant": ["acme"]}}
    assert extract(event, [TenantSource("header:x-tenant")]) == "acme"
    assert (
        extract(
            {"headers": None, "multiValueHeaders": {"x-tenant": ["b"]}}, [TenantSource("header:x-tenant")]
        )
        == "b"
    )


def test_owners_of_a_deep_chain_listed_child_first_is_linear() -> None:
    """A 12,000-deep chain in reverse start order resolves to its root (the cycle check is a set
    now: searching the path list made this about 2 s; timed by hand, not here)."""
    depth = 12_000
    spans = [FakeSpan(1, 1, attributes={"faas.trigger": "http"})] + [
        FakeSpan(1, i, parent=i - 1) for i in range(2, depth + 1)
    ]
    spans.reverse()
    result = owners(spans)  # type: ignore[arg-type]
    assert result == [depth - 1] * depth
