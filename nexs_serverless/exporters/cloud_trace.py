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
  out and counted (``spans_dropped_serialization``).

Messages are raw protobuf objects wrapped once (proto-plus conversions are
slow). The client is built once and reused; each call gets the time left in
the flush budget and no retry (the resilience layer decides).

Environment (read from the settings snapshot by `from_settings`):

- ``GOOGLE_CLOUD_PROJECT`` (also ``GCLOUD_PROJECT``, ``GCP_PROJECT``): the project;
  else the one google-auth finds on first export.
- ``NEXS_GCP_TRACE_ENDPOINT`` (Google's): another ``host:port``.
- ``NEXS_GCP_TRACE_INSECURE`` (false): plaintext gRPC to that endpoint (local emulators, tests).
- ``NEXS_GCP_TRACE_TIMEOUT_MS`` (1000): the most one call may take (capped by the flush budget).
"""

from __future__ import annotations

import re
import threading
import time

from .. import _guard as guard
from .. import _stats as stats
from ..config import ConfigError
from ..model import StatusCode
from .base import ExportResult, send_once
from .errors import ErrorClass, ExportError, classify, classify_status

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any

    from ..config import Settings
    from ..typing import ReadableSpan

__all__ = ["CloudTraceExporter", "classify_gcp_error", "from_settings"]

MAX_ATTRIBUTES = 32
MAX_ANNOTATIONS = 32
MAX_ANNOTATION_ATTRIBUTES = 4  # the v2 API's limit per annotation (a span's is MAX_ATTRIBUTES)
MAX_LINKS = 128
MAX_FRAMES = 64
MAX_SPANS_PER_CALL = 1000
_KEY_BYTES = 128
_VALUE_BYTES = 256
_NAME_BYTES = 128
_FUNCTION_BYTES = 1024  # StackFrame.function_name
_FILE_BYTES = 256  # StackFrame.file_name
# OpenTelemetry attribute -> the label Cloud Trace's console shows for it.
_LABELS = {
    **dict.fromkeys(("http.method", "http.request.method"), "/http/method"),
    **dict.fromkeys(("http.status_code", "http.response.status_code"), "/http/status_code"),
    **dict.fromkeys(("http.url", "url.full"), "/http/url"),
    **dict.fromkeys(("http.host", "server.address"), "/http/host"),
    **dict.fromkeys(("http.user_agent", "user_agent.original"), "/http/user_agent"),
    **dict.fromkeys(("http.response_content_length", "http.response.body.size"), "/http/response/size"),
    "http.route": "/http/route",
    "http.request_content_length": "/http/request/size",
}
_FRAME = re.compile(r'^\s*File "([^"]*)", line (\d+), in (.*)$', re.MULTILINE)
_TRACEBACK_HEADER = "Traceback (most recent call last):"
_PROJECT_VARIABLES = ("GOOGLE_CLOUD_PROJECT", "GCLOUD_PROJECT", "GCP_PROJECT")


class CloudTraceExporter:
    """Exports spans to Google Cloud Trace.

    Args:
        project_id: the Google Cloud project (None: google-auth's default project).
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

    def send(self, spans: Sequence[ReadableSpan], timeout_s: float) -> int:
        """``BatchWriteSpans`` calls of at most 1000 spans, all within `timeout_s`; returns 0.

        A span that cannot be converted is left out and counted
        (``spans_dropped_serialization``); it is not "rejected" by the back end.

        Raises:
            ExportError: classified (see `classify_gcp_error`).
        """
        if not spans:
            return 0
        if timeout_s <= 0:
            raise ExportError(ErrorClass.TIMEOUT, "no time left in the flush budget")
        from google.cloud import trace_v2

        try:
            client = self._get_client()
            project = self._project()
        except ExportError:
            raise
        except Exception as exc:
            raise classify_gcp_error(exc) from exc
        converted = [pb for pb in (_convert(span, project) for span in spans) if pb is not None]
        deadline = time.monotonic() + timeout_s  # the calls' budget (building the client is not a call)
        request_type = trace_v2.BatchWriteSpansRequest
        for start in range(0, len(converted), MAX_SPANS_PER_CALL):
            left_s = deadline - time.monotonic()  # one budget for every call, not one each
            if left_s <= 0:
                raise ExportError(ErrorClass.TIMEOUT, "the flush budget ran out between calls")
            raw = request_type.pb()(
                name=f"projects/{project}", spans=converted[start : start + MAX_SPANS_PER_CALL]
            )
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


def _convert(span: ReadableSpan, project: str) -> Any:
    """`to_span_pb`, with a span it fails on counted as a serialization drop (None)."""
    try:
        return to_span_pb(span, project)
    except Exception as exc:  # one odd span must not cost the batch
        guard.report("cloud_trace_convert", exc)
        stats.incr("spans_dropped_serialization")
        return None


def to_span_pb(span: ReadableSpan, project: str) -> Any:
    """The raw protobuf ``google.devtools.cloudtrace.v2.Span`` for `span`."""
    from google.cloud import trace_v2
    from google.protobuf import timestamp_pb2, wrappers_pb2
    from google.rpc import status_pb2

    span_type = trace_v2.Span.pb()
    span_hex = f"{span.span_id:016x}"
    # The agent and the service come first, so that the 32-attribute cut never takes them.
    attrs: dict[str, object] = {"g.co/agent": f"nexs_serverless {span.instrumentation_scope.version}"}
    service = span.attributes.get("service.name", span.resource.attributes.get("service.name"))
    if service is not None:
        attrs["service.name"] = service
    dropped = span.dropped_attributes
    for key, value in span.attributes.items():
        label = _LABELS.get(key, key)
        if label not in attrs:
            attrs[label] = value
        elif key != "service.name":  # two keys for one label (http.method, http.request.method)
            dropped += 1
    fields: dict[str, object] = {
        "name": f"projects/{project}/traces/{span.trace_id:032x}/spans/{span_hex}",
        "span_id": span_hex,
        "display_name": _string(span.name, _NAME_BYTES),
        "start_time": _timestamp(timestamp_pb2, span.start_ns),
        "end_time": _timestamp(timestamp_pb2, span.end_ns or span.start_ns),
        "attributes": _attributes(span_type, attrs, dropped),
        "span_kind": span.kind + 1 if 0 <= span.kind < 5 else 0,
    }
    if span.parent_span_id:
        fields["parent_span_id"] = f"{span.parent_span_id:016x}"
        fields["same_process_as_parent_span"] = wrappers_pb2.BoolValue(value=not span.parent_is_remote)
    events = list(span.events)
    if events or span.dropped_events:
        kept = events[:MAX_ANNOTATIONS]
        fields["time_events"] = span_type.TimeEvents(
            time_event=[
                span_type.TimeEvent(
                    time=_timestamp(timestamp_pb2, event.timestamp_ns),
                    annotation=span_type.TimeEvent.Annotation(
                        description=_string(event.name, _VALUE_BYTES),
                        attributes=_attributes(
                            span_type, event.attributes, event.dropped_attributes, MAX_ANNOTATION_ATTRIBUTES
                        ),
                    ),
                )
                for event in kept
            ],
            dropped_annotations_count=len(events) - len(kept) + span.dropped_events,
        )
    links = list(span.links)
    if links or span.dropped_links:
        kept_links = links[:MAX_LINKS]
        fields["links"] = span_type.Links(
            link=[
                span_type.Link(
                    trace_id=f"{link.context.trace_id:032x}",
                    span_id=f"{link.context.span_id:016x}",
                    attributes=_attributes(span_type, link.attributes, link.dropped_attributes),
                )
                for link in kept_links
            ],
            dropped_links_count=len(links) - len(kept_links) + span.dropped_links,
        )
    if span.status_code == StatusCode.ERROR:
        fields["status"] = status_pb2.Status(code=2, message=_valid(span.status_description or ""))
    elif span.status_code == StatusCode.OK:
        fields["status"] = status_pb2.Status(code=0)
    stack = _stack_trace(span)
    if stack is not None:
        fields["stack_trace"] = stack
    return span_type(**fields)


def _attributes(
    span_type: Any, attributes: Mapping[str, object], dropped: int, limit: int = MAX_ATTRIBUTES
) -> Any:
    """The first `limit` attributes (the API's cap where they go); the rest added to `dropped`.

    A key cut to 128 bytes that then equals a key already kept is dropped (and
    counted) rather than silently replacing that one.
    """
    from google.cloud import trace_v2

    value_type = trace_v2.AttributeValue.pb()
    out: dict[str, object] = {}
    for key, value in attributes.items():
        name = key.encode("utf-8", "replace")[:_KEY_BYTES].decode("utf-8", "ignore")
        if len(out) >= limit or name in out:
            dropped += 1
            continue
        if isinstance(value, bool):
            out[name] = value_type(bool_value=value)
        elif isinstance(value, int) and -(1 << 63) <= value < (1 << 63):
            out[name] = value_type(int_value=value)
        elif isinstance(value, (list, tuple)):
            out[name] = value_type(string_value=_string(",".join(str(item) for item in value), _VALUE_BYTES))
        else:
            out[name] = value_type(string_value=_string(str(value), _VALUE_BYTES))
    return span_type.Attributes(attribute_map=out, dropped_attributes_count=dropped)


def _string(text: str, limit: int) -> Any:
    """A ``TruncatableString`` of at most `limit` UTF-8 bytes, with the bytes cut counted.

    Cut on a character boundary, as the API asks; a lone surrogate becomes ``?``.
    """
    from google.cloud import trace_v2

    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:  # protobuf refuses it; replaced here, the span still goes out
        data = text.encode("utf-8", "replace")
        text = data.decode("utf-8")
    if len(data) <= limit:
        return trace_v2.TruncatableString.pb()(value=text, truncated_byte_count=0)
    kept = data[:limit].decode("utf-8", "ignore")
    cut = len(data) - len(kept.encode("utf-8"))
    return trace_v2.TruncatableString.pb()(value=kept, truncated_byte_count=cut)


def _valid(text: str) -> str:
    """`text` with any lone surrogate replaced by ``?`` (protobuf strings must be valid UTF-8)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    return text


def _timestamp(timestamp_pb2: Any, ns: int) -> Any:
    return timestamp_pb2.Timestamp(seconds=ns // 1_000_000_000, nanos=ns % 1_000_000_000)


def _stack_trace(span: ReadableSpan) -> Any:
    """The first exception's stack (most recent call first), or None.

    ``exception.stacktrace`` is ``traceback.format_exception`` text: with
    chained exceptions (``raise ... from``, or raised while handling another)
    it holds one traceback per exception, the raised one last. Only that last
    one is the stack at the time of the error; the others' frames would make
    it look deeper than it was.
    """
    for event in span.events:
        text = event.attributes.get("exception.stacktrace") if event.name == "exception" else None
        if not isinstance(text, str):
            continue
        header = text.rfind(_TRACEBACK_HEADER)
        frames = _FRAME.findall(text, header if header >= 0 else 0)
        if not frames:
            return None
        from google.cloud import trace_v2

        stack_type = trace_v2.StackTrace.pb()
        frames.reverse()
        kept = frames[:MAX_FRAMES]
        return stack_type(
            stack_frames=stack_type.StackFrames(
                frame=[
                    stack_type.StackFrame(
                        function_name=_string(label.strip(), _FUNCTION_BYTES),
                        file_name=_string(path, _FILE_BYTES),
                        line_number=int(line),
                    )
                    for path, line, label in kept
                ],
                dropped_frames_count=len(frames) - len(kept),
            )
        )
    return None


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
    project = next((settings.env(name) for name in _PROJECT_VARIABLES if settings.env(name)), None)
    endpoint = settings.env("NEXS_GCP_TRACE_ENDPOINT").strip() or None
    insecure = reader.boolean("NEXS_GCP_TRACE_INSECURE", default=False) and endpoint is not None
    timeout_ms = reader.integer("NEXS_GCP_TRACE_TIMEOUT_MS", default=1000, minimum=1)
    report(reader.problems)
    return CloudTraceExporter(project_id=project, endpoint=endpoint, insecure=insecure, timeout_ms=timeout_ms)
