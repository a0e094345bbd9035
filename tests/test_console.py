"""ConsoleExporter: the tree a new user sees first."""

from __future__ import annotations

import io

import pytest

from nexs_serverless import configure, traced_handler, tracer
from nexs_serverless.exporters import ConsoleExporter
from nexs_serverless.testing import LambdaContext


def _run(stream: io.StringIO, *, verbose: bool = False) -> None:
    configure(exporters=[ConsoleExporter(stream=stream, verbose=verbose)])

    @traced_handler
    def handler(event: object, context: object) -> dict[str, int]:
        with tracer.span("load-order", attributes={"order.id": "42"}):
            with tracer.span("db.query", attributes={"db.statement": "SELECT " + "x" * 200}):
                pass
        try:
            with tracer.span("charge"):
                raise ValueError("card declined")
        except ValueError:
            pass
        return {"statusCode": 200}

    event = {"httpMethod": "GET", "resource": "/orders/{id}", "path": "/orders/42", "requestContext": {}}
    handler(event, LambdaContext())


def test_console_prints_an_indented_tree_with_the_telling_parts() -> None:
    """Root first with kind, cold start and status code; children indented; errors marked."""
    stream = io.StringIO()
    _run(stream)
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("trace ")
    assert lines[0].endswith("4 span(s)")
    assert lines[1].startswith("└── GET /orders/{id} [SERVER]")
    assert "cold start" in lines[1]
    assert "faas.trigger=http http.response.status_code=200" in lines[1]
    assert "cloud.provider" not in lines[1]
    assert lines[2].startswith("    ├── load-order")
    assert "order.id=42" in lines[2]
    assert lines[3].startswith("    │   └── db.query")
    assert lines[3].endswith("…")
    assert lines[4].startswith("    └── charge")
    assert "✗ ERROR ValueError: card declined" in lines[4]
    assert "\x1b[" not in stream.getvalue()


def test_console_verbose_shows_every_attribute() -> None:
    """verbose=True prints all attributes untruncated."""
    stream = io.StringIO()
    _run(stream, verbose=True)
    text = stream.getvalue()
    assert "faas.coldstart=True" in text
    assert "x" * 200 in text


def test_console_is_the_default_exporter(capsys: pytest.CaptureFixture[str]) -> None:
    """With nothing configured, traces are printed on stdout."""

    @traced_handler
    def handler(event: object, context: object) -> None:
        return None

    handler({}, LambdaContext(function_name="hello"))
    assert "└── hello [SERVER]" in capsys.readouterr().out


def test_console_colours_only_when_asked() -> None:
    """Colour codes appear with color=True."""
    stream = io.StringIO()
    ConsoleExporter(stream=stream, color=True).export([])
    configure(exporters=[ConsoleExporter(stream=stream, color=True)])
    with tracer.span("x"):
        pass
    from nexs_serverless import flush

    flush()
    assert "\x1b[1m" in stream.getvalue()


@pytest.mark.parametrize("encoding", ["utf-8", "cp1252"])
def test_a_stray_surrogate_or_a_narrow_stream_never_costs_the_batch(encoding: str) -> None:
    """A span name with a lone surrogate (from the environment's ``surrogateescape``) or a stream
    that cannot write the tree's lines: written with replacements, SUCCESS (it failed the batch)."""
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding=encoding, errors="strict")
    exporter = ConsoleExporter(stream=stream, color=False)
    configure(exporters=[exporter])
    with tracer.span("bad \udcff name"):
        pass
    from nexs_serverless import flush, stats

    flush()
    stream.flush()
    assert b"name" in raw.getvalue()
    assert "spans_dropped_serialization" not in stats()
