"""The public surface: exactly the intended names, and nothing heavy behind them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import nexs_serverless

EXPECTED = [
    "ConfigError",
    "Link",
    "Span",
    "SpanContext",
    "SpanKind",
    "StatusCode",
    "Tracer",
    "__version__",
    "baggage",
    "configure",
    "current_span",
    "extract",
    "flush",
    "inject",
    "instrument",
    "stats",
    "traced_handler",
    "tracer",
    "uninstrument",
    "wrap",
]

HEAVY = (
    "opentelemetry",
    "google.protobuf",
    "grpc",
    "boto3",
    "botocore",
    "google.cloud",
    "azure",
    "urllib3",
    "requests",
    "http.client",
    "ssl",
    "click",
    "typer",
    "rich",
    "socket",
    "typing",
    "dataclasses",
    "inspect",
    "asyncio",
    "random",
)


def test_all_is_sorted_and_exact() -> None:
    """`__all__` lists exactly the public names, sorted."""
    assert nexs_serverless.__all__ == EXPECTED
    assert sorted(nexs_serverless.__all__) == nexs_serverless.__all__
    for name in EXPECTED:
        assert getattr(nexs_serverless, name) is not None


def test_import_is_lean_threadless_and_side_effect_free() -> None:
    """Import + decorating loads no heavy module, starts no thread, leaves the environment alone."""
    code = """
import json, os, sys, threading
import awslambdaric.bootstrap
before_modules = set(sys.modules)
before_env = dict(os.environ)
before_threads = threading.active_count()
import nexs_serverless
from nexs_serverless import traced_handler, tracer

@traced_handler
def handler(event, context):
    return 1

print(json.dumps({
    "new": sorted(set(sys.modules) - before_modules),
    "env_same": dict(os.environ) == before_env,
    "threads": threading.active_count() - before_threads,
}))
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "NEXS_"))}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    report = json.loads(out.stdout)
    heavy = [m for m in report["new"] if any(m == h or m.startswith(h + ".") for h in HEAVY)]
    assert heavy == []
    assert report["env_same"] is True
    assert report["threads"] == 0
    ours = [m for m in report["new"] if m.startswith("nexs_serverless")]
    assert "nexs_serverless.exporters" not in ours
    assert "nexs_serverless.invocation" not in ours


def test_testing_kit_and_cli_are_not_imported_by_the_package() -> None:
    """The CLI, the testing kit and exporters load only when asked for."""
    code = "import sys, nexs_serverless; print([m for m in sys.modules if m.startswith('nexs_serverless.')])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = out.stdout
    for name in ("testing", "cli", "exporters", "propagation", "instrumentation", "_speedups", "context"):
        assert f"'nexs_serverless.{name}" not in loaded


def test_outside_lambda_the_import_loads_only_threading_from_the_standard_library() -> None:
    """Cloud Functions, Azure and scripts have not loaded `logging` or `traceback`: we do not either."""
    code = """
import json, sys
before = set(sys.modules)
import nexs_serverless
from nexs_serverless import traced_handler

@traced_handler
def handler(event, context):
    return 1

print(json.dumps(sorted(m for m in set(sys.modules) - before if not m.startswith("nexs_serverless"))))
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "NEXS_"))}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    loaded = set(json.loads(out.stdout))
    assert not loaded & {"logging", "traceback", "re", "typing", "dataclasses", "enum", "random", "socket"}
    assert loaded <= {"_weakrefset", "threading"}


FIRST_SPAN = """
import json, sys
from nexs_serverless import SpanContext, configure, traced_handler, tracer
from nexs_serverless.exporters import InMemoryExporter


@traced_handler
def handler(event, context):
    return 1


after_import = sorted(m for m in ("_contextvars", "nexs_serverless.context") if m in sys.modules)
configure(exporters=[InMemoryExporter()])
if sys.argv[1] == "remote":  # a context made current before any span, as an invocation does
    from nexs_serverless.context import _current

    _current.set(SpanContext(0xABC, 0xDEF, 1, (), True))
with tracer.span("outer") as outer:
    with tracer.span("inner") as inner:
        inner_current = tracer.current_span() is inner
    outer_current = tracer.current_span() is outer
print(json.dumps({
    "after_import": after_import,
    "outer": [outer.trace_id, outer.parent_span_id, outer.parent_is_remote],
    "inner_parent": inner.parent_span_id == outer.span_id and inner.trace_id == outer.trace_id,
    "currents": [inner_current, outer_current, tracer.current_span() is None],
    "loaded": "_contextvars" in sys.modules,
}))
"""


@pytest.mark.parametrize("parent", ["none", "remote"])
def test_the_context_variables_load_with_the_first_span(parent: str) -> None:
    """Import and decoration leave `_contextvars` (an extension module) unloaded; the first span loads it.

    The first span's start and its ``with`` bind the context variable's methods on first use:
    nesting, the current span and a remote parent made current before any span all work.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "NEXS_"))}
    out = subprocess.run(
        [sys.executable, "-c", FIRST_SPAN, parent], capture_output=True, text=True, env=env, check=True
    )
    result = json.loads(out.stdout)
    assert result["after_import"] == []
    assert result["inner_parent"] is True
    assert result["currents"] == [True, True, True]
    assert result["loaded"] is True
    if parent == "remote":
        assert result["outer"] == [0xABC, 0xDEF, True]
    else:
        assert result["outer"][1:] == [0, False]
        assert result["outer"][0] != 0


def test_the_protocols_module_imports_as_its_docstring_shows() -> None:
    """``from nexs_serverless.typing import ReadableSpan, SpanExporter`` works at run time (it raised
    ImportError: the attribute alias it imported exists for type checkers only), and our exporters
    satisfy the protocol."""
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from nexs_serverless.typing import ReadableSpan, SpanExporter\n"
            "from nexs_serverless.exporters import InMemoryExporter\n"
            "assert isinstance(InMemoryExporter(), SpanExporter)\n",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
