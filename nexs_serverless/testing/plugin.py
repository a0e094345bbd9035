"""pytest plugin (registered through the ``pytest11`` entry point): the ``nexs_spans`` fixture.

Installed with the package, so any project that has nexs-serverless and
pytest can ask for the fixture without a conftest line:

    def test_checkout(nexs_spans):
        handler(events.api_gateway_v2(method="POST", path="/orders"), LambdaContext())
        nexs_spans.assert_span("charge", parent="POST /orders")
        nexs_spans.assert_no_errors()
"""

from __future__ import annotations

import pytest

from .state import capture_spans

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

    from .recorder import SpanRecorder


@pytest.fixture
def nexs_spans() -> Iterator[SpanRecorder]:
    """Every span your traced code exports during the test, with trace assertions.

    The tracer is reset before and after the test: the first invocation is a
    cold start, nothing buffered by an earlier test shows up, and the
    environment's ``OTEL_*``/``NEXS_*`` variables are ignored (configure in
    code, or use `capture_spans(environ=...)`). Afterwards the instrumentation
    the test's first invocation installed is removed and the tracer's earlier
    configuration is back, so nothing leaks into the next test.
    """
    with capture_spans() as recorder:
        yield recorder
