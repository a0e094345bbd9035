"""What `ResilientExporter` does once an export has failed: retry, drop or keep, and the parts for it.

Split out of `resilient` because a successful export runs none of it: a cold
start that exports successfully does not load this module, nor the breaker,
the retry policy, the carry-over or the error classes it builds and reads.
The functions take the wrapper and work on its state; they are its methods
in all but the module they live in (see `resilient` for the rules they follow).
"""

from __future__ import annotations

from .. import _guard as guard
from .. import _stats as stats
from .errors import DROPPED, ExportError, classify
from .resilient import _count_sent

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..typing import ReadableSpan
    from .breaker import CircuitBreaker
    from .carryover import CarryOver
    from .resilient import ResilientExporter
    from .retry import RetryPolicy

__all__ = ["build_breaker", "build_carryover", "build_retry", "carry", "drop_or_keep", "retry_failed"]


# -- the failure-path parts -------------------------------------------------------------
# Exports run on several threads (background prepare, extension, main): two first failures
# at once must not build two carry-overs and lose the spans kept in one.


def build_breaker(exporter: ResilientExporter) -> CircuitBreaker:
    """The wrapper's circuit breaker, built (once) from its options."""
    from .breaker import CircuitBreaker

    with exporter._build_lock:
        breaker = exporter._breaker
        if breaker is None:
            options = exporter.options
            breaker = exporter._breaker = CircuitBreaker(
                failure_threshold=options.failure_threshold,
                cooldown_s=options.cooldown_s,
                clock=exporter._clock,
                name=exporter.name,
            )
        return breaker


def build_retry(exporter: ResilientExporter) -> RetryPolicy:
    """The wrapper's retry policy, built (once) from its options."""
    from .retry import RetryPolicy

    with exporter._build_lock:
        retry = exporter._retry
        if retry is None:
            options = exporter.options
            retry = exporter._retry = RetryPolicy(
                max_retries=options.max_retries,
                base_s=options.backoff_s,
                max_backoff_s=options.max_backoff_s,
                random=exporter._random,
            )
        return retry


def build_carryover(exporter: ResilientExporter) -> CarryOver:
    """The wrapper's carry-over buffer, built (once) with its bound."""
    from .carryover import CarryOver

    with exporter._build_lock:
        carryover = exporter._carryover
        if carryover is None:
            carryover = exporter._carryover = CarryOver(exporter.options.carryover_spans)
        return carryover


# -- after a failed attempt -------------------------------------------------------------


def retry_failed(
    exporter: ResilientExporter,
    batch: Sequence[ReadableSpan],
    resent: int,
    deadline: float,
    exc: Exception,
) -> tuple[Sequence[ReadableSpan], ExportError | None]:
    """`ResilientExporter._send_with_retries` from its first failed attempt (`exc`) on.

    Returns what that method returns: ``((), None)`` when every span arrived in
    the end; else the spans left and the last failure (retrying cannot help, would
    pass the deadline, or the wait for it did), never None: an attempt has failed.
    """
    retry = 0
    while True:
        error = _classified(exporter, exc)
        stats.incr("export_errors_" + error.error_class)
        left = error.undelivered
        # Earlier requests got through, or the exporter dropped spans: the rest is the batch now.
        if left is not None:
            left_resent = _carried_among(left, batch, resent)
            _count_sent(len(batch) - len(left) - error.dropped, error.rejected, resent - left_resent)
            if not left:
                return (), None
            batch, resent = left, left_resent
        if exporter._send is None:
            return batch, error  # export()-only exporters: one attempt (SDK exporters retry on their own)
        delay = exporter.retry.delay_s(retry, error)
        if delay is None or exporter._clock() + delay >= deadline:
            return batch, error
        stats.incr("export_retries")
        if delay > 0:
            exporter._sleep(delay)
        retry += 1
        timeout_s = deadline - exporter._clock()
        if timeout_s <= 0:  # the wait overran the deadline (a sleep may take longer than asked)
            stats.incr("export_deadline_reached")
            # The back end did fail this flush: returning no error would spare the breaker (and give
            # a half-open one's probe back, so the next flush probes again at once). Its pause,
            # if it named one, has just been waited out: not asked for a second time.
            error.retry_after_s = None
            return batch, error
        try:
            rejected, dropped = exporter._attempt(batch, timeout_s)
        except Exception as again:
            exc = again
            continue
        _count_sent(len(batch) - dropped, rejected, resent)
        return (), None


