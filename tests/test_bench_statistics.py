"""The statistics the cold-start benchmark reports its verdict with."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))

from bench_lambda_coldstart import median_interval, summarise, verdict


def test_the_median_interval_is_the_binomial_order_statistics() -> None:
    """For 41 samples the ~95% interval runs from the 14th to the 28th smallest."""
    samples = [float(value) for value in range(1, 42)]
    assert median_interval(samples) == (14.0, 28.0)


def test_few_samples_give_the_whole_range() -> None:
    """Below what the approximation can bound, the interval is everything observed."""
    assert median_interval([3.0, 5.0, 9.0]) == (3.0, 9.0)


def test_summarise_pairs_each_round_with_the_baseline_of_that_round() -> None:
    """Per-round differences cancel a drift that moves every variant of a round alike."""
    none = [100.0, 200.0, 300.0, 400.0, 500.0, 600.0, 700.0]
    ours = [value + 5.0 for value in none]
    canaries = [18.0] * len(none)
    report = summarise(
        {"none": none, "nexs": ours}, {"none": none, "nexs": ours}, {"none": canaries, "nexs": canaries}
    )
    assert report["nexs"]["paired_overhead_ms"] == 5.0
    assert report["nexs"]["paired_overhead_low_ms"] == report["nexs"]["paired_overhead_high_ms"] == 5.0
    assert report["none"]["paired_overhead_ms"] == 0.0


def test_summarise_compares_the_quiet_cold_starts_of_each_variant() -> None:
    """Contended cold starts (slow canary) are left out of the quiet medians, one line for all."""
    none = [600.0, 900.0, 610.0, 950.0]
    ours = [615.0, 700.0, 990.0, 628.0]
    report = summarise(
        {"none": none, "nexs": ours},
        {"none": none, "nexs": ours},
        {"none": [18.0, 30.0, 19.0, 31.0], "nexs": [18.5, 18.0, 29.0, 19.0]},
    )
    assert report["none"]["quiet_median_ms"] == 605.0
    assert report["nexs"]["quiet_median_ms"] == 628.0
    assert report["nexs"]["quiet_overhead_ms"] == 23.0
    assert (report["none"]["quiet_runs"], report["nexs"]["quiet_runs"]) == (2.0, 3.0)


def test_quiet_samples_are_those_whose_canary_ran_near_the_fastest() -> None:
    """The line is `QUIET_MARGIN` over the fastest canary; the split reports both medians."""
    from machine_speed import QUIET_MARGIN, quiet_cut, split

    samples = [(18.0, 4.0), (19.0, 4.2), (30.0, 7.0), (31.0, 7.4), (29.0, 7.2)]
    assert quiet_cut([canary for canary, _ in samples]) == 18.0 * QUIET_MARGIN
    parts = split(samples)
    assert parts["median"] == 7.0
    assert parts["quiet_median"] == 4.1
    assert (parts["quiet_samples"], parts["samples"]) == (2.0, 5.0)
    assert parts["contended_canary_ns"] == 30.0


def test_a_run_that_never_ran_quiet_says_so_rather_than_guessing() -> None:
    """With a line below every canary, the quiet median is NaN, not the overall one."""
    from machine_speed import split

    parts = split([(30.0, 7.0), (31.0, 7.5)], cut=20.0)
    assert parts["quiet_median"] != parts["quiet_median"]
    assert parts["quiet_samples"] == 0.0


def test_sampling_stops_once_every_variant_has_enough_quiet_samples() -> None:
    """Rounds interleave the variants and drop the warm-up; the wanted count bounds the run."""
    from machine_speed import sample

    calls: list[str] = []

    def variant(label: str) -> Callable[[], float]:
        def run() -> float:
            calls.append(label)
            return 1.0

        return run

    rows = sample({"a": variant("a"), "b": variant("b")}, wanted=4, max_seconds=30.0, warmup_rounds=2)
    assert calls[:4] == ["a", "b", "a", "b"]
    assert all(len(samples) >= 4 for samples in rows.values())
    assert len(calls) == 2 * (2 + len(rows["a"]))
    assert all(value == 1.0 for samples in rows.values() for _, value in samples)


def test_variants_that_time_their_own_canary_are_split_by_it() -> None:
    """Worker-process variants report (canary, value): contended rounds do not count as quiet."""
    from machine_speed import sample_measured, split

    canaries = iter([30.0, 18.0, 31.0, 19.0] * 50)

    def run() -> tuple[float, float]:
        canary = next(canaries)
        return canary, canary / 10  # a sample as slow as the machine was

    rows = sample_measured({"worker": run}, wanted=3, max_seconds=30.0, warmup_rounds=1)
    parts = split(rows["worker"])
    # after the warm-up round (30): 18, 31, 19, 30, 18 -- the third quiet sample ends the run
    assert [canary for canary, _ in rows["worker"]] == [18.0, 31.0, 19.0, 30.0, 18.0]
    assert (parts["quiet_median"], parts["median"], parts["quiet_samples"]) == (1.8, 1.9, 3.0)


def test_instruction_counts_become_a_budget_row_raw_and_rescaled_by_the_peers() -> None:
    """The layer's share of the cold start's instructions, as time here and rescaled by each peer."""
    import bench

    results = {
        "lambda_coldstart": {"none_ms": 600.0},
        "lambda_instructions": bench._lambda_instructions(
            {"summary": {"nexs_share_pct": 3.0, "ratio_otel_instr": 15.0, "ratio_powertools_instr": 10.0}}
        ),
    }
    bench._instructions_as_time(results)
    assert results["lambda_instructions"]["nexs_share_of_cold_start_ms"] == 18.0
    row = next(row for row in bench.budgets(results) if row["benchmark"] == "lambda_instructions")
    # 110 ms / 15 = 7.3 by OpenTelemetry, 80 ms / 10 = 8.0 by Powertools: the less flattering is kept
    assert (row["measured"], row["rescaled_to_reference"]) == (18.0, 8.0)
    assert (row["met_raw"], row["met_rescaled"]) == (False, True)
    assert bench._lambda_instructions({"skipped": "valgrind is not installed"}) == {}


def _row(low: float, median: float, high: float, inside: float) -> dict[str, float]:
    return {
        "paired_overhead_low_ms": low,
        "paired_overhead_ms": median,
        "paired_overhead_high_ms": high,
        "inside_ms": inside,
    }


def test_the_verdict_needs_the_whole_interval_on_one_side_of_the_budget() -> None:
    """A median inside the budget with an interval past it is noise, not a pass."""
    assert verdict(_row(2.0, 5.0, 9.0, 6.0)).endswith("within the 10 ms budget")
    assert verdict(_row(11.0, 14.0, 20.0, 9.0)).endswith("OVER the 10 ms budget")
    assert "inconclusive" in verdict(_row(-44.0, -10.0, 83.0, 9.0))
    # The stopwatches inside the function leave work out: past the budget alone, the verdict is over.
    assert "OVER" in verdict(_row(-44.0, -10.0, 83.0, 12.8))


def test_the_end_to_end_budget_row_is_judged_by_its_interval() -> None:
    """A paired median under the budget with an interval past it is inconclusive, not met."""
    import bench

    noisy = {"nexs_overhead_ms": -17.5, "nexs_overhead_low_ms": -64.2, "nexs_overhead_high_ms": 35.2}
    row = next(
        row for row in bench.budgets({"lambda_coldstart": noisy}) if row["metric"] == "nexs_overhead_ms"
    )
    assert (row["inconclusive"], row["met_raw"], row["met_rescaled"]) == (True, False, False)
    assert bench._verdict(row) == "inconclusive (95% interval -64.2..35.2)"
    clear = {"nexs_overhead_ms": 4.0, "nexs_overhead_low_ms": 1.0, "nexs_overhead_high_ms": 8.0}
    row = next(
        row for row in bench.budgets({"lambda_coldstart": clear}) if row["metric"] == "nexs_overhead_ms"
    )
    assert bench._verdict(row) == "met"
