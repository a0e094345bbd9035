"""The pytest plugin: the `nexs_spans` fixture as a user's own test suite sees it (pytester)."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

# Other installed plugins only slow the inner sessions down; ours still loads from its entry point.
_QUIET = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:anyio", "-p", "no:pytest_cov")

USER_TESTS = """
from nexs_serverless import traced_handler, tracer
from nexs_serverless.testing import LambdaContext, events


@traced_handler
def handler(event, context):
    with tracer.span("charge", attributes={"amount": 12}):
        pass
    return {"statusCode": 200}


def test_first(nexs_spans):
    handler(events.api_gateway_v2(method="POST", path="/orders"), LambdaContext())
    nexs_spans.assert_span("charge", parent="POST /orders", attributes={"amount": 12})
    nexs_spans.assert_span("POST /orders", attributes={"faas.coldstart": True})
    nexs_spans.assert_no_errors()


def test_second_starts_clean(nexs_spans):
    assert nexs_spans.get_finished_spans() == []
    handler(events.api_gateway_v2(method="GET", path="/health"), LambdaContext())
    nexs_spans.assert_trace_shape(("GET /health", ["charge"]))
    nexs_spans.assert_span("GET /health", attributes={"faas.coldstart": True})
"""


def test_fixture_is_registered_and_resets_between_tests(pytester: pytest.Pytester) -> None:
    """A user's suite gets `nexs_spans` from the entry point; each test starts cold and empty."""
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest_inprocess(*_QUIET)
    result.assert_outcomes(passed=2)


def test_failed_assertion_prints_the_trace_tree(pytester: pytest.Pytester) -> None:
    """A failing assertion in a user's test shows the reason and the captured trace in pytest's report."""
    pytester.makepyfile(
        test_user=USER_TESTS
        + """

def test_wrong_parent(nexs_spans):
    handler(events.api_gateway_v2(), LambdaContext())
    nexs_spans.assert_span("charge", parent="load-order")
"""
    )
    result = pytester.runpytest_inprocess(*_QUIET, "-k", "wrong_parent")
    result.assert_outcomes(failed=1, deselected=2)
    result.stdout.fnmatch_lines(
        [
            "*parent is 'POST /orders', expected 'load-order'*",
            "*captured trace:*",
            "*└── POST /orders [[]SERVER[]]*",
            "*└── charge*",
        ]
    )
    result.stdout.no_fnmatch_line("*recorder.py*")  # helper frames are hidden from the traceback


def test_reset_starts_every_counter_at_zero() -> None:
    """After `reset`, `stats()` has no count left from earlier work, the pool's included (its hits
    and recycles carried over before, though the docs promise counters start at zero)."""
    from nexs_serverless import stats, traced_handler
    from nexs_serverless.exporters import InMemoryExporter
    from nexs_serverless.testing import LambdaContext, reset

    reset(exporters=[InMemoryExporter()])

    @traced_handler
    def handler(event: object, context: object) -> str:
        return "ok"

    for _ in range(3):
        handler({}, LambdaContext())
    reset(exporters=[InMemoryExporter()])
    counts = {name: value for name, value in stats().items() if name != "pool_free" and value}
    assert counts == {}
