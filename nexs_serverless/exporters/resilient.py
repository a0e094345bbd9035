"""`ResilientExporter`: breaker, retries and carry-over around any exporter.

The seam, shaped like httpx's one-method transport: an exporter that can
report *why* it failed implements

    send(spans, timeout_s) -> int    # spans the back end rejected (0 usually), or a
                                     # base.Sent when it also dropped spans itself
                                     # raises errors.ExportError on failure

and this wrapper does the rest: it skips the call while the breaker is open,
retries retryable failures with jittered backoff inside the flush deadline,
keeps unsent spans in a bounded carry-over buffer that goes out first with
the next flush, and counts everything in `nexs_serverless.stats()`. An
exporter without `send` (console, in-memory, OpenTelemetry SDK adapters,
third-party ones) is driven through ``export(spans) -> ExportResult``, one
attempt per flush (SDK exporters retry on their own); a FAILURE result or an
exception is classified with `errors.classify`, and an exception is also
reported through `_guard.report` (counted as an internal error, logged once).
A None result (an `export` without ``return``) is a success, logged once.
Such an exporter has no timeout to keep to: when it is not ours, `adapt`
gives it an `_export_worker.ExportWorker`, which runs its exports in a thread
waited for only until the flush deadline (an overrun is a TIMEOUT failure:
its spans are kept, and its late result decides whether they go again).
A result with a ``dropped`` attribute (`otel_sdk.Dropped`) names spans the
exporter left out itself: they count as neither sent nor kept.

What happens to a batch:

- sent: counted ``export_spans_sent`` (carried ones also ``export_spans_resent``),
  minus what the back end rejected (``export_spans_rejected``) and what the
  exporter dropped itself (counted by it under its reason, ``spans_dropped_oversize``...):
  each span is counted once;
- BAD_REQUEST / SERIALIZATION: sending again cannot help, dropped and counted
  ``spans_dropped_<class>`` (the back end answered, so the breaker is not charged);
- any other failure, breaker open, deadline reached or ``Retry-After`` pending:
  kept for later (``export_spans_carried_over`` counts spans entering the buffer);
- a batch sent as several requests that fails after some got through (the
  error's ``undelivered``): those are counted sent, and only the rest is
  retried, dropped or kept (sending the delivered ones again would duplicate them);
- at `shutdown`, what is still held is counted ``spans_dropped_shutdown``; at a
  reconfiguration (`discard_carryover`), and by a flush that fails after one, ``spans_dropped_reconfigure``.

Settings (`Options.from_settings`, environment in brackets, default after it):
``NEXS_EXPORT_BREAKER_FAILURES`` (3), ``NEXS_EXPORT_BREAKER_COOLDOWN_MS`` (10000),
``NEXS_EXPORT_MAX_RETRIES`` (2), ``NEXS_EXPORT_BACKOFF_MS`` (50),
``NEXS_EXPORT_BACKOFF_MAX_MS`` (1000), ``NEXS_EXPORT_CARRYOVER_SPANS`` (2048),
``NEXS_EXPORT_MAX_BATCH_SPANS`` (512). The ``_MS`` durations are at most an hour, as
``NEXS_FLUSH_TIMEOUT_MS`` is.

Cold start: the breaker, the retry policy, the carry-over buffer and the error
classes only matter once an export has failed, so they are built (and their
modules imported) at the first failure, as is what handles a failure (retry,
drop or keep: `_resilient_failure`); until then an export is one `send` and a
few counters. The settings are still checked when the wrapper is built.
"""

from __future__ import annotations

import threading
import time

from .. import _guard as guard
from .. import _stats as stats
from .. import config
from ..context import export_deadline
from .base import ExportResult, outcome, succeeded

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from ..config import Settings
    from ..typing import ReadableSpan
    from ._export_worker import ExportWorker
    from .base import Sent
    from .breaker import CircuitBreaker
    from .carryover import CarryOver
    from .errors import ExportError
    from .retry import RetryPolicy


__all__ = ["Options", "ResilientExporter"]

_HOUR_MS = 3_600_000  # the most an ``_MS`` setting may say, as for NEXS_FLUSH_TIMEOUT_MS: more is a typo


