"""How fast this machine runs Python at a given moment: tells quiet samples from contended ones.

Why: the shared VM the benchmarks run on alternates, over a fraction of a
second to several seconds, between two speeds about 1.7x apart (an empty
``for`` loop iteration takes about 18 ns in one state and about 30 ns in the
other; most likely another guest on the sibling hyperthread). Every workload
slows alike: ours, the OpenTelemetry SDK's and a bare loop, so peer/ours
ratios hold, but an absolute median says more about how long the machine was
contended during the run than about the code. The issues' reference figures
match the quiet state: the OpenTelemetry SDK's span takes about 33 us here
when quiet, 55 us when contended; the issue quotes about 30 us.

So the micro-benchmarks time a short canary (an empty loop) before and after
each sample and report two medians: over every sample, and over the samples
whose canaries both ran at the machine's quiet speed. The canary knows
nothing of the code under test, so the split selects machine states, not
favourable results. Both medians are printed; neither is hidden. Sampling
goes on until every variant has enough quiet samples (or a time limit), as a
contended spell can last longer than a fixed number of samples takes.
"""

from __future__ import annotations

import itertools
import statistics
import time
from collections.abc import Callable

__all__ = ["QUIET_MARGIN", "canary_ns", "quiet_cut", "sample", "sample_measured", "split"]

# A canary within this factor of the run's fastest counts as quiet: the two states are ~1.7x
# apart (about 18 and 30 ns here), the jitter within the quiet state under 15%.
QUIET_MARGIN = 1.25


def canary_ns(iterations: int = 10_000, tries: int = 2) -> float:
    """Nanoseconds per empty loop iteration now (best of `tries`; about 0.5 ms in all)."""
    best = float("inf")
    for _ in range(tries):
        started = time.perf_counter()
        for _ in range(iterations):
            pass
        best = min(best, (time.perf_counter() - started) / iterations * 1e9)
    return best


def quiet_cut(canaries: list[float]) -> float:
    """The slowest canary that still counts as quiet: `QUIET_MARGIN` over the fastest seen.

    Each canary is already the slower of a sample's two, so a lone fast reading
    cannot move the line far.
    """
    return min(canaries) * QUIET_MARGIN


def sample(
    variants: dict[str, Callable[[], float]],
    wanted: int,
    max_seconds: float,
    warmup_rounds: int = 3,
) -> dict[str, list[tuple[float, float]]]:
    """(canary ns, value) samples of each variant, interleaved round by round.

    Rounds go on until every variant has `wanted` samples and `wanted` quiet
    ones (by the line of all canaries so far), or `max_seconds` have passed.
    The first `warmup_rounds` are dropped: they warm caches and the
    specializing interpreter.
    """
    return sample_measured(
        {label: _with_canary(run) for label, run in variants.items()}, wanted, max_seconds, warmup_rounds
    )


def _with_canary(run: Callable[[], float]) -> Callable[[], tuple[float, float]]:
    def measured() -> tuple[float, float]:
        before = canary_ns()
        value = run()
        return max(before, canary_ns()), value  # quiet only if quiet on both sides

    return measured


def sample_measured(
    variants: dict[str, Callable[[], tuple[float, float]]],
    wanted: int,
    max_seconds: float,
    warmup_rounds: int = 3,
) -> dict[str, list[tuple[float, float]]]:
    """`sample` for variants that time their own canary: each call returns (canary ns, value).

    For variants that run in worker processes (tracers keep process-wide
    state): the canary must run where the sample does, as the machine's two
    vCPUs change speed independently.
    """
    samples: dict[str, list[tuple[float, float]]] = {label: [] for label in variants}
    deadline = time.monotonic() + max_seconds
    for round_index in itertools.count():
        for label, run in variants.items():
            measured = run()
            if round_index >= warmup_rounds:
                samples[label].append(measured)
        if round_index < warmup_rounds:
            continue
        cut = quiet_cut([canary for rows in samples.values() for canary, _ in rows])
        enough = all(
            len(rows) >= wanted and sum(canary <= cut for canary, _ in rows) >= wanted
            for rows in samples.values()
        )
        if enough or time.monotonic() > deadline:
            break
    return samples


def split(samples: list[tuple[float, float]], cut: float | None = None) -> dict[str, float]:
    """Medians of (canary, value) `samples`: over all, and over those taken on a quiet machine.

    `cut` defaults to `quiet_cut` of these samples' canaries; pass one computed
    over every variant of a run so that all are judged by the same line.
    Returns ``median``, ``quiet_median`` (NaN when no sample was quiet),
    ``quiet_samples``, ``samples``, and the canary's medians in each state.
    """
    if not samples:
        raise ValueError("no samples")
    if cut is None:
        cut = quiet_cut([canary for canary, _ in samples])
    quiet = [value for canary, value in samples if canary <= cut]
    calm = [canary for canary, _ in samples if canary <= cut]
    busy = [canary for canary, _ in samples if canary > cut]
    return {
        "median": statistics.median(value for _, value in samples),
        "quiet_median": statistics.median(quiet) if quiet else float("nan"),
        "quiet_samples": float(len(quiet)),
        "samples": float(len(samples)),
        "quiet_canary_ns": statistics.median(calm) if calm else float("nan"),
        "contended_canary_ns": statistics.median(busy) if busy else float("nan"),
    }
