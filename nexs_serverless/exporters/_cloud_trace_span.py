"""Google Cloud Trace's span message (API v2 ``google.devtools.cloudtrace.v2.Span``) from one of our spans.

Split from `cloud_trace` so that the exporter module holds the transport (client,
calls, error classes) and this one the mapping, which follows OpenTelemetry's
own Cloud Trace exporter; `cloud_trace`'s docstring lists what maps to what and
the API's limits applied here. Loaded with `cloud_trace`, on first use of the
``gcp_trace`` exporter.
"""

from __future__ import annotations

import re

from ..model import StatusCode

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from ..typing import ReadableSpan

__all__ = ["MAX_ATTRIBUTES", "to_span_pb"]


MAX_ATTRIBUTES = 32
MAX_ANNOTATIONS = 32
MAX_ANNOTATION_ATTRIBUTES = 4  # the v2 API's limit per annotation (a span's is MAX_ATTRIBUTES)
MAX_LINKS = 128
MAX_FRAMES = 64
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
    **dict.fromkeys(("http.request_content_length", "http.request.body.size"), "/http/request/size"),
    **dict.fromkeys(("http.response_content_length", "http.response.body.size"), "/http/response/size"),
    "http.route": "/http/route",
}
# Keys other kinds of span have too (a database's, a queue's host): a console label on HTTP spans only.
_HTTP_ONLY = frozenset({"server.address"})
_FRAME = re.compile(r'^\s*File "([^"]*)", line (\d+), in (.*)$', re.MULTILINE)
_TRACEBACK_HEADER = "Traceback (most recent call last):"


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
    http = "http.request.method" in span.attributes or "http.method" in span.attributes
    for key, value in span.attributes.items():
        label = key if key in _HTTP_ONLY and not http else _LABELS.get(key, key)
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