def _classified(exporter: ResilientExporter, exc: Exception) -> ExportError:
    if isinstance(exc, ExportError):  # a classified failure: the seam working as designed
        guard.warn_once(
            f"export_error:{exporter.name}:{exc.error_class}",
            "nexs_serverless: export to %s failed (%s): %s; further failures are only counted",
            exporter.name,
            exc.error_class,
            exc,
        )
        return exc
    guard.report("export:" + exporter.name, exc)  # an exporter that raised: counted and logged once
    return classify(exc)


def drop_or_keep(
    exporter: ResilientExporter,
    batch: Sequence[ReadableSpan],
    resent: int,
    left: Sequence[ReadableSpan],
    error: ExportError | None,
    rest: Sequence[ReadableSpan],
    rest_resent: int,
    generation: int,
) -> bool | None:
    """Settle the spans of `batch` that did not arrive (`left`), and the batches after it (`rest`).

    `resent` and `rest_resent`: how many of `batch` and of `rest` come from the
    carry-over. A multi-request send may have delivered part of the batch
    (counted already): only `left` is dropped or kept, and only the carried ones
    among it were carried.

    Returns:
        For spans dropped because sending again cannot help (the flush goes on
        with `rest`): whether only carried spans were lost. None when `left` and
        `rest` were kept for a later flush (the flush stops).
    """
    carried_left = _carried_among(left, batch, resent)
    if error is not None:
        if error.error_class in DROPPED:
            exporter._record_success()  # the back end answered: it is up
            stats.incr("spans_dropped_" + error.error_class, len(left))
            return carried_left == len(left)
        exporter.breaker.record_failure()
        if error.retry_after_s:  # 429 or 503 alike: the back end named its pause
            _honour_retry_after(exporter, error.retry_after_s)
    # else our budget ran out, not the back end: keep the rest, blame nobody
    carry(exporter, [*left, *rest] if rest else left, carried_left + rest_resent, generation)
    return None


def carry(
    exporter: ResilientExporter,
    spans: Sequence[ReadableSpan],
    already_carried: int = 0,
    generation: int | None = None,
) -> None:
    """Keep `spans` for a later flush, unless the carry-over was discarded since `generation`."""
    if not spans:
        return
    if generation is not None and generation != exporter._generation:  # discarded meanwhile
        stats.incr("spans_dropped_reconfigure", len(spans))
        return
    exporter.carryover.keep(spans)
    fresh = len(spans) - already_carried
    if fresh > 0:
        stats.incr("export_spans_carried_over", fresh)


def _honour_retry_after(exporter: ResilientExporter, retry_after_s: float) -> None:
    """The back end asked for a pause this flush did not wait out: skip the exporter until then.

    Reached when a retry would pass the deadline or none is left; either way
    the next flush must not come back before the back end said it may.
    """
    stats.incr("export_deferred_retry_after")
    exporter.breaker.trip(retry_after_s)


def _carried_among(spans: Sequence[ReadableSpan], batch: Sequence[ReadableSpan], carried: int) -> int:
    """How many of `spans` (some of `batch`'s, in order) are among its first `carried` ones."""
    if not carried:
        return 0
    if carried >= len(batch):
        return len(spans)
    ids = {id(span) for span in batch[:carried]}
    return sum(1 for span in spans if id(span) in ids)
