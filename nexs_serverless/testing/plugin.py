"""pytest plugin (registered through the ``pytest11`` entry point): the ``nexs_spans`` fixture.

Installed with the package, so any project that has nexs-serverless and
pytest can ask for the fixture without a conftest line:

    def test_checkout(nexs_spans):
        handler(events.api_gateway_v2(method="POST", path="/orders"), LambdaContext())
        nexs_spans.assert_span("charge", parent="POST /orders")
        nexs_spans.assert_no_errors()

pytest loads this module in every session of such a project, before its
``conftest.py`` files and before plugins such as pytest-env set their
variables, so it imports only what a plain ``import nexs_serverless`` does:
the kit loads when a test asks for the fixture. That import already read the
environment, though, so once collection has ended the tracer reads it again
(see `pytest_collection_finish`).
"""

from __future__ import annotations

import os

import pytest

from ..runtime import runtime

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

    from .. import config
    from .recorder import SpanRecorder

# The settings `import nexs_serverless` read when pytest loaded this plugin; emptied once checked.
_at_load: list[config.Settings] = [runtime.settings]


@pytest.fixture
def nexs_spans() -> Iterator[SpanRecorder]:
    """Every span your traced code exports during the test, with trace assertions.

    The tracer is reset before and after the test: the first invocation is a
    cold start, nothing buffered by an earlier test shows up, no span or
    baggage left current by an earlier test is inherited, and the
    environment's ``OTEL_*``/``NEXS_*`` variables are ignored (configure in
    code, or use `capture_spans(environ=...)`). Afterwards the instrumentation
    the test's first invocation installed is removed and the tracer's earlier
    configuration is back, so nothing leaks into the next test.
    """
    from .state import capture_spans

    with capture_spans() as recorder:
        yield recorder


def pytest_collection_finish(session: pytest.Session) -> None:
    """Configure the tracer from the environment as it is now, unless code configured it since.

    Without this plugin, the first ``import nexs_serverless`` happens while
    the test modules are collected, after ``conftest.py`` (or pytest-env) has
    set ``OTEL_SDK_DISABLED``, ``OTEL_TRACES_EXPORTER`` and the like: with it,
    the package was imported before, and those settings were silently
    ignored. Once per process: a later in-process session (pytester) must not
    reconfigure a tracer in the middle of the outer test.
    """
    if not _at_load:
        return
    loaded = _at_load.pop()
    if runtime.settings is not loaded:  # `configure()` ran (a conftest, an import): it read the environment
        return
    if dict(os.environ) == loaded.environ:
        return
    from .. import config

    runtime.apply(config.from_env())
