"""Spans as AWS X-Ray segment documents (the JSON the daemon and ``PutTraceSegments`` take).

The mapping follows the X-Ray segment document schema and what the
OpenTelemetry Collector's ``awsxray`` exporter does with the same data:

- ids: the trace id ``1-xxxxxxxx-xxxxxxxxxxxxxxxxxxxxxxxx`` is the 128-bit
  OpenTelemetry trace id split after 8 hex digits (X-Ray reads those as the
  epoch second in its own ids; for a W3C id "this is not required or
  validated", PutTraceSegments' reference says), the document id is the span
  id in 16 hex digits. A span whose ids cannot be written that way (0, or too
  wide) is refused here (``ValueError``, counted by `xray_pack`): embedded in a
  nested document it would cost X-Ray's refusal of the whole tree.
- times: float epoch seconds. An end before the start is sent as the start
  (X-Ray draws no negative duration) with the reported end in
  ``metadata.otel.reported_end_time``; a span without an end is ``in_progress``.
- segment or subsegment: inside a traced Lambda invocation every span of the
  invocation's trace is a subsegment (roots hang under the function segment
  that Lambda records, named by ``_X_AMZN_TRACE_ID``), also when the span is
  sent in a later invocation's flush (each span goes by its own trace's
  segment, `xray_lambda.remember`); elsewhere, and for a root of another trace
  (a caller's W3C ``traceparent``), a local root or a span whose parent is
  remote is a segment named after ``service.name``. Inside Lambda, such a
  segment claims Lambda's origin (``AWS::Lambda::Function``) only for a trace
  whose invocation is known not to have a function segment of Lambda's
  (``Sampled=0``): a trace the exporter no longer remembers (or never saw: a
  flush the breaker skipped) may have one, and a second would duplicate the
  function. A caller's trace cannot be told from such a one, so its root goes
  without the origin too (as every segment of the Collector's ``awsxray``
  exporter, which never claims it).
- ``fault`` (5xx or status ERROR), ``error`` (4xx), ``throttle`` (429); ``cause``
  from the ``exception`` events, with the Python stack parsed into frames
  (`xray_cause`).
- ``http``, ``aws`` (AWS SDK calls, namespace ``aws``), ``sql`` blocks (SQL
  databases only, as the Collector does: a DynamoDB or Redis call has no
  query X-Ray could show), built by `xray_blocks`; CLIENT and PRODUCER spans get namespace ``remote``
  and are named after the remote service so that the service map shows it.
  An HTTP status that is not an integer stays in metadata.
- a segment's ``user`` from ``enduser.id``, ``service.version`` and
  ``aws.account_id`` from the resource (the Collector's mapping; X-Ray has
  these on segments only).
- annotations from the configured attribute keys and from Powertools'
  ``aws.xray.annotation.*``, metadata namespaces from ``aws.xray.metadata.*``
  (`xray_values`); every other attribute is metadata (namespace ``default``);
  what X-Ray has no field for (span name, kind, events, links, dropped counts)
  is metadata namespace ``otel``.
"""

from __future__ import annotations

import re

from ..model import SpanKind, StatusCode
from .xray_blocks import HTTP_KEYS, HTTP_URL, REMOTE_NAME, aws_block, first, host_of, http_block, sql_block
from .xray_cause import cause_of, set_flags
from .xray_lambda import LambdaSegment, parse_trace_header
from .xray_values import MAX_ANNOTATIONS, annotate, jsonable, jsonable_map, recorded_for_xray

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

    from ..typing import ReadableSpan

__all__ = [
    "MAX_ANNOTATIONS",
    "LambdaSegment",
    "SegmentOptions",
    "parse_trace_header",
    "to_document",
    "xray_trace_id",
]

_NAME_LENGTH = 200
_CACHE_SIZE = 256  # trace ids and cleaned names remembered across batches
_TRACE_IDS: dict[int, str] = {}
_NAMES: dict[str, str] = {}
_PLAIN = frozenset((str, int, bool))  # attribute value types JSON takes as they are

_ACCOUNT = ("cloud.account.id",)
_TRACE_ID_LIMIT = 1 << 128
_SPAN_ID_LIMIT = 1 << 64

# Characters X-Ray allows in a name: Unicode letters and digits, whitespace and
# _ . : / % & # = + \ - @. Of whitespace only the space is kept (as the Collector
# does): a tab, a newline or a control character that Python counts as whitespace
# (\x1c-\x1f) becomes "_" like any other refused character.
_NAME_BAD = re.compile(r"[^\w .:/%&#=+\\\-@]")

_LAMBDA_ORIGIN = "AWS::Lambda::Function"
_ORIGINS = {
    "aws_lambda": _LAMBDA_ORIGIN,
    "aws_ec2": "AWS::EC2::Instance",
    "aws_ecs": "AWS::ECS::Container",
    "aws_eks": "AWS::EKS::Container",
    "aws_elastic_beanstalk": "AWS::ElasticBeanstalk::Environment",
}


