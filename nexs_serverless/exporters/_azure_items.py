"""The Application Insights items of a batch: built from spans, refused by a 206, still to send.

Split from `azure_monitor`, which keeps the calls (the SDK exporter, redirects,
offline storage, error classes); this module keeps the bookkeeping between
spans and their items (an envelope per span and per exception event): which
span each item came from, which items a partial success (HTTP 206) refused and
with what status, and the `Pending` list a retry sends without converting the
spans again. `azure_monitor`'s docstring gives the rules. Loaded with it.
"""

from __future__ import annotations

from .. import _guard as guard
from .. import _stats as stats
from .errors import ExportError, classify_status

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from typing import Any

    from ..typing import ReadableSpan

__all__ = [
    "RETRYABLE_ITEM_STATUSES",
    "Pending",
    "envelopes_of",
    "partial_failure",
    "refused_items",
    "retry_after_s",
]

# Per-item statuses of a 206 that the SDK would retry (its _RETRYABLE_STATUS_CODES but the
# 401/403 of Entra ID tokens; 402/439, quota spent "over an extended time", it drops).
RETRYABLE_ITEM_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
# An item "refused" by the resource's ingestion sampling (the SDK's _is_sampling_rejection).
_SAMPLED_OUT = "telemetry sampled out."


class Pending(list["ReadableSpan"]):
    """Spans still to send with their `envelopes` (`owner`: each one's index here), from a failed `send`.

    Raised as `ExportError.undelivered`: the resilience layer retries with this
    very list and `send` tracks the envelopes again instead of converting the
    spans, so the items a 206 accepted are not sent twice, nor a span the
    mapping failed on counted twice. A list, as `undelivered` always is.
    """

    __slots__ = ("envelopes", "owner")

    def __init__(self, spans: list[ReadableSpan], envelopes: list[Any], owner: list[int]) -> None:
        super().__init__(spans)
        self.envelopes = envelopes
        self.owner = owner

    @classmethod
    def of(
        cls, spans: Sequence[ReadableSpan], envelopes: list[Any], owner: list[int], indexes: Iterable[int]
    ) -> Pending:
        """The spans owning the envelopes at `indexes` (in order), with those envelopes."""
        kept: list[ReadableSpan] = []
        position: dict[int, int] = {}  # a span's index in `spans` -> its index in `kept`
        items: list[Any] = []
        owners: list[int] = []
        for index in indexes:
            span_index = owner[index]
            if span_index not in position:
                position[span_index] = len(kept)
                kept.append(spans[span_index])
            items.append(envelopes[index])
            owners.append(position[span_index])
        return cls(kept, items, owners)

    def fits(self) -> bool:
        """Whether the envelopes still stand for these spans (each owned by one of them)."""
        return (
            bool(self.envelopes)
            and len(self.owner) == len(self.envelopes)
            and set(self.owner) == set(range(len(self)))
        )


def partial_failure(
    retry: list[int],
    refused: dict[int, object],
    envelopes: list[Any],
    owner: list[int],
    spans: Sequence[ReadableSpan],
    headers: Any,
) -> ExportError:
    """The failure for a 206 that refused the items at `retry` with a retryable status.

    Its class is a 429's when there is one (with the reply's ``Retry-After``),
    else the first status's. Unless every item was refused so, `undelivered`
    names the spans of those items with just those items; `rejected` counts
    the spans refused for good and not also still to send.
    """
    statuses = [int(refused[index]) for index in retry]  # type: ignore[call-overload]
    status = 429 if 429 in statuses else statuses[0]
    retry_after = retry_after_s((headers or {}).get("Retry-After")) if status == 429 else None
    error = ExportError(
        classify_status(status),
        f"{len(retry)} of {len(owner)} items refused with {status}",
        retry_after_s=retry_after,
        status=status,
    )
    if len(retry) < len(owner):  # some got through: name only what is still to send
        error.undelivered = Pending.of(spans, envelopes, owner, retry)
        error.rejected = len({owner[index] for index in refused} - {owner[index] for index in retry})
    return error


def _sample_rates(spans: Sequence[ReadableSpan]) -> dict[int, float]:
    """Trace id -> ``sampleRate`` (percent) from the tail sampler's ``sampling.probability`` on a root.

    One per trace: every span of an invocation tail sampling kept was kept with
    its root (the largest, when several roots of one trace are in the batch).
    """
    rates: dict[int, float] = {}
    for span in spans:
        probability = span.attributes.get("sampling.probability")
        if (
            isinstance(probability, (int, float))
            and not isinstance(probability, bool)
            and 0 < probability <= 1
        ):
            rates[span.trace_id] = max(rates.get(span.trace_id, 0.0), probability * 100.0)
    return rates


def envelopes_of(sdk: Any, spans: Sequence[ReadableSpan]) -> tuple[list[Any], list[int]]:
    """The SDK's envelopes for `spans` and, for each, the index of the span it came from.

    A span the conversion or the SDK's mapping fails on is left out and
    counted (``spans_dropped_serialization``): it would fail every retry.
    """
    from .otel_sdk import to_readable_span

    envelopes: list[Any] = []
    owner: list[int] = []
    rates = _sample_rates(spans)
    for index, span in enumerate(spans):
        try:
            readable = to_readable_span(span)  # type: ignore[arg-type]
            batch = [sdk._span_to_envelope(readable), *sdk._span_events_to_envelopes(readable)]
        except Exception as exc:  # one odd span must not cost the batch
            guard.report("azure_convert", exc)
            stats.incr("spans_dropped_serialization")
            continue
        rate = rates.get(span.trace_id)
        if rate is not None:
            for envelope in batch:
                if envelope.sample_rate is None:  # the span's own _MS.sampleRate wins
                    envelope.sample_rate = rate
        envelopes.extend(batch)
        owner.extend([index] * len(batch))
    return envelopes, owner


def refused_items(response: Any, sent: int) -> dict[int, object]:
    """The envelopes a 206 refused: index -> item status.

    Items "Telemetry sampled out." were dropped by the resource's ingestion
    sampling, as configured: accepted, not refused (the SDK neither retries
    nor reports them). An item error whose ``index`` names no envelope we
    sent (missing, negative, past the end) cannot be tied to a span: it is
    ignored and the reply counted as ``export_response_undecodable``. Raising instead would report the batch
    as failed after the service accepted it, and a retry would duplicate it.
    """
    errors = list(getattr(response, "errors", None) or ())
    if not errors:
        return {}
    refused: dict[int, object] = {}
    sampled_out = 0
    for error in errors:
        if str(getattr(error, "message", "") or "").strip().lower() == _SAMPLED_OUT:
            sampled_out += 1
            continue
        index = getattr(error, "index", None)
        if type(index) is int and 0 <= index < sent:
            refused[index] = getattr(error, "status_code", None)
    if len(refused) + sampled_out < len(errors):
        stats.incr("export_response_undecodable")
    return refused


def retry_after_s(value: object) -> float | None:
    """Seconds from a ``Retry-After`` value (a number; `azure_monitor`'s errors use it too), else None."""
    try:
        return max(0.0, float(str(value))) if value is not None else None
    except ValueError:
        return None
