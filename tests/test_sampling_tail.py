"""Tail sampling per invocation: rules, ratios, tenants, configuration and the flush pipeline."""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path
from typing import Any

import pytest
from support.tail_spans import FakeSpan

from nexs_serverless import ConfigError, StatusCode, flush, stats, traced_handler, tracer
from nexs_serverless.exporters import InMemoryExporter
from nexs_serverless.sampling.invocations import ORPHAN, BoundedMemory, owners
from nexs_serverless.sampling.rules import draw
from nexs_serverless.sampling.tail import TailSampler
from nexs_serverless.testing import LambdaContext, reset

_rng = random.Random(6)


def invocation(trace_id: int | None = None, **root: Any) -> list[FakeSpan]:
    """A root (with faas.trigger) and one child, in one trace."""
    trace_id = trace_id or _rng.getrandbits(128)
    attributes = {"faas.trigger": "http", **root.pop("attributes", {})}
    child_status = root.pop("child_status", StatusCode.UNSET)
    top = FakeSpan(trace_id, 1, attributes=attributes, **root)
    return [FakeSpan(trace_id, 2, parent=1, status=child_status), top]


def sampler(document: object) -> TailSampler:
    return TailSampler.from_document(document)


def kept_roots(stage: TailSampler, batch: list[FakeSpan]) -> list[FakeSpan]:
    return [span for span in stage(batch) if "faas.trigger" in span.attributes]  # type: ignore[arg-type]


def test_every_errored_invocation_is_kept_among_10000_and_the_rest_at_the_ratio(
    exporter: InMemoryExporter,
) -> None:
    """Through the real flush: all 1,000 errored invocations survive; 10% ± 1.5 points of the 9,000 others."""
    rules = {"rules": [{"when": "error"}], "ratio": 0.1}
    reset(environ={"NEXS_TAIL_SAMPLING_RULES": json.dumps(rules)}, exporters=[exporter])
    errored: set[str] = set()
    for i in range(10_000):
        with tracer.span(
            "invocation",
            parent=tracer.ROOT,
            attributes={"faas.trigger": "other", "faas.invocation_id": str(i)},
        ) as root:
            with tracer.span("work") as child:
                if i % 20 == 10:
                    child.set_status(StatusCode.ERROR)
            if i % 20 == 0:
                root.set_status(StatusCode.ERROR)
        if i % 20 in (0, 10):
            errored.add(str(i))
        if i % 50 == 49:
            flush(reason="test")
    spans = exporter.get_finished_spans()
    roots = {s.attributes["faas.invocation_id"]: s for s in spans if "faas.invocation_id" in s.attributes}
    assert errored <= roots.keys()
    assert {roots[i].attributes["sampling.rule"] for i in errored} == {"error"}
    others = [r for i, r in roots.items() if i not in errored]
    assert abs(len(others) / 9_000 - 0.1) < 0.015
    assert {(r.attributes["sampling.rule"], r.attributes["sampling.probability"]) for r in others} == {
        ("ratio", 0.1)
    }
    assert len(spans) == 2 * len(roots)  # children follow their root's decision
    counters = stats()
    assert counters["tail_invocations"] == 10_000
    assert counters["tail_kept"] == len(roots)
    assert counters["tail_rate"] == pytest.approx(len(roots) / 10_000)


@pytest.mark.parametrize(
    ("rule", "keep", "drop"),
    [
        ({"when": "duration", "above_ms": 500}, {"duration_ms": 501}, {"duration_ms": 499}),
        (
            {"when": "cold_start"},
            {"attributes": {"faas.coldstart": True}},
            {"attributes": {"faas.coldstart": False}},
        ),
        ({"when": "error", "span": "root"}, {"status": StatusCode.ERROR}, {"child_status": StatusCode.ERROR}),
        (
            {"when": "attribute", "key": "http.route", "equals": "/pay"},
            {"attributes": {"http.route": "/pay"}},
            {},
        ),
        (
            {"when": "attribute", "key": "k", "in": ["a", "b"]},
            {"attributes": {"k": "b"}},
            {"attributes": {"k": "c"}},
        ),
        (
            {"when": "attribute", "key": "k", "matches": "^admin/"},
            {"attributes": {"k": "admin/x"}},
            {"attributes": {"k": "x/admin/"}},
        ),
        ({"when": "attribute", "key": "n", "above": 3}, {"attributes": {"n": 3.5}}, {"attributes": {"n": 3}}),
        ({"when": "attribute", "key": "n", "below": 3}, {"attributes": {"n": 2}}, {"attributes": {"n": "2"}}),
        (
            {"when": "attribute", "key": "k", "exists": True},
            {"attributes": {"k": 0}},
            {"attributes": {"j": 0}},
        ),
    ],
)
def test_each_rule_keeps_what_it_matches_and_nothing_else(
    rule: dict[str, Any], keep: dict[str, Any], drop: dict[str, Any]
) -> None:
    """Duration, cold start, root error and attribute rules each keep matches and drop look-alikes."""
    stage = sampler({"rules": [rule]})
    assert [r.attributes["sampling.rule"] for r in kept_roots(stage, invocation(**keep))] == [rule["when"]]
    assert kept_roots(stage, invocation(**drop)) == []