class SegmentOptions:
    """What the mapping needs besides the span.

    Attributes:
        annotation_keys: attribute keys recorded as annotations (``"*"``: every scalar attribute).
        in_lambda: the process runs in Lambda: a root of a trace not in `lambda_segments`
            does not claim Lambda's origin (placement itself goes by `lambda_segments`).
        lambda_segments: invocations' function segments by trace id, from
            ``_X_AMZN_TRACE_ID`` (`xray_lambda.remember`): roots of each one's trace
            become its subsegments. `lambda_segment` (one invocation's) is added to them.
    """

    __slots__ = ("annotate_all", "annotation_keys", "in_lambda", "lambda_segments")

    def __init__(
        self,
        annotation_keys: tuple[str, ...] = (),
        *,
        in_lambda: bool = False,
        lambda_segment: LambdaSegment | None = None,
        lambda_segments: Mapping[int, LambdaSegment] | None = None,
    ) -> None:
        self.annotate_all = "*" in annotation_keys
        self.annotation_keys = tuple(key for key in annotation_keys if key != "*")
        self.in_lambda = in_lambda
        segments = lambda_segments if lambda_segments is not None else {}
        if lambda_segment is not None:
            segments = {**segments, lambda_segment.trace_id: lambda_segment}
        self.lambda_segments: Mapping[int, LambdaSegment] = segments


def xray_trace_id(trace_id: int) -> str:
    """``1-xxxxxxxx-xxxxxxxxxxxxxxxxxxxxxxxx`` for a 128-bit trace id.

    Remembered (a batch's spans share a few trace ids): formatting costs more
    than the lookup. The memory is bounded by `_CACHE_SIZE`.
    """
    text = _TRACE_IDS.get(trace_id)
    if text is None:
        hex_id = f"{trace_id:032x}"
        text = f"1-{hex_id[:8]}-{hex_id[8:]}"
        if len(_TRACE_IDS) >= _CACHE_SIZE:
            _TRACE_IDS.clear()
        _TRACE_IDS[trace_id] = text
    return text


def to_document(span: ReadableSpan, options: SegmentOptions) -> dict[str, object]:
    """The X-Ray segment or subsegment document for `span` (a JSON-ready dict).

    Raises:
        ValueError: for a trace, span or parent id X-Ray cannot take (0, or wider
            than 128/64 bits); `xray_pack` counts the span as a serialization drop.
    """
    trace_id, span_id, parent = span.trace_id, span.span_id, span.parent_span_id
    if not (0 < trace_id < _TRACE_ID_LIMIT and 0 < span_id < _SPAN_ID_LIMIT) or (
        parent and not 0 < parent < _SPAN_ID_LIMIT
    ):
        raise ValueError(f"ids X-Ray cannot take: trace {trace_id!r}, span {span_id!r}, parent {parent!r}")
    attrs = span.attributes
    used: set[str] = set()
    kind = span.kind
    remote_call = kind in (SpanKind.CLIENT, SpanKind.PRODUCER)
    aws_call = remote_call and attrs.get("rpc.system") == "aws-api"
    start_ns, end_ns = span.start_ns, span.end_ns
    doc: dict[str, object] = {
        "id": f"{span_id:016x}",
        "trace_id": xray_trace_id(trace_id),
        "start_time": start_ns / 1e9,
    }
    otel: dict[str, object] = {"kind": SpanKind.name_of(kind)}
    if not end_ns:
        doc["in_progress"] = True  # X-Ray's word for "started, not ended" (never a zero duration)
    elif end_ns < start_ns:  # a clock step, or an explicit end time before the start
        doc["end_time"] = doc["start_time"]
        otel["reported_end_time"] = end_ns / 1e9
    else:
        doc["end_time"] = end_ns / 1e9
    segment = _place(span, options, doc)
    if segment:
        service = span.resource.attributes.get("service.name")
        name: object = service or span.name
        origin = _ORIGINS.get(str(span.resource.attributes.get("cloud.platform", "")))
        if origin and not (
            origin is _LAMBDA_ORIGIN and options.in_lambda and span.trace_id not in options.lambda_segments
        ):
            doc["origin"] = origin
        version = span.instrumentation_scope.version
        sdk: dict[str, object] = {"sdk": "nexs_serverless"}
        if version:
            sdk["sdk_version"] = version
        aws_fields: dict[str, object] = {"xray": sdk}
        # The account running the service (the Collector's mapping): in Lambda the
        # invocation span has it (from the function's ARN), elsewhere the resource may.
        account = first(attrs, _ACCOUNT, used) or span.resource.attributes.get("cloud.account.id")
        if account:
            aws_fields["account_id"] = str(account)
        doc["aws"] = aws_fields
        service_version = span.resource.attributes.get("service.version")
        if service_version:
            doc["service"] = {"version": str(service_version)}
        user = attrs.get("enduser.id")
        if user is not None:  # X-Ray's indexed user field exists on segments only
            doc["user"] = str(user)
            used.add("enduser.id")
    elif aws_call:
        name = attrs.get("rpc.service") or span.name
        doc["namespace"] = "aws"
    elif remote_call:
        name = first(attrs, REMOTE_NAME, used) or host_of(first(attrs, HTTP_URL, set())) or span.name
        doc["namespace"] = "remote"
    else:
        name = span.name
    cleaned = _clean_name(name if type(name) is str else str(name))
    doc["name"] = cleaned
    if cleaned != span.name:
        otel["span_name"] = span.name
    if aws_call:
        aws = aws_block(attrs, used)
        if aws:
            existing = doc.get("aws")
            doc["aws"] = {**existing, **aws} if isinstance(existing, dict) else aws
    status = None
    if attrs and not HTTP_KEYS.isdisjoint(attrs):
        http, status = http_block(attrs, kind, used)
        if http:
            doc["http"] = http
    if attrs and ("db.system" in attrs or "db.system.name" in attrs):
        sql = sql_block(attrs, used)
        if sql is not None:
            doc["sql"] = sql
        if not segment:  # a subsegment field: a segment is the service itself, not a call it made
            doc.setdefault("namespace", "remote")
    if status is not None or span.status_code == StatusCode.ERROR:
        set_flags(span, status, doc)
    if span.events or span.status_code == StatusCode.ERROR:
        cause = cause_of(span, remote=remote_call)
        if cause:
            doc["cause"] = cause
    metadata: dict[str, object] = {}
    annotations: dict[str, object] = {}
    # Annotations and metadata recorded the X-Ray way (Powertools' put_annotation/put_metadata
    # through `powertools.NexsProvider`): back to their own fields, under their own names.
    xray_keys = [key for key in attrs if key.startswith("aws.xray.")] if attrs else None
    if xray_keys:
        recorded_for_xray(attrs, xray_keys, used, annotations, metadata)
    if options.annotate_all or options.annotation_keys:
        annotate(attrs, options.annotation_keys, options.annotate_all, used, annotations)
    if annotations:
        doc["annotations"] = annotations
    # Most values are str/int/bool: kept as they are without a call per value.
    rest = {
        key: value if type(value) in _PLAIN else jsonable(value)
        for key, value in attrs.items()
        if key not in used
    }
    if rest:
        recorded = metadata.get("default")
        metadata["default"] = {**rest, **recorded} if isinstance(recorded, dict) else rest
    if (
        span.events
        or span.links
        or span.force_ended
        or span.status_code == StatusCode.ERROR
        or span.dropped_attributes
        or span.dropped_events
        or span.dropped_links
    ):
        _otel_extras(span, otel)
    metadata["otel"] = otel
    doc["metadata"] = metadata
    return doc


