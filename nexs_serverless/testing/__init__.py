"""Test your traced handlers: events, context stand-ins, span capture and trace assertions.

Not imported by ``import nexs_serverless``: the layer never loads it.

    from nexs_serverless.testing import LambdaContext, capture_spans, events

    def test_handler():
        with capture_spans() as spans:
            handler(events.api_gateway_v2(method="GET", path="/orders"), LambdaContext())
        spans.assert_span("load-orders", parent="GET /orders")
        spans.assert_no_errors()

With pytest the ``nexs_spans`` fixture does the same (``docs/testing.md``).
"""

from __future__ import annotations

from . import events, native
from .assertions import assert_no_errors, assert_span, assert_trace_shape
from .context import AzureContext, LambdaContext
from .recorder import SpanRecorder
from .state import capture_spans, reset

__all__ = [
    "AzureContext",
    "LambdaContext",
    "SpanRecorder",
    "assert_no_errors",
    "assert_span",
    "assert_trace_shape",
    "capture_spans",
    "events",
    "native",
    "reset",
]