def test_error_rule_looks_at_every_span_by_default() -> None:
    """A failed child span (a caught downstream error) is enough for the default error rule."""
    stage = sampler([{"when": "error", "name": "failures"}])
    kept = stage(invocation(child_status=StatusCode.ERROR))  # type: ignore[arg-type]
    assert len(kept) == 2
    assert kept[1].attributes["sampling.rule"] == "failures"


def test_attribute_rule_on_any_span_sees_children() -> None:
    """``"span": "any"`` matches an attribute set on a child span only."""
    rule = {"when": "attribute", "key": "db.system", "equals": "dynamodb"}
    for scope, expected in (("root", 0), ("any", 1)):
        batch = invocation()
        batch[0].attributes["db.system"] = "dynamodb"
        assert len(kept_roots(sampler([{**rule, "span": scope}]), batch)) == expected


def test_a_rule_ratio_keeps_a_fraction_and_the_rest_fall_through() -> None:
    """A rule with ratio 0.5 keeps about half its matches; the others reach the fallback ratio."""
    stage = sampler({"rules": [{"when": "cold_start", "ratio": 0.5}], "ratio": 0.0})
    kept = sum(len(kept_roots(stage, invocation(attributes={"faas.coldstart": True}))) for _ in range(2000))
    assert 850 < kept < 1150


def test_ratio_decisions_depend_only_on_the_trace_id() -> None:
    """Two samplers with the same ratio (two functions) keep exactly the same traces."""
    first, second = sampler({"ratio": 0.3}), sampler({"ratio": 0.3})
    for _ in range(500):
        trace_id = _rng.getrandbits(128)
        assert bool(kept_roots(first, invocation(trace_id))) == bool(kept_roots(second, invocation(trace_id)))


def test_tail_draw_is_independent_of_the_head_ratio_test() -> None:
    """Head ratio 0.5 (low 64 bits) and tail ratio 0.5 (mixed draw) together keep about a quarter."""
    ids = [_rng.getrandbits(128) for _ in range(20_000)]
    both = sum(1 for t in ids if (t & ((1 << 64) - 1)) < (1 << 63) and draw(t) < 0.5)
    assert abs(both / len(ids) - 0.25) < 0.02


def test_tenant_policy_overrides_the_default() -> None:
    """A root whose tenant.id has its own policy is judged by it; other tenants use the default."""
    stage = sampler({"ratio": 0.0, "tenants": {"vip": {"ratio": 1.0}}})
    assert len(kept_roots(stage, invocation(attributes={"tenant.id": "vip"}))) == 1
    assert kept_roots(stage, invocation(attributes={"tenant.id": "other"})) == []


def test_late_spans_follow_the_remembered_decision_of_their_trace() -> None:
    """A span ending after its root was flushed is dropped or kept as its trace was; a span of a
    trace not decided yet waits for it, and goes out undecided after MAX_WAIT_S seconds (in time,
    not flushes: with concurrent requests every return is a flush)."""
    now = [100.0]
    stage = TailSampler.from_document(
        {"ratio": 0.0, "rules": [{"when": "error", "span": "root"}]}, clock=lambda: now[0]
    )
    dropped, kept = invocation(), invocation(status=StatusCode.ERROR)
    assert stage(dropped) == []
    assert len(stage(kept)) == 2
    late = [FakeSpan(dropped[0].trace_id, 9, parent=2), FakeSpan(kept[0].trace_id, 9, parent=2)]
    stranger = FakeSpan(12345, 9, parent=2)
    assert stage([*late, stranger]) == [late[1]]  # type: ignore[list-item]
    for _ in range(10):  # many flushes in little time (concurrent requests): it still waits
        assert stage([]) == []
    now[0] += 30.0
    assert stage([]) == [stranger]  # type: ignore[comparison-overlap]
    assert stats()["tail_waited_out"] == 1


