"""CircuitBreaker and RetryPolicy, driven by a fake clock (no sleeping)."""

from __future__ import annotations

import threading

import pytest

from nexs_serverless import stats
from nexs_serverless.exporters.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker
from nexs_serverless.exporters.errors import ErrorClass, ExportError
from nexs_serverless.exporters.retry import RetryPolicy


class FakeClock:
    """A monotonic clock that moves only when told."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def breaker(clock: FakeClock, threshold: int = 3, cooldown_s: float = 10.0) -> CircuitBreaker:
    return CircuitBreaker(failure_threshold=threshold, cooldown_s=cooldown_s, clock=clock)


def test_opens_after_threshold_consecutive_failures(clock: FakeClock) -> None:
    """Closed until `threshold` failures in a row, then open and refusing."""
    cb = breaker(clock)
    for _ in range(2):
        assert cb.allow()
        cb.record_failure()
    assert cb.state == CLOSED
    cb.record_failure()
    assert cb.state == OPEN
    assert not cb.allow()
    assert stats()["breaker_opened"] == 1


def test_success_resets_the_failure_count(clock: FakeClock) -> None:
    """Failures must be consecutive: a success in between starts the count again."""
    cb = breaker(clock)
    cb.record_failure()
    cb.record_failure()
    cb.record_success()
    cb.record_failure()
    cb.record_failure()
    assert cb.state == CLOSED
    assert cb.failures == 2


def test_one_probe_after_cooldown(clock: FakeClock) -> None:
    """After the cool-down exactly one caller probes; others are refused while it is out."""
    cb = breaker(clock, threshold=1)
    cb.record_failure()
    clock.advance(9.999)
    assert not cb.allow()
    clock.advance(0.001)
    assert cb.state == HALF_OPEN
    assert cb.allow()
    assert not cb.allow()
    assert stats()["breaker_half_opened"] == 1


def test_probe_success_closes(clock: FakeClock) -> None:
    """A successful probe closes the breaker and lets everyone through."""
    cb = breaker(clock, threshold=1)
    cb.record_failure()
    clock.advance(10)
    assert cb.allow()
    cb.record_success()
    assert cb.state == CLOSED
    assert cb.allow()
    assert cb.allow()
    assert stats()["breaker_closed"] == 1


def test_probe_failure_reopens_for_a_new_cooldown(clock: FakeClock) -> None:
    """A failed probe opens again, counting a full cool-down from the probe."""
    cb = breaker(clock, threshold=1)
    cb.record_failure()
    clock.advance(10)
    assert cb.allow()
    cb.record_failure()
    assert cb.state == OPEN
    clock.advance(9)
    assert not cb.allow()
    clock.advance(1)
    assert cb.allow()
    assert stats()["breaker_reopened"] == 1
    assert stats()["breaker_opened"] == 1


def test_trip_honours_a_longer_pause(clock: FakeClock) -> None:
    """trip(cooldown_s) opens for that long (the back end's Retry-After)."""
    cb = breaker(clock)
    cb.trip(60.0)
    clock.advance(59)
    assert not cb.allow()
    clock.advance(1)
    assert cb.allow()


def test_only_one_thread_gets_the_probe(clock: FakeClock) -> None:
    """Thread-safe: of many threads asking at once in half-open, one is let through."""
    cb = breaker(clock, threshold=1)
    cb.record_failure()
    clock.advance(10)
    results: list[bool] = []
    barrier = threading.Barrier(16)

    def ask() -> None:
        barrier.wait()
        results.append(cb.allow())

    threads = [threading.Thread(target=ask) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(True) == 1


def test_bad_breaker_arguments_raise() -> None:
    """A threshold below 1 or a non-positive cool-down is a ValueError."""
    with pytest.raises(ValueError, match="failure_threshold must be an int >= 1, got 0"):
        CircuitBreaker(failure_threshold=0)
    with pytest.raises(ValueError, match="cooldown_s must be positive, got 0"):
        CircuitBreaker(cooldown_s=0)


def test_backoff_is_full_jitter_under_an_exponential_cap() -> None:
    """The delay is random * min(max, base * 2**retry)."""
    policy = RetryPolicy(max_retries=10, base_s=0.1, max_backoff_s=1.0, random=lambda: 0.5)
    assert [policy.backoff_s(n) for n in range(6)] == [0.05, 0.1, 0.2, 0.4, 0.5, 0.5]
    top = RetryPolicy(base_s=0.1, max_backoff_s=1.0, random=lambda: 0.999999)
    assert top.backoff_s(100) < 1.0


def test_only_retryable_classes_are_retried() -> None:
    """NETWORK/TIMEOUT/THROTTLED/SERVER get a delay; AUTH, BAD_REQUEST and the rest get None."""
    policy = RetryPolicy(max_retries=3, random=lambda: 0.0)
    for error_class in (ErrorClass.NETWORK, ErrorClass.TIMEOUT, ErrorClass.THROTTLED, ErrorClass.SERVER):
        assert policy.delay_s(0, ExportError(error_class, "x")) == 0.0
    for error_class in (
        ErrorClass.AUTH,
        ErrorClass.BAD_REQUEST,
        ErrorClass.SERIALIZATION,
        ErrorClass.UNKNOWN,
    ):
        assert policy.delay_s(0, ExportError(error_class, "x")) is None


def test_retries_stop_at_max_and_honour_retry_after() -> None:
    """No delay past max_retries; Retry-After replaces the computed backoff."""
    policy = RetryPolicy(max_retries=2, random=lambda: 0.0)
    error = ExportError(ErrorClass.THROTTLED, "slow down", retry_after_s=3.0)
    assert policy.delay_s(0, error) == 3.0
    assert policy.delay_s(1, error) == 3.0
    assert policy.delay_s(2, error) is None


def test_bad_retry_arguments_raise() -> None:
    """Negative counts or delays are a ValueError."""
    with pytest.raises(ValueError, match="max_retries must be an int >= 0, got -1"):
        RetryPolicy(max_retries=-1)
    with pytest.raises(ValueError, match="backoff delays must not be negative"):
        RetryPolicy(base_s=-0.1)
