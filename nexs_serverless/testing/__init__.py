"""Test your traced handlers: events, context stand-ins, span capture and trace assertions.

Not imported by ``import nexs_serverless``: the layer never loads it.

    from nexs_serverless.testing import LambdaContext, capture_spans, events

    def test_handler():
        with capture_spans() as spans:
            handler(events.api_gateway_v2(method="GET", path="/orders"), LambdaContext())
        spans.assert_span("load-orders", parent="GET /orders")
        spans.assert_no_errors()

With pytest the ``nexs_spans`` fixture does the same (``docs/testing.md``).
The names below load on first use: pytest imports this package (for the
plugin) in every session of a project that has nexs-serverless installed,
tests of the tracer or not.
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False
if TYPE_CHECKING:
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

# Public name -> the module defining it (the name itself when it is a module).
_WHERE = {
    "AzureContext": "context",
    "LambdaContext": "context",
    "SpanRecorder": "recorder",
    "assert_no_errors": "assertions",
    "assert_span": "assertions",
    "assert_trace_shape": "assertions",
    "capture_spans": "state",
    "events": "events",
    "native": "native",
    "reset": "state",
}


def __getattr__(name: str) -> object:
    module_name = _WHERE.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f"{__name__}.{module_name}")
    value = module if module_name == name else getattr(module, name)
    globals()[name] = value  # once: later lookups find it without this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