class Options:
    """The wrapper's settings; `from_settings` reads them from the environment snapshot.

    Args:
        failure_threshold: consecutive failed flushes that open the breaker.
        cooldown_s: how long an open breaker skips the exporter before one probe.
        max_retries: retries of one batch within a flush.
        backoff_s: first backoff cap (doubles per retry, full jitter).
        max_backoff_s: largest backoff cap.
        carryover_spans: most spans kept for later flushes.
        max_batch_spans: most spans per request.
        timeout_s: the most one flush may spend here when no flush deadline is set.

    Raises:
        ValueError: for a value the breaker, retry policy or carry-over would
            refuse. Checked here because those are built only at the first
            failure, where an error would be swallowed instead of reported.
    """

    __slots__ = (
        "backoff_s",
        "carryover_spans",
        "cooldown_s",
        "failure_threshold",
        "max_backoff_s",
        "max_batch_spans",
        "max_retries",
        "timeout_s",
    )

    def __init__(
        self,
        *,
        failure_threshold: int = 3,
        cooldown_s: float = 10.0,
        max_retries: int = 2,
        backoff_s: float = 0.05,
        max_backoff_s: float = 1.0,
        carryover_spans: int = 2048,
        max_batch_spans: int = 512,
        timeout_s: float = 10.0,
    ) -> None:
        if type(failure_threshold) is not int or failure_threshold < 1:
            raise ValueError(f"failure_threshold must be an int >= 1, got {failure_threshold!r}")
        if not cooldown_s > 0:
            raise ValueError(f"cooldown_s must be positive, got {cooldown_s!r}")
        if type(max_retries) is not int or max_retries < 0:
            raise ValueError(f"max_retries must be an int >= 0, got {max_retries!r}")
        if backoff_s < 0 or max_backoff_s < 0:
            raise ValueError("backoff delays must not be negative")
        if type(carryover_spans) is not int or carryover_spans < 0:
            raise ValueError(f"carryover_spans must be an int >= 0, got {carryover_spans!r}")
        if type(max_batch_spans) is not int or max_batch_spans < 1:
            raise ValueError(f"max_batch_spans must be an int >= 1, got {max_batch_spans!r}")
        self.failure_threshold = failure_threshold
        self.cooldown_s = cooldown_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.carryover_spans = carryover_spans
        self.max_batch_spans = max_batch_spans
        self.timeout_s = timeout_s

    @classmethod
    def from_settings(cls, settings: Settings) -> Options:
        """Read ``NEXS_EXPORT_*`` from `settings.environ`; bad values log one line and fall back."""
        reader = config.Reader(settings.environ)

        def seconds(name: str, default: int, minimum: int = 0) -> float:
            return reader.integer(name, default=default, minimum=minimum, maximum=_HOUR_MS) / 1000

        options = cls(
            failure_threshold=reader.integer("NEXS_EXPORT_BREAKER_FAILURES", default=3, minimum=1),
            cooldown_s=seconds("NEXS_EXPORT_BREAKER_COOLDOWN_MS", 10_000, minimum=1),
            max_retries=reader.integer("NEXS_EXPORT_MAX_RETRIES", default=2),
            backoff_s=seconds("NEXS_EXPORT_BACKOFF_MS", 50),
            max_backoff_s=seconds("NEXS_EXPORT_BACKOFF_MAX_MS", 1000),
            carryover_spans=reader.integer("NEXS_EXPORT_CARRYOVER_SPANS", default=2048),
            max_batch_spans=reader.integer("NEXS_EXPORT_MAX_BATCH_SPANS", default=512, minimum=1),
            timeout_s=settings.flush_timeout_ms / 1000,
        )
        config.report(reader.problems)
        return options