def test_spans_that_end_before_their_root_wait_for_its_decision() -> None:
    """Concurrent invocations: a flush at the end of one takes the other's ended, failed child
    while its root still runs. The child waits, and its error keeps its whole invocation.

    Before, the child went out alone (undecided) and its root was dropped later, its
    group no longer holding the error: a partial trace.
    """
    stage = sampler({"ratio": 0.0, "rules": [{"when": "error"}]})
    first, second = invocation(), invocation()
    root = second[1]
    failed_child = FakeSpan(root.trace_id, 7, parent=root.span_id, status=StatusCode.ERROR)
    assert stage([*first, failed_child]) == []  # type: ignore[list-item]  # first dropped; the child waits
    assert stage(second) == [failed_child, *second]  # type: ignore[comparison-overlap]
    assert root.attributes["sampling.rule"] == "error"


def test_a_trace_is_kept_whole_when_any_of_its_invocations_is() -> None:
    """Two invocations of one trace (a traced handler calling another, or a later call of a kept
    trace): the error in one keeps the other."""
    stage = sampler({"ratio": 0.0, "rules": [{"when": "error"}]})
    trace_id = 0xABC << 64 | 0x123
    http = {"faas.trigger": "http"}
    inner_root = FakeSpan(trace_id, 20, parent=11, attributes=dict(http))
    inner_child = FakeSpan(trace_id, 21, parent=20)
    outer_child = FakeSpan(trace_id, 11, parent=10, status=StatusCode.ERROR)
    outer_root = FakeSpan(trace_id, 10, parent=99, remote=True, attributes=dict(http))
    batch = [inner_root, inner_child, outer_child, outer_root]  # the inner one decided first
    assert stage(batch) == batch  # type: ignore[arg-type]
    assert inner_root.attributes["sampling.rule"] == "same_trace"
    later = [
        FakeSpan(trace_id, 30, parent=99, remote=True, attributes=dict(http)),
        FakeSpan(trace_id, 31, parent=30),
    ]
    assert stage(later) == later  # type: ignore[arg-type]
    assert later[0].attributes["sampling.rule"] == "same_trace"


def test_owners_groups_nested_spans_under_their_invocation_root() -> None:
    """Grandchildren belong to the root; a span whose parent is elsewhere is an orphan."""
    root = FakeSpan(1, 10, attributes={"faas.trigger": "http"}, parent=99, remote=True)
    child, grandchild = FakeSpan(1, 11, parent=10), FakeSpan(1, 12, parent=11)
    orphan, local_root = FakeSpan(1, 13, parent=77), FakeSpan(2, 20)
    assert owners([grandchild, child, root, orphan, local_root]) == [2, 2, 2, ORPHAN, 4]  # type: ignore[list-item]


def test_bounded_memory_forgets_the_oldest_trace() -> None:
    """Remembered decisions are capped: the oldest trace id goes first."""
    memory = BoundedMemory(2)
    for trace_id in (1, 2, 3):
        memory.put(trace_id, True)
    assert (memory.get(1), memory.get(3), len(memory)) == (None, True, 2)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("rules", "expected an object or a list"),
        ({"rules": [{"when": "errors"}]}, r"rules\[0\]\.when: 'errors' is not one of"),
        ({"rules": [{"when": "duration"}]}, r"rules\[0\]\.above_ms: required"),
        ({"rules": [{"when": "duration", "above_ms": -1}]}, r"above_ms: expected a number from 0"),
        ({"rules": [{"when": "error", "abov": 1}]}, r"unknown key\(s\) 'abov'"),
        ({"rules": [{"when": "attribute", "key": "k"}]}, "exactly one of"),
        ({"rules": [{"when": "attribute", "key": "k", "matches": "("}]}, "invalid regular expression"),
        ({"ratio": 1.5}, r"ratio: expected a number from 0 to 1"),
        ({"ratio": 0.1, "target_per_second": 5}, "give one of ratio"),
        ({"tenants": {"a": {"tenants": {}}}}, r"tenants\.a: unknown key\(s\) 'tenants'"),
        ({"rules": [{"when": "error", "ratio": True}]}, "expected a number"),
    ],
)
def test_invalid_rules_raise_config_error_naming_the_place(document: object, message: str) -> None:
    """Each mistake is a ConfigError that says where it is and what is accepted."""
    with pytest.raises(ConfigError, match=message):
        TailSampler.from_document(document)


def test_invalid_environment_rules_log_one_line_and_keep_everything(
    exporter: InMemoryExporter, caplog: pytest.LogCaptureFixture
) -> None:
    """A bad NEXS_TAIL_SAMPLING_RULES logs one warning naming it, and tail sampling is off."""
    reset(environ={"NEXS_TAIL_SAMPLING_RULES": '[{"when": "slow"}]'}, exporters=[exporter])
    with caplog.at_level(logging.WARNING, logger="nexs_serverless"):
        with tracer.span("job", parent=tracer.ROOT):
            pass
        flush()
    lines = [r.getMessage() for r in caplog.records if "NEXS_TAIL_SAMPLING_RULES" in r.getMessage()]
    assert len(lines) == 1
    assert "'slow' is not one of" in lines[0]
    assert "every invocation kept" in lines[0]
    assert [s.name for s in exporter.get_finished_spans()] == ["job"]


