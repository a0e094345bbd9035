"""Review of the testing kit (session 12): what one test leaves in the context, what the pytest
plugin costs and reads when pytest loads it, and assertions given a generator."""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Callable

import pytest
from support.fresh_python import run_python

import nexs_serverless.testing
from nexs_serverless import baggage, tracer
from nexs_serverless.testing import assert_no_errors, assert_span, assert_trace_shape, capture_spans

pytest_plugins = ["pytester"]

# Other installed plugins only slow the inner sessions down; ours still loads from its entry point.
_QUIET = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:anyio", "-p", "no:pytest_cov")


def isolated(test: Callable[[], None]) -> Callable[[], None]:
    """Run `test` in a copy of the context, so that what it leaves current cannot reach other tests."""

    @functools.wraps(test)
    def run() -> None:
        contextvars.copy_context().run(test)

    return run


@isolated
def test_a_span_left_current_is_not_inherited_by_the_next_capture() -> None:
    """A span a test enters and never leaves is not the parent of the next test's spans (they joined
    its trace, and `assert_span(parent=None)` passed all the same)."""
    with capture_spans():
        tracer.span("left-open").__enter__()
    with capture_spans() as spans:
        assert tracer.current_span() is None
        with tracer.span("mine"):
            pass
    (mine,) = spans.collect()
    assert mine.parent_span_id == 0


@isolated
def test_what_was_current_before_the_block_comes_back_after_it() -> None:
    """The block starts with no span current and gives back the one that was current before it."""
    outer = tracer.span("outer")
    outer.__enter__()
    try:
        with capture_spans() as spans:
            with tracer.span("inside"):
                pass
        assert tracer.current_span() is outer
    finally:
        outer.__exit__(None, None, None)
    (inside,) = spans.collect()
    assert inside.trace_id != outer.trace_id


@isolated
def test_baggage_does_not_cross_the_block() -> None:
    """Baggage set before a capture is not seen inside it, and baggage set inside is gone after it."""
    baggage.set("tenant", "before")
    with capture_spans():
        assert baggage.get_all() == {}
        baggage.set("tenant", "inside")
    assert baggage.get_all() == {"tenant": "before"}


def test_assertions_read_a_generator_of_spans_once() -> None:
    """Assertions given a generator see every span (one read it twice: `assert_trace_shape(gen)`,
    which asserts that nothing was captured, passed on a non-empty capture)."""
    with capture_spans() as spans:
        with tracer.span("root"):
            with tracer.span("child"):
                pass
    captured = spans.collect()
    with pytest.raises(AssertionError, match="trace shape differs"):
        assert_trace_shape(span for span in captured)
    assert_trace_shape((span for span in captured), ("root", ["child"]))
    assert_span((span for span in captured), "child", parent="root")
    assert_no_errors(span for span in captured)


def test_every_public_name_of_the_kit_resolves() -> None:
    """Each name in `nexs_serverless.testing.__all__` is there (they load on first use) and is listed."""
    for name in nexs_serverless.testing.__all__:
        assert getattr(nexs_serverless.testing, name) is not None
    assert set(nexs_serverless.testing.__all__) <= set(dir(nexs_serverless.testing))
    with pytest.raises(AttributeError):
        nexs_serverless.testing.no_such_name  # noqa: B018


def test_loading_the_plugin_imports_no_more_than_the_package() -> None:
    """pytest loads the plugin in every session of a project with nexs-serverless installed: it
    imports what `import nexs_serverless` does, and the kit only when a test asks for it."""
    script = (
        "import sys, pytest, nexs_serverless\n"
        "before = set(sys.modules)\n"
        "import nexs_serverless.testing.plugin\n"
        "print(sorted(set(sys.modules) - before))"
    )
    done = run_python(script)
    assert done.stdout.strip() == "['nexs_serverless.testing', 'nexs_serverless.testing.plugin']"


def test_the_environment_a_conftest_sets_is_read(pytester: pytest.Pytester) -> None:
    """Variables a conftest.py sets configure the tracer, as they do without the plugin (pytest
    imported the package for the plugin first, and `OTEL_SDK_DISABLED=true` there was ignored)."""
    pytester.makeconftest("import os\nos.environ['OTEL_SDK_DISABLED'] = 'true'\n")
    pytester.makepyfile(
        test_user="""
        from nexs_serverless import tracer


        def test_tracing_is_off():
            with tracer.span("work") as span:
                assert not span.is_recording()
        """
    )
    result = pytester.runpytest_subprocess(*_QUIET)
    result.assert_outcomes(passed=1)


def test_a_configuration_made_in_code_is_kept(pytester: pytest.Pytester) -> None:
    """A conftest that configures the tracer in code keeps that configuration: only a tracer nobody
    configured reads the environment again."""
    pytester.makeconftest(
        """
        import os

        import nexs_serverless

        os.environ["OTEL_SERVICE_NAME"] = "from-the-environment"
        nexs_serverless.configure(service_name="from-code")
        os.environ["OTEL_SDK_DISABLED"] = "true"
        """
    )
    pytester.makepyfile(
        test_user="""
        from nexs_serverless import tracer
        from nexs_serverless.runtime import runtime


        def test_configured_in_code():
            assert runtime.settings.service_name == "from-code"
            with tracer.span("work") as span:
                assert span.is_recording()
        """
    )
    result = pytester.runpytest_subprocess(*_QUIET)
    result.assert_outcomes(passed=1)
