"""After-response mode leaves the exporters' preparation to the extension, after the response."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import pytest
from support.runtime_api import RuntimeAPI

from nexs_serverless import extension, traced_handler, tracer
from nexs_serverless.exporters import ExportResult
from nexs_serverless.runtime import runtime
from nexs_serverless.testing import LambdaContext, reset
from nexs_serverless.typing import ReadableSpan

pytestmark = pytest.mark.usefixtures("fresh_extension")


class PreparedExporter:
    """A network-like exporter: it has `prepare()`, which `@traced_handler` calls in a thread."""

    def __init__(self) -> None:
        self.prepared_on: list[str] = []
        self.exported: list[str] = []
        self.prepared = threading.Event()

    def prepare(self) -> None:
        self.prepared_on.append(threading.current_thread().name)
        self.prepared.set()

    def export(self, spans: Sequence[ReadableSpan]) -> ExportResult:
        self.exported.extend(span.name for span in spans)
        return ExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


def _decorate() -> object:
    @traced_handler
    def handler(event: object, context: object) -> str:
        with tracer.span("work"):
            return "ok"

    return handler


def test_registered_extension_starts_no_preparation_thread_during_init() -> None:
    """Registering replaces the init-time preparation; the flush after the response exports."""
    exporter = PreparedExporter()
    with RuntimeAPI() as api:
        reset(
            environ={"NEXS_FLUSH_MODE": "after_response", "AWS_LAMBDA_RUNTIME_API": api.address},
            exporters=[exporter],
        )
        handler = _decorate()
        ext = extension.active()
        assert ext is not None
        assert not runtime._prepared  # no preparation thread was started
        assert handler({}, LambdaContext(aws_request_id="r-1")) == "ok"  # type: ignore[operator]
        assert exporter.exported == []  # handed over, not flushed on return
        ext.serve({"eventType": "INVOKE", "requestId": "r-1", "deadlineMs": int((time.time() + 30) * 1000)})
        assert sorted(exporter.exported) == ["test-function", "work"]
        assert exporter.prepared_on == []
        api.close()
        assert ext.thread is not None
        ext.thread.join(5)


def test_without_the_api_the_exporters_are_prepared_during_init() -> None:
    """The fallback to flush-on-return keeps the background preparation of flush-on-return."""
    exporter = PreparedExporter()
    reset(environ={"NEXS_FLUSH_MODE": "after_response"}, exporters=[exporter])
    handler = _decorate()
    assert extension.active() is None
    assert runtime._prepared
    assert exporter.prepared.wait(10)
    assert exporter.prepared_on == ["nexs-prepare-exporters"]
    assert handler({}, LambdaContext()) == "ok"  # type: ignore[operator]
    assert sorted(exporter.exported) == ["test-function", "work"]


def test_flush_on_return_still_prepares_during_init() -> None:
    """The default mode is unchanged: a network exporter is prepared in the background."""
    exporter = PreparedExporter()
    reset(environ={}, exporters=[exporter])
    _decorate()
    assert runtime._prepared
    assert exporter.prepared.wait(10)
    assert exporter.prepared_on == ["nexs-prepare-exporters"]
