"""The statistics the cold-start benchmark reports its verdict with."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))

from bench_lambda_coldstart import median_interval, summarise


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
    report = summarise({"none": none, "nexs": ours}, {"none": none, "nexs": ours})
    assert report["nexs"]["paired_overhead_ms"] == 5.0
    assert report["nexs"]["paired_overhead_low_ms"] == report["nexs"]["paired_overhead_high_ms"] == 5.0
    assert report["none"]["paired_overhead_ms"] == 0.0