def _place(span: ReadableSpan, options: SegmentOptions, doc: dict[str, object]) -> bool:
    """Set ``parent_id``/``type``; True when the document is a segment rather than a subsegment."""
    parent = span.parent_span_id
    if parent and not span.parent_is_remote:
        doc["parent_id"] = f"{parent:016x}"
        doc["type"] = "subsegment"
        return False
    # Looked up by the span's own trace, not the current invocation's: a span carried
    # over from an earlier invocation belongs under that invocation's function segment.
    lam = options.lambda_segments.get(span.trace_id) if options.lambda_segments else None
    if lam is not None and lam.sampled:
        # A root of an invocation's trace (whatever carried its parent in) belongs
        # under the function segment Lambda records for that invocation; a parent
        # from another trace (e.g. the caller's ``traceparent``) has no segment
        # here to hang under, so such a root is a segment linked to it, as outside Lambda.
        doc["parent_id"] = lam.parent_id
        doc["type"] = "subsegment"
        return False
    if parent:
        doc["parent_id"] = f"{parent:016x}"
    return True


def _otel_extras(span: ReadableSpan, otel: dict[str, object]) -> None:
    if span.status_code == StatusCode.ERROR and span.status_description:
        otel["status_message"] = span.status_description
    events = [
        {"name": e.name, "time": e.timestamp_ns / 1e9, "attributes": jsonable_map(e.attributes)}
        for e in span.events
        if e.name != "exception"
    ]
    if events:
        otel["events"] = events
    if span.links:
        otel["links"] = [
            {
                "trace_id": xray_trace_id(link.context.trace_id),
                "id": f"{link.context.span_id:016x}",
                "attributes": jsonable_map(link.attributes),
            }
            for link in span.links
        ]
    dropped = _dropped(span)
    if dropped:
        otel["dropped"] = dropped
    if span.force_ended:
        otel["force_ended"] = True


def _dropped(span: ReadableSpan) -> dict[str, int]:
    counts = (
        ("attributes", span.dropped_attributes),
        ("events", span.dropped_events),
        ("links", span.dropped_links),
    )
    return {name: count for name, count in counts if count}


def _clean_name(name: str) -> str:
    cleaned = _NAMES.get(name)
    if cleaned is None:
        cleaned = _NAME_BAD.sub("_", name)[:_NAME_LENGTH].strip() or "unknown"
        if len(_NAMES) >= _CACHE_SIZE:
            _NAMES.clear()
        _NAMES[name] = cleaned
    return cleaned
