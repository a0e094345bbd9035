"""Adaptive tail sampling: converges to its target under load changes, without bursts (fake clock)."""

from __future__ import annotations

import itertools
import random
import statistics

import pytest

from nexs_serverless import ConfigError, StatusCode, stats
from nexs_serverless.sampling.adaptive import AdaptiveRatio
from nexs_serverless.sampling.rules import parse
from nexs_serverless.sampling.tail import TailSampler

TARGET = 5.0
_rng = random.Random(3)


class FakeSpan:
    """The fields tail sampling reads: ids, attributes, status and times."""

    def __init__(
        self, trace_id: int, span_id: int, parent: int, attributes: dict[str, object], status: int
    ) -> None:
        self.trace_id, self.span_id, self.parent_span_id = trace_id, span_id, parent
        self.parent_is_remote = False
        self.attributes = attributes
        self.status_code = status
        self.start_ns, self.end_ns = 0, 10_000_000


def invocation(status: int) -> list[FakeSpan]:
    """A root with faas.trigger and one child, in a fresh trace."""
    trace_id = _rng.getrandbits(128)
    return [
        FakeSpan(trace_id, 2, 1, {}, StatusCode.UNSET),
        FakeSpan(trace_id, 1, 0, {"faas.trigger": "http"}, status),
    ]


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def drive(
    sampler: AdaptiveRatio, clock: FakeClock, phases: list[tuple[float, int]], seed: int = 7
) -> list[list[int]]:
    """Poisson arrivals at each phase's rate; returns kept counts per second, per phase."""
    rng = random.Random(seed)
    out = []
    for rate, seconds in phases:
        start, end = clock.now, clock.now + seconds
        kept = [0] * seconds
        while rate:
            clock.now += rng.expovariate(rate)
            if clock.now >= end:
                break
            if sampler.offer(rng.random()):
                kept[int(clock.now - start)] += 1
        clock.now = end
        out.append(kept)
    return out


def test_kept_rate_converges_to_the_target_through_a_tenfold_step_up_and_down() -> None:
    """20/s, then 200/s, then 20/s again: each phase settles within 15% of 5 kept per second."""
    clock = FakeClock()
    phases = drive(AdaptiveRatio(TARGET, clock=clock), clock, [(20, 120), (200, 120), (20, 180)])
    for kept in phases:
        assert statistics.mean(kept[-60:]) == pytest.approx(TARGET, rel=0.15)


def test_no_second_keeps_more_than_about_twice_the_target() -> None:
    """At the step up, and when load comes back after an idle spell, no second exceeds 2.5x the target."""
    clock = FakeClock()
    phases = drive(AdaptiveRatio(TARGET, clock=clock), clock, [(20, 60), (200, 30), (0, 600), (100, 30)])
    assert max(max(kept) for kept in phases) <= 2.5 * TARGET


def test_the_ratio_rises_gradually_after_load_drops() -> None:
    """After 200/s falls to 20/s, the ratio climbs back at most ~15% per window, never in a jump."""
    clock = FakeClock()
    sampler = AdaptiveRatio(TARGET, clock=clock)
    drive(sampler, clock, [(200, 60)])
    ratios = []
    for _ in range(60):
        drive(sampler, clock, [(20, 1)], seed=len(ratios))
        ratios.append(sampler.ratio)
    assert ratios[0] < 0.05
    assert ratios[-1] > 0.15
    assert all(later <= earlier * 1.15 for earlier, later in itertools.pairwise(ratios))


def test_errors_are_always_kept_even_beyond_the_target() -> None:
    """With 5 errors/s against a target of 2/s, every error is kept and the others nearly stop."""
    clock = FakeClock()
    policy, tenants = parse({"target_per_second": 2}, clock=clock)
    stage = TailSampler(policy, tenants)
    kept_errors = kept_others = 0
    for step in range(60 * 50):  # 50 invocations a second for a minute, 1 in 10 failing
        clock.now += 0.02
        failing = step % 10 == 0
        batch = invocation(status=StatusCode.ERROR if failing else StatusCode.UNSET)
        kept = stage(batch)  # type: ignore[arg-type]
        if failing:
            assert len(kept) == 2
            assert kept[1].attributes["sampling.rule"] == "error"
            kept_errors += 1
        else:
            kept_others += bool(kept)
    assert kept_errors == 300
    assert kept_others < 0.1 * 2 * 60


def test_the_ratio_and_rate_are_reported_in_stats() -> None:
    """Each window publishes the current ratio and the smoothed rate as gauges."""
    clock = FakeClock()
    sampler = AdaptiveRatio(TARGET, clock=clock)
    drive(sampler, clock, [(50, 30)])
    counters = stats()
    assert counters["sampling_adaptive_ratio"] == sampler.ratio
    assert counters["sampling_adaptive_rate_per_s"] == pytest.approx(50, rel=0.2)


def test_per_minute_targets_and_labels() -> None:
    """target_per_minute is converted to a per-second target; an adaptive policy gets an error rule."""
    policy, _ = parse({"target_per_minute": 90})
    assert policy.adaptive is not None
    assert policy.adaptive.target_per_s == 1.5
    assert [rule.name for rule in policy.rules] == ["error"]


@pytest.mark.parametrize("kwargs", [{"target_per_s": -1.0}, {"target_per_s": 1.0, "smoothing_s": 0.0}])
def test_invalid_arguments_raise_config_error(kwargs: dict[str, float]) -> None:
    """A negative target or a non-positive time constant is a ConfigError at construction."""
    with pytest.raises(ConfigError):
        AdaptiveRatio(**kwargs)


def test_each_tenant_reports_its_own_adaptive_gauges() -> None:
    """A tenant's adaptive policy publishes sampling_adaptive_<tenant>_* next to the default's."""
    clock = FakeClock()
    _, tenants = parse({"ratio": 0.0, "tenants": {"free": {"target_per_second": 1}}}, clock=clock)
    adaptive = tenants["free"].adaptive
    assert adaptive is not None
    drive(adaptive, clock, [(10, 5)])
    assert stats()["sampling_adaptive_free_ratio"] == adaptive.ratio
    assert "sampling_adaptive_ratio" not in stats()
