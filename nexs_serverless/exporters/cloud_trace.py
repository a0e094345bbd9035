"""`CloudTraceExporter`: spans to Google Cloud Trace (API v2, ``BatchWriteSpans``) via google-cloud-trace.

The mapping follows what OpenTelemetry's own Cloud Trace exporter does:

- ``name`` is ``projects/{project}/traces/{trace_id}/spans/{span_id}`` (hex ids);
  ``display_name`` the span name; ``span_kind`` OpenTelemetry's kind.
- attributes become Cloud Trace attributes (strings, ints, bools; floats and
  lists as text), the HTTP ones under the keys the console knows
  (``/http/method``, ``/http/status_code``, ...), plus ``g.co/agent`` and the
  resource's ``service.name`` (these two always kept). Cloud Trace keeps 32
  attributes per span, 128 bytes of key and 256 of value: the rest is cut here
  and counted in ``dropped_attributes_count`` / ``truncated_byte_count`` (so is
  an attribute whose key collides with another's once mapped or cut).
- events become time-event annotations (32 kept, 4 attributes each: the
  API's limit, the rest counted in ``dropped_attributes_count``), links links (128 kept),
  status ERROR ``google.rpc.Status`` code 2 (UNKNOWN) with the description,
  and the first exception's Python stack the span's ``stack_trace`` (the
  exception raised last when it chains others; file names cut at 256 bytes).
- text that is not valid Unicode (a lone surrogate from ``surrogateescape``)
  is sent with ``?`` in its place: protobuf refuses it, and one such span
  must not cost the batch. A span that cannot be converted at all is left
  out and counted (``spans_dropped_serialization``) once.

Each span is converted once per export, however often the resilience layer
retries: the batch is converted before the first call, and a failed `send`
names the spans still to send in a list that also holds their messages
(`ExportError.undelivered`, even when no call got through); given that list
again, `send` writes the messages without converting anything. The messages
live as long as the wrapper holds the list, so nothing is kept here once the
spans are delivered, dropped or carried over (the carry-over holds copies,
converted again at a later flush).

The mapping lives in `_cloud_trace_span`. Messages are raw protobuf objects
wrapped once (proto-plus conversions are slow). The client is built once and
reused; each call gets the time left in the flush budget and no retry (the
resilience layer decides). A batch over 1000 spans goes as several calls; one
that fails after others got through names only the spans still to send
(`errors.send_parts`), so a retry does not write the delivered ones twice.

Environment (read from the settings snapshot by `from_settings`):

- ``OTEL_EXPORTER_GCP_TRACE_PROJECT_ID`` (the variable of OpenTelemetry's own Cloud
  Trace exporter), else ``GOOGLE_CLOUD_PROJECT`` (also ``GCLOUD_PROJECT``,
  ``GCP_PROJECT``): the project; else the explicit credentials' ``project_id``
  (as google-cloud's clients do), else the one google-auth finds on first export.
- ``NEXS_GCP_TRACE_ENDPOINT`` (Google's): another ``host:port``.
- ``NEXS_GCP_TRACE_INSECURE`` (false): plaintext gRPC to that endpoint (local emulators, tests).
- ``NEXS_GCP_TRACE_TIMEOUT_MS`` (1000, at most an hour): the most one call may take (capped by the
  flush budget).
"""

from __future__ import annotations

import threading
import time

from .. import _guard as guard
from .. import _stats as stats
from ..config import ConfigError
from ._cloud_trace_span import MAX_ATTRIBUTES, to_span_pb
from .base import ExportResult, Sent, send_once
from .errors import ErrorClass, ExportError, classify, classify_status, send_parts

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from typing import Any

    from ..config import Settings
    from ..typing import ReadableSpan

__all__ = [
    "MAX_ATTRIBUTES",
    "MAX_SPANS_PER_CALL",
    "CloudTraceExporter",
    "classify_gcp_error",
    "from_settings",
]

MAX_SPANS_PER_CALL = 1000
_PROJECT_VARIABLES = (
    "OTEL_EXPORTER_GCP_TRACE_PROJECT_ID",
    "GOOGLE_CLOUD_PROJECT",
    "GCLOUD_PROJECT",
    "GCP_PROJECT",
)


