"""Finished spans for the cloud exporters' tests: a Lambda resource, exception events, links.

`make_span` is `spans.make_span` with an ``orders`` function's ids, times and resource.
"""

from __future__ import annotations

import traceback

from nexs_serverless.finished import FinishedSpan
from nexs_serverless.model import Event, Link, Resource, SpanContext

from . import spans

__all__ = [
    "RESOURCE",
    "SPAN_ID",
    "START_NS",
    "TRACE_ID",
    "exception_event",
    "exception_event_of",
    "link_to",
    "make_span",
]

TRACE_ID = 0x5759E988BD862E3FE1BE46A994272793
SPAN_ID = 0x53995C3F42CD8AD8
START_NS = 1_700_000_000_123_456_789
RESOURCE = Resource(
    {
        "service.name": "orders",
        "cloud.platform": "aws_lambda",
        "cloud.region": "eu-west-1",
        "faas.name": "orders",
    }
)
_DEFAULTS: dict[str, object] = {
    "name": "GET /orders",
    "trace_id": TRACE_ID,
    "span_id": SPAN_ID,
    "start_ns": START_NS,
    "end_ns": START_NS + 25_000_000,
    "status_code": 0,
    "resource": RESOURCE,
}


def make_span(**fields: object) -> FinishedSpan:
    """A FinishedSpan of an ``orders`` Lambda function; any field can be overridden."""
    return spans.make_span(**{**_DEFAULTS, **fields})


def exception_event(exc: BaseException, timestamp_ns: int = START_NS + 1000) -> Event:
    """The ``exception`` event a span records for `exc` (raised here, so it has a traceback)."""
    try:
        raise exc
    except BaseException as caught:
        stack = "".join(traceback.format_exception(type(caught), caught, caught.__traceback__))
    return Event(
        "exception",
        timestamp_ns,
        {
            "exception.type": type(exc).__qualname__,
            "exception.message": str(exc),
            "exception.stacktrace": stack,
        },
    )


def exception_event_of(exc: BaseException) -> Event:
    """The ``exception`` event for `exc` already raised: its stack trace is the one `exc` carries.

    `exception_event` raises its argument here, for an exception made just for
    the event; this keeps what a real raise left (a chain, an exception
    group's frames) as `traceback.format_exception` writes it.
    """
    stack = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    attrs = {
        "exception.type": type(exc).__name__,
        "exception.message": str(exc),
        "exception.stacktrace": stack,
    }
    return Event("exception", START_NS + 1000, attrs)  # type: ignore[arg-type]


def link_to(trace_id: int, span_id: int, **attributes: object) -> Link:
    """A link to another span's context."""
    return Link(SpanContext(trace_id, span_id, 1, (), True), attributes)  # type: ignore[arg-type]
