"""Why an export failed, in classes the retry and breaker logic can act on.

    ExportError
    └── carries one ErrorClass:
        NETWORK        connection refused / reset / DNS      retried
        TIMEOUT        no answer within the time allowed     retried
        THROTTLED      429, or the back end's throttling     retried, honouring Retry-After
        SERVER         5xx                                   retried
        AUTH           401 / 403                             not retried
        BAD_REQUEST    400 / 404 / 413 / rejected payload    not retried
        REFUSED        a failure answer the protocol says    not retried
                       not to retry (OTLP: 500, 408, INTERNAL)
        SERIALIZATION  we could not encode the spans         not retried
        UNKNOWN        anything else                         not retried

`RETRYABLE` classes are retried within the flush; `DROPPED` ones (the back end
read the spans and refused them, or they cannot be encoded) are not kept for
a later flush either, since sending them again cannot help (for REFUSED, the
OTLP specification's "Failures" says the client MUST drop them).

Exporters raise `ExportError` from their send step; `classify` turns an
arbitrary exception (socket errors, SDK exceptions) into one. A send that
goes as several requests (`send_parts`) and fails after some got through
says which spans are still `undelivered`, so that only those are retried,
kept or dropped (the others would arrive twice, or be counted as lost); so
does a send that dropped spans itself before failing, so that a retry does
not drop (and count) them again. Cold start:
`resilient` and `otlp_http` import this module only when something fails,
so an export that succeeds never loads it; keep it that way.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import TypeVar

    from ..typing import ReadableSpan
    from .base import Sent

    Request = TypeVar("Request")

__all__ = [
    "DROPPED",
    "RETRYABLE",
    "ErrorClass",
    "ExportError",
    "classify",
    "classify_otlp_status",
    "classify_status",
    "send_parts",
]


class ErrorClass:
    """The error classes, as strings (they appear in stats keys and logs)."""

    __slots__ = ()

    NETWORK = "network"
    TIMEOUT = "timeout"
    AUTH = "auth"
    THROTTLED = "throttled"
    BAD_REQUEST = "bad_request"
    SERVER = "server"
    REFUSED = "refused"
    SERIALIZATION = "serialization"
    UNKNOWN = "unknown"


RETRYABLE = frozenset({ErrorClass.NETWORK, ErrorClass.TIMEOUT, ErrorClass.THROTTLED, ErrorClass.SERVER})
DROPPED = frozenset({ErrorClass.BAD_REQUEST, ErrorClass.REFUSED, ErrorClass.SERIALIZATION})


class ExportError(Exception):
    """An export that failed, with its class and the back end's retry hint.

    Args:
        error_class: one of the `ErrorClass` values.
        message: what happened, for the log.
        retry_after_s: the back end's ``Retry-After``, when it sent one.
        status: the HTTP or gRPC status, when there was one.

    Attributes:
        undelivered: None when no span of the batch got through and the
            exporter dropped none (or the whole batch, when the exporter hands
            a retry what it prepared: Cloud Trace's converted messages); else
            the spans still to send (in order), the others having been
            accepted by the back end or dropped.
        rejected: spans the back end rejected in the requests it accepted
            (``partial_success``), when `undelivered` is set.
        dropped: spans the exporter dropped itself (too big for any request,
            impossible to convert; counted under that reason), when
            `undelivered` is set: neither delivered nor still to send.
    """

    undelivered: Sequence[ReadableSpan] | None

    def __init__(
        self,
        error_class: str,
        message: str,
        *,
        retry_after_s: float | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.error_class = error_class
        self.retry_after_s = retry_after_s
        self.status = status
        self.undelivered = None
        self.rejected = 0
        self.dropped = 0

    @property
    def retryable(self) -> bool:
        """Whether retrying can help."""
        return self.error_class in RETRYABLE


def classify_status(status: int) -> str:
    """The class of an HTTP status code (>= 400)."""
    if status == 429:
        return ErrorClass.THROTTLED
    if status in (401, 403, 407):
        return ErrorClass.AUTH
    if status in (408, 504):
        return ErrorClass.TIMEOUT
    if status >= 500:
        return ErrorClass.SERVER
    if status >= 400:
        return ErrorClass.BAD_REQUEST
    return ErrorClass.UNKNOWN


# OTLP specification, "OTLP/HTTP Response", "Failures": the codes that SHOULD be retried.
_OTLP_RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})


def classify_otlp_status(status: int) -> str:
    """The class of an OTLP/HTTP status code (>= 400), per the OTLP specification.

    Only 429, 502, 503 and 504 are retried; every other 4xx and 5xx "MUST NOT
    be retried" and the data dropped (a 500 from a collector is a bug or a
    poison batch: sending it again gets the same answer). `classify_status`
    stays as it is for the cloud APIs, whose own guidance retries 408 and 500.
    401, 403 and 407 stay AUTH, kept for a later flush like every exporter's
    (credentials get fixed or refreshed, and the carry-over is bounded).
    """
    if status in _OTLP_RETRYABLE_STATUSES:
        return classify_status(status)  # THROTTLED, SERVER or TIMEOUT: retried
    if status == 408 or status >= 500:
        return ErrorClass.REFUSED
    return classify_status(status)  # AUTH, BAD_REQUEST


def classify(exc: BaseException) -> ExportError:
    """An `ExportError` for any exception raised while exporting."""
    if isinstance(exc, ExportError):
        return exc
    if isinstance(exc, TimeoutError):
        return ExportError(ErrorClass.TIMEOUT, repr(exc))
    if type(exc).__name__ == "SSLCertVerificationError":  # the certificate will not change: no retry
        return ExportError(ErrorClass.AUTH, repr(exc))
    if isinstance(exc, (ConnectionError, OSError)):
        return ExportError(ErrorClass.NETWORK, repr(exc))
    if isinstance(exc, (ValueError, TypeError, UnicodeError, OverflowError)):
        return ExportError(ErrorClass.SERIALIZATION, repr(exc))
    return ExportError(ErrorClass.UNKNOWN, repr(exc))


def send_parts(
    parts: Sequence[tuple[Sequence[ReadableSpan], Request]],
    send: Callable[[Sequence[ReadableSpan], Request], int | Sent],
    *,
    dropped: int = 0,
) -> int | Sent:
    """Send a batch's `parts` (its spans and their request) in order; what was rejected and dropped in all.

    For a batch too big for one request, or one the exporter left spans out of
    (`dropped`: already counted under their reason). A failure after a part got
    through, or after spans were dropped, is raised with
    `ExportError.undelivered` naming the failed part's spans and all later ones
    (a part that itself failed half way names only its own rest), so the caller
    neither sends the delivered ones twice, nor counts them as lost, nor drops
    the dropped ones again on a retry.

    Returns:
        The spans rejected, as `send` returns them (a `base.Sent` when some were dropped).

    Raises:
        ExportError: the failed request's, classified.
    """
    from .base import Sent, outcome

    rejected = 0
    done = 0  # parts that got through
    try:
        for members, request in parts:
            part_rejected, part_dropped = outcome(send(members, request))
            rejected += part_rejected
            dropped += part_dropped
            done += 1
    except Exception as exc:
        error = classify(exc)
        if done == 0 and error.undelivered is None and not dropped:  # nothing got through or left out
            raise
        left = error.undelivered if error.undelivered is not None else parts[done][0]
        error.undelivered = [*left, *(span for later, _ in parts[done + 1 :] for span in later)]
        error.rejected += rejected
        error.dropped += dropped
        if error is exc:
            raise
        raise error from exc
    return Sent.of(rejected, dropped)