class CloudTraceExporter:
    """Exports spans to Google Cloud Trace.

    Args:
        project_id: the Google Cloud project (None: `credentials`' own project
            when they name one, else google-auth's default project).
        endpoint: another ``host:port`` for the Trace API.
        insecure: plaintext gRPC to `endpoint` (local servers only).
        credentials: google-auth credentials (default: application default credentials).
        timeout_ms: the most one call may take, capped by the flush budget.
        client: a ready ``TraceServiceClient``.

    Raises:
        ConfigError: for `insecure` without `endpoint` or a bad timeout.
    """

    def __init__(
        self,
        *,
        project_id: str | None = None,
        endpoint: str | None = None,
        insecure: bool = False,
        credentials: object | None = None,
        timeout_ms: int = 1000,
        client: object | None = None,
    ) -> None:
        _require("google.cloud.trace_v2", "gcp")
        if insecure and not endpoint:
            raise ConfigError("CloudTraceExporter(insecure=True) needs an endpoint")
        if not isinstance(timeout_ms, int) or timeout_ms < 1:
            raise ConfigError(f"CloudTraceExporter(timeout_ms={timeout_ms!r}): expected an integer >= 1")
        self.project_id = project_id
        self.endpoint = endpoint
        self.insecure = insecure
        self.timeout_ms = timeout_ms
        self._credentials = credentials
        self._client = client
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> ExportResult:
        """Send `spans`; failures are classified, counted and logged once, never raised."""
        return send_once("Cloud Trace", self.send, spans, self.timeout_ms / 1000)

    def send(self, spans: Sequence[ReadableSpan], timeout_s: float) -> int | Sent:
        """``BatchWriteSpans`` calls of at most 1000 spans, all within `timeout_s`.

        Returns:
            0; a `Sent` when spans that cannot be converted were left out
            (counted ``spans_dropped_serialization``: not "rejected" by the back end).

        Raises:
            ExportError: classified (see `classify_gcp_error`). Once the spans
                are converted, its `undelivered` names those still to send (all
                of them when no call got through; `errors.send_parts` when some
                did) with their messages, so a retry given that list neither
                writes the delivered ones twice nor converts any span again
                (nor counts a left-out one twice).
        """
        if not spans:
            return 0
        if timeout_s <= 0:
            raise ExportError(ErrorClass.TIMEOUT, "no time left in the flush budget")
        try:
            client = self._get_client()
            project = self._project()
        except ExportError:
            raise
        except Exception as exc:
            raise classify_gcp_error(exc) from exc
        deadline = time.monotonic() + timeout_s  # the calls' budget (building the client is not a call)
        kept: Sequence[ReadableSpan]
        if isinstance(spans, _Converted) and spans.fits(project):  # a retry: converted by the failed send
            kept, converted, dropped = spans, spans.messages, 0
        else:  # converted once, up front: a span that fails is counted once
            kept, converted = _convert_all(spans, project)
            dropped = len(spans) - len(kept)
        try:
            if not dropped and len(kept) <= MAX_SPANS_PER_CALL:
                return self._write(client, project, converted, deadline)
            parts = [
                (kept[start : start + MAX_SPANS_PER_CALL], converted[start : start + MAX_SPANS_PER_CALL])
                for start in range(0, len(kept), MAX_SPANS_PER_CALL)
            ]
            return send_parts(
                parts, lambda _, part: self._write(client, project, part, deadline), dropped=dropped
            )
        except ExportError as error:
            _hand_over(error, kept, converted, project)
            raise

    def _write(self, client: object, project: str, converted: list[Any], deadline: float) -> int:
        """One ``BatchWriteSpans`` call with the time left until `deadline` (one budget for every call)."""
        left_s = deadline - time.monotonic()
        if left_s <= 0:
            raise ExportError(ErrorClass.TIMEOUT, "the flush budget ran out between calls")
        from google.cloud import trace_v2

        request_type = trace_v2.BatchWriteSpansRequest
        raw = request_type.pb()(name=f"projects/{project}", spans=converted)
        try:
            client.batch_write_spans(  # type: ignore[attr-defined]
                request=request_type.wrap(raw), timeout=left_s, retry=None
            )
        except Exception as exc:
            raise classify_gcp_error(exc) from exc
        return 0

    def prepare(self) -> None:
        """Build the client (imports google-cloud-trace) ahead of the first flush."""
        self._get_client()

    def _project(self) -> str:
        project = self.project_id
        if not project:
            # Service account credentials know their project: no need for application default credentials.
            project = getattr(self._credentials, "project_id", None)
            if not project or not isinstance(project, str):
                import google.auth

                _, project = google.auth.default()
            if not project:
                raise ExportError(ErrorClass.AUTH, "no Google Cloud project: set GOOGLE_CLOUD_PROJECT")
            self.project_id = project
        return project

    def _get_client(self) -> object:
        with self._lock:  # `prepare` may be building it in a background thread
            if self._client is None:
                from google.cloud.trace_v2.services.trace_service import TraceServiceClient
                from google.cloud.trace_v2.services.trace_service.transports import TraceServiceGrpcTransport

                if self.insecure:
                    import grpc

                    channel = grpc.insecure_channel(str(self.endpoint))
                    self._client = TraceServiceClient(transport=TraceServiceGrpcTransport(channel=channel))
                else:
                    options = {"api_endpoint": self.endpoint} if self.endpoint else None
                    creds = self._credentials
                    self._client = TraceServiceClient(credentials=creds, client_options=options)  # type: ignore[arg-type]
            return self._client

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Nothing is held back: always True."""
        return True

    def shutdown(self) -> None:
        """Close the client's channel."""
        client, self._client = self._client, None
        transport = getattr(client, "transport", None)
        if transport is not None:
            transport.close()