class ResilientExporter:
    """Our exporter contract outside; breaker, retries and carry-over around `inner`.

    Args:
        inner: the exporter (with `send`, or only `export`).
        options: thresholds and bounds (default: `Options()`).
        name: label for logs (default: the inner class name).
        clock: a `time.monotonic`-like function; must share its timeline with
            `context.export_deadline` (tests pass a fake clock and set the deadline in it).
        sleep: how to wait between retries.
        random: jitter source, floats in [0, 1).

    Raises:
        ValueError: for bad `options` (see `Options`).
    """

    def __init__(
        self,
        inner: object,
        *,
        options: Options | None = None,
        name: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        random: Callable[[], float] | None = None,
    ) -> None:
        options = options or Options()
        self.inner = inner
        self.name = name or type(inner).__name__
        self.options = options
        self._clock = clock
        self._sleep = sleep
        self._random = random
        self._send: Callable[[Sequence[ReadableSpan], float], int | Sent | None] | None = getattr(
            inner, "send", None
        )
        # Built at the first failure (see the properties below). None reads as: breaker closed
        # with no failure, no retry decided yet, nothing carried over.
        self._breaker: CircuitBreaker | None = None
        self._retry: RetryPolicy | None = None
        self._carryover: CarryOver | None = None
        # Exports run on several threads (background prepare, extension, main): two first
        # failures at once must not build two carry-overs and lose the spans kept in one.
        self._build_lock = threading.Lock()
        # Bumped by `discard_carryover` (reconfiguration): a flush that took the carry-over
        # before it and fails after it must not put those spans back where nobody will send
        # or count them.
        self._generation = 0
        # Set by `adapt` for an `export`-only exporter of a class not ours (one that may block):
        # its exports then run in a thread waited for until the deadline. None: called directly.
        self._worker: ExportWorker | None = None

    # -- the failure-path parts, built on first use (`_resilient_failure.build`) --------

    @property
    def breaker(self) -> CircuitBreaker:
        """The circuit breaker (built on first use: a closed one with no failures does nothing)."""
        breaker = self._breaker
        if breaker is None:
            from ._resilient_failure import build_breaker

            breaker = build_breaker(self)
        return breaker

    @breaker.setter
    def breaker(self, breaker: CircuitBreaker) -> None:
        self._breaker = breaker

    @property
    def retry(self) -> RetryPolicy:
        """The retry policy (built on first use: only a failed attempt asks it anything)."""
        retry = self._retry
        if retry is None:
            from ._resilient_failure import build_retry

            retry = build_retry(self)
        return retry

    @property
    def carryover(self) -> CarryOver:
        """The spans kept for a later flush (built on first use: only a failure keeps any)."""
        carryover = self._carryover
        if carryover is None:
            from ._resilient_failure import build_carryover

            carryover = build_carryover(self)
        return carryover

    def discard_carryover(self) -> int:
        """Empty the carry-over, when there is one; the number of spans it held.

        A flush running meanwhile holds the spans it took from the carry-over: if it
        fails, it counts them (and its own) as ``spans_dropped_reconfigure`` instead
        of keeping them, since the runtime has moved on to new exporters.
        """
        self._generation += 1
        carryover = self._carryover
        return carryover.clear() if carryover is not None else 0

    # -- the exporter contract ------------------------------------------------------

    def export(self, spans: Sequence[ReadableSpan]) -> ExportResult:
        """Send the carry-over and `spans`; never raises, never passes the flush deadline.

        Returns SUCCESS when every span of `spans` reached the back end (or was
        rejected by it), FAILURE when some wait in the carry-over or were dropped.
        """
        started = self._clock()
        try:
            deadline = export_deadline() or started + self.options.timeout_s
            breaker = self._breaker
            if breaker is None:
                return self._deliver(spans, deadline)
            if not breaker.allow():
                from ._resilient_failure import carry  # loaded with the breaker, at the first failure

                stats.incr("export_skipped_breaker_open")
                carry(self, spans)
                return ExportResult.FAILURE
            from .breaker import CLOSED  # loaded with the breaker, at the first failure

            probing = breaker.state != CLOSED  # this export holds the half-open breaker's probe
            try:
                return self._deliver(spans, deadline)
            finally:
                if probing:  # answered: already recorded; not tried (no time, nothing to send): freed
                    breaker.release()
        except Exception as exc:  # a bug here must not reach the handler
            guard.report("resilient_export:" + self.name, exc)
            return ExportResult.FAILURE
        finally:
            stats.observe("export_ms", (self._clock() - started) * 1000.0)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Send the carry-over now (at exit), within `timeout_millis`, whatever the breaker says.

        Returns True when nothing is left waiting.
        """
        try:
            now = self._clock()
            deadline = now + max(0, timeout_millis) / 1000.0
            flush_deadline = export_deadline()
            if flush_deadline:
                deadline = min(deadline, flush_deadline)
            worker = self._worker
            if worker is not None:  # an overrun export's late result decides what the carry-over sends
                worker.wait(deadline - self._clock())
            if self._carryover:  # built and not empty
                self._deliver((), deadline)
            left_ms = int((deadline - self._clock()) * 1000)
            inner_flush = getattr(self.inner, "force_flush", None)
            inner_ok = bool(inner_flush(max(0, left_ms))) if inner_flush is not None else True
            if worker is not None and not worker.wait(0.0):
                return False  # an export still running: its spans are not known to be sent
        except Exception as exc:
            guard.report("resilient_force_flush:" + self.name, exc)
            return False
        return inner_ok and not self._carryover

    def shutdown(self) -> None:
        """Count what is still held as lost, then shut the inner exporter down."""
        carryover = self._carryover
        dropped = carryover.clear() if carryover is not None else 0
        if dropped:
            stats.incr("spans_dropped_shutdown", dropped)
        shutdown = getattr(self.inner, "shutdown", None)
        if shutdown is not None:
            shutdown()

    def prepare(self) -> None:
        """Let the inner exporter connect ahead of the first flush (see `runtime.prepare_exporters`)."""
        prepare = getattr(self.inner, "prepare", None)
        if prepare is not None:
            prepare()

    # -- internals ------------------------------------------------------------------

    def _deliver(self, spans: Sequence[ReadableSpan], deadline: float) -> ExportResult:
        """Carry-over first (oldest first), then `spans`, in batches; stop at the first failure."""
        generation = self._generation
        carryover = self._carryover
        carried: list[ReadableSpan] = list(carryover.take()) if carryover is not None else []
        resent = len(carried)
        pending = carried + list(spans) if carried else spans
        batch_size = self.options.max_batch_spans
        complete = True
        start = 0
        while start < len(pending):
            batch = pending[start : start + batch_size]
            resent_here = max(0, min(len(batch), resent - start))
            start += len(batch)
            left, error = self._send_with_retries(batch, resent_here, deadline)
            if not left:
                self._record_success()
                continue
            from ._resilient_failure import drop_or_keep

            only_carried_lost = drop_or_keep(
                self, batch, resent_here, left, error, pending[start:], max(0, resent - start), generation
            )
            if only_carried_lost is None:  # kept for a later flush
                return ExportResult.FAILURE
            complete = complete and only_carried_lost
        return ExportResult.SUCCESS if complete else ExportResult.FAILURE

    def _send_with_retries(
        self, batch: Sequence[ReadableSpan], resent: int, deadline: float
    ) -> tuple[Sequence[ReadableSpan], ExportError | None]:
        """Send `batch`, retrying within `deadline`; count what arrives, return what did not and why.

        `resent`: how many of the batch's first spans come from the carry-over.
        A failure after part of the batch got through (`ExportError.undelivered`)
        counts that part as sent and retries only the rest.

        Returns:
            ``((), None)`` when every span arrived; the spans left and None when
            the deadline passed before an attempt (nothing to charge the breaker
            with); the spans left and the last failure when retrying cannot help
            or would pass the deadline.
        """
        timeout_s = deadline - self._clock()
        if timeout_s <= 0:
            stats.incr("export_deadline_reached")
            return batch, None
        try:
            rejected, dropped = self._attempt(batch, timeout_s)
        except Exception as exc:
            from ._resilient_failure import retry_failed

            return retry_failed(self, batch, resent, deadline, exc)
        _count_sent(len(batch) - dropped, rejected, resent)
        return (), None

    def _attempt(self, batch: Sequence[ReadableSpan], timeout_s: float) -> tuple[int, int]:
        """One try: ``(rejected, dropped)``, the spans the back end rejected and the exporter dropped."""
        send = self._send
        if send is not None:
            return outcome(send(batch, timeout_s))
        inner, worker = self.inner, self._worker  # no worker for ours: called directly, no thread
        result = inner.export(batch) if worker is None else worker.export(inner, batch, timeout_s)  # type: ignore[attr-defined]
        # Spans the exporter left out itself, counted under their reason (`otel_sdk.Dropped`).
        dropped: Sequence[ReadableSpan] = getattr(result, "dropped", ())
        # `succeeded` only past the common check: it also reads None (no ``return``) as SUCCESS.
        if getattr(result, "name", "") != "SUCCESS" and not succeeded(result, type(self.inner).__name__):
            from .errors import ErrorClass, ExportError

            error = ExportError(ErrorClass.UNKNOWN, f"{self.name}.export returned {result!r}")
            if dropped:  # kept for later without them: dropping them again would count them twice
                left_out = {id(span) for span in dropped}
                error.undelivered = [span for span in batch if id(span) not in left_out]
                error.dropped = len(dropped)
            raise error
        return 0, len(dropped)

    def _record_success(self) -> None:
        breaker = self._breaker
        if breaker is not None:  # else: never failed, nothing to forget
            breaker.record_success()


def _count_sent(delivered: int, rejected: int, resent: int) -> None:
    """Count spans that reached the back end: `rejected` of them refused by it, `resent` carried over."""
    delivered = max(0, delivered)  # an exporter's drop count past the batch is its error
    rejected = min(rejected, delivered)  # a back end's count past the batch is its error
    resent = min(resent, delivered)  # a carried span dropped by the exporter was not sent again
    stats.incr("export_spans_sent", delivered - rejected)
    if rejected:
        stats.incr("export_spans_rejected", rejected)
    if resent:
        stats.incr("export_spans_resent", resent)