def test_rules_can_come_from_a_file(exporter: InMemoryExporter, tmp_path: Path) -> None:
    """NEXS_TAIL_SAMPLING_FILE points at the same JSON; the environment variable would win over it."""
    path = tmp_path / "rules.json"
    path.write_text(json.dumps({"rules": [{"when": "attribute", "key": "keep", "equals": True}]}))
    reset(environ={"NEXS_TAIL_SAMPLING_FILE": str(path)}, exporters=[exporter])
    with tracer.span("kept", parent=tracer.ROOT, attributes={"keep": True}):
        pass
    with tracer.span("dropped", parent=tracer.ROOT):
        pass
    flush()
    assert [s.name for s in exporter.get_finished_spans()] == ["kept"]


def test_unreadable_rules_file_is_reported_and_ignored(
    exporter: InMemoryExporter, caplog: pytest.LogCaptureFixture
) -> None:
    """A missing file logs one line and leaves every invocation kept."""
    reset(environ={"NEXS_TAIL_SAMPLING_FILE": "/nonexistent/rules.json"}, exporters=[exporter])
    with caplog.at_level(logging.WARNING, logger="nexs_serverless"):
        with tracer.span("job", parent=tracer.ROOT):
            pass
        flush()
    assert any("cannot read" in r.getMessage() for r in caplog.records)
    assert len(exporter.get_finished_spans()) == 1


def test_traced_handler_keeps_failed_invocations_and_drops_the_rest(exporter: InMemoryExporter) -> None:
    """End to end: with error-only rules, a failing handler's spans are exported, a successful one's not."""
    reset(environ={"NEXS_TAIL_SAMPLING_RULES": '[{"when": "error"}]'}, exporters=[exporter])

    @traced_handler
    def handler(event: dict[str, bool], context: object) -> str:
        with tracer.span("step"):
            if event["fail"]:
                raise RuntimeError("boom")
        return "ok"

    handler({"fail": False}, LambdaContext())
    with pytest.raises(RuntimeError):
        handler({"fail": True}, LambdaContext())
    spans = exporter.get_finished_spans()
    assert len(spans) == 2
    root = next(s for s in spans if "faas.trigger" in s.attributes)
    step = next(s for s in spans if s.name == "step")
    assert root.attributes["sampling.rule"] == "error"
    assert step.parent_span_id == root.span_id
    assert step.status_code == StatusCode.ERROR
    assert stats()["tail_dropped"] == 1


def test_a_traced_handler_called_from_another_is_judged_with_it(exporter: InMemoryExporter) -> None:
    """The inner call does not flush on its own: the outer one's error keeps both, and nothing is
    split. Before, the inner call's flush judged it alone (dropped), the outer's failed child went
    with that verdict, and the outer root was then dropped too: nothing was exported."""
    reset(
        environ={"NEXS_TAIL_SAMPLING_RULES": json.dumps({"rules": [{"when": "error"}], "ratio": 0.0})},
        exporters=[exporter],
    )

    @traced_handler(name="inner")
    def inner(event: object, context: object) -> str:
        return "ok"

    @traced_handler(name="outer")
    def outer(event: object, context: object) -> str:
        with tracer.span("validate") as span:
            span.set_status(StatusCode.ERROR, "invalid card")
        return inner(event, context)

    assert outer({}, LambdaContext()) == "ok"
    assert sorted(span.name for span in exporter.get_finished_spans()) == ["inner", "outer", "validate"]
    assert stats()["flushes_return"] == 1


def test_spans_waiting_for_a_decision_are_counted_when_reconfigured_away(exporter: InMemoryExporter) -> None:
    """configure() rebuilds the stages: spans the tail sampler held are counted as dropped."""
    from nexs_serverless import configure
    from nexs_serverless.runtime import runtime

    reset(
        environ={"NEXS_TAIL_SAMPLING_RULES": json.dumps({"rules": [{"when": "error"}], "ratio": 0.0})},
        exporters=[exporter],
    )
    (stage,) = [stage for stage in runtime.stages() if isinstance(stage, TailSampler)]
    stage([FakeSpan(0xABC, 7, parent=1)])  # type: ignore[list-item]  # its root still runs: it waits
    configure(exporters=[exporter])
    assert stats()["spans_dropped_reconfigure"] == 1