class _Converted(list["ReadableSpan"]):
    """Spans a failed `send` converted and did not deliver, with their `messages` (one each, in order).

    Raised as `ExportError.undelivered`, so the resilience layer retries with
    this very list and `send` takes the messages instead of converting again.
    A list (not a tuple) because that is what `undelivered` has always been,
    and callers compare it with one.
    """

    __slots__ = ("messages", "project")

    def __init__(self, spans: Iterable[ReadableSpan], messages: list[Any], project: str) -> None:
        super().__init__(spans)
        self.messages = messages
        self.project = project

    def fits(self, project: str) -> bool:
        """Whether the messages still stand for the spans: same project (in their names), one per span."""
        return self.project == project and len(self.messages) == len(self)


def _convert_all(spans: Sequence[ReadableSpan], project: str) -> tuple[list[ReadableSpan], list[Any]]:
    """The spans that convert and their messages; each that does not is counted once (`_convert`)."""
    kept: list[ReadableSpan] = []
    converted: list[Any] = []
    for span in spans:
        pb = _convert(span, project)
        if pb is not None:
            kept.append(span)
            converted.append(pb)
    return kept, converted


def _convert(span: ReadableSpan, project: str) -> Any:
    """`to_span_pb`, with a span it fails on counted as a serialization drop (None)."""
    try:
        return to_span_pb(span, project)
    except Exception as exc:  # one odd span must not cost the batch
        guard.report("cloud_trace_convert", exc)
        stats.incr("spans_dropped_serialization")
        return None


def _hand_over(error: ExportError, kept: Sequence[ReadableSpan], converted: list[Any], project: str) -> None:
    """Set `error.undelivered` to the spans still to send, with their messages, for the retry to reuse.

    Nothing got through and nothing was left out (`undelivered` None): all of
    `kept`, which a retry would otherwise convert again. Else the spans
    `send_parts` named, matched to their messages by identity (the spans live
    through the call, so an id stands for one span).
    """
    left = error.undelivered
    if left is None:
        error.undelivered = kept if isinstance(kept, _Converted) else _Converted(kept, converted, project)
        return
    messages = {id(span): pb for span, pb in zip(kept, converted, strict=True)}
    error.undelivered = _Converted(left, [messages[id(span)] for span in left], project)


def classify_gcp_error(exc: BaseException) -> ExportError:
    """An `ExportError` for an exception from google-api-core, google-auth or gRPC."""
    if isinstance(exc, ExportError):
        return exc
    try:
        from google.api_core import exceptions as api
        from google.auth import exceptions as auth
    except ImportError:  # the extra is missing: nothing of theirs can have been raised
        return classify(exc)

    if isinstance(exc, api.GoogleAPICallError):
        status = exc.code if isinstance(exc.code, int) else None
        retry_after = None
        for detail in getattr(exc, "details", None) or ():
            delay = getattr(detail, "retry_delay", None)
            if delay is not None:
                retry_after = delay.seconds + delay.nanos / 1e9
        if isinstance(exc, api.DeadlineExceeded):
            error_class = ErrorClass.TIMEOUT
        elif isinstance(exc, api.ServiceUnavailable):
            text = str(exc).lower()
            unreachable = "failed to connect" in text or "connection refused" in text
            error_class = ErrorClass.NETWORK if unreachable else ErrorClass.SERVER
        elif isinstance(exc, (api.Unauthenticated, api.PermissionDenied)):
            error_class = ErrorClass.AUTH
        elif isinstance(exc, (api.ResourceExhausted, api.TooManyRequests)):
            error_class = ErrorClass.THROTTLED
        elif status is not None:
            error_class = classify_status(status)
        else:
            error_class = ErrorClass.UNKNOWN
        return ExportError(error_class, str(exc), retry_after_s=retry_after, status=status)
    if isinstance(exc, auth.GoogleAuthError):
        return ExportError(ErrorClass.AUTH, repr(exc))
    return classify(exc)


def _require(module: str, extra: str) -> None:
    """Fail at configuration time, with the fix, when an optional dependency is missing."""
    from importlib.util import find_spec

    try:
        spec = find_spec(module)
    except ImportError:
        spec = None
    if spec is None:
        raise ImportError(f"{module} is missing: pip install 'nexs-serverless[{extra}]'")


def from_settings(settings: Settings) -> CloudTraceExporter:
    """The exporter ``OTEL_TRACES_EXPORTER=gcp_trace`` stands for, configured from the environment."""
    from ..config import Reader, report

    reader = Reader(settings.environ)
    project = next(
        (settings.env(name).strip() for name in _PROJECT_VARIABLES if settings.env(name).strip()), None
    )
    endpoint = settings.env("NEXS_GCP_TRACE_ENDPOINT").strip() or None
    insecure = reader.boolean("NEXS_GCP_TRACE_INSECURE", default=False) and endpoint is not None
    timeout_ms = reader.integer("NEXS_GCP_TRACE_TIMEOUT_MS", default=1000, minimum=1, maximum=3_600_000)
    report(reader.problems)
    return CloudTraceExporter(project_id=project, endpoint=endpoint, insecure=insecure, timeout_ms=timeout_ms)
