"""The guides in ``docs/`` agree with the package they describe.

`docs/architecture.md`'s map is the contributor's index of the package: it
must name every module there is, and nothing that is gone. `docs/testing.md`
gives the testing kit's context stand-ins with their keyword arguments and
the exit statuses of ``nexs-serverless invoke``. `docs/migration.md` names the
setting that replaces OpenTelemetry's switch for Lambda's X-Ray variable; the
test applies the setting as written and checks that it does what the row says.
"""

from __future__ import annotations

import ast
import inspect
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from nexs_serverless import traced_handler
from nexs_serverless.cli.app import cli
from nexs_serverless.testing import AzureContext, LambdaContext, capture_spans, events

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "nexs_serverless"
DOCS = ROOT / "docs"


def _section(text: str, title: str) -> str:
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


# -- docs/architecture.md: the map ------------------------------------------------------

MAP_ROWS = [
    _cells(line)
    for line in _section((DOCS / "architecture.md").read_text(), "The map").splitlines()
    if line.startswith("| `")
]


def test_the_architecture_map_names_exactly_the_modules_of_the_package() -> None:
    """Every module of the package is in the map (in its folder's rows); every module the map names exists."""
    sources = (".py", ".c", ".pyi")
    top_level = {path.name for path in PACKAGE.iterdir() if path.is_file() and path.suffix in sources}
    mapped = {name for row in MAP_ROWS for name in re.findall(r"`(\w+\.(?:py|c|pyi))`", row[0])}
    assert sorted(mapped ^ top_level) == []

    folders = sorted(path.name for path in PACKAGE.iterdir() if (path / "__init__.py").exists())
    mapped_folders = {name for row in MAP_ROWS for name in re.findall(r"`(\w+)/`", row[0])}
    assert sorted(mapped_folders) == folders
    problems = []
    for folder in folders:
        text = " ".join(" ".join(row) for row in MAP_ROWS if f"`{folder}/`" in row[0])
        named = set(re.findall(r"`(\w+)(?:\.py)?`", text))
        modules = {path.stem for path in (PACKAGE / folder).glob("*.py")} - {"__init__"}
        problems += [f"{folder}/{name}.py not in the map" for name in sorted(modules - named)]
        files = set(re.findall(r"`(\w+)\.py`", text)) - {"__init__"}
        problems += [f"{folder}/{name}.py in the map, not in the package" for name in sorted(files - modules)]
    assert problems == []


# -- docs/propagation.md: the formats' limits -----------------------------------------------


def test_the_propagation_guide_states_the_limits_the_formats_apply() -> None:
    """The formats table's baggage members and bytes, and tracestate members, are the propagators' limits."""
    from nexs_serverless.propagation import baggage, tracecontext

    rows = {
        cells[0]: cells[2]
        for cells in map(_cells, (DOCS / "propagation.md").read_text().splitlines())
        if len(cells) == 3 and cells[0] in ("`baggage`", "`tracecontext`")
    }

    def stated(pattern: str, row: str) -> int:
        match = re.search(pattern, rows[row])
        assert match is not None, f"{pattern!r} not in the {row} row"
        return int(match.group(1))

    assert (
        stated(r"(\d+) members", "`baggage`"),
        stated(r"(\d+) bytes", "`baggage`"),
        stated(r"(\d+)-member tracestate", "`tracecontext`"),
    ) == (baggage.MAX_MEMBERS, baggage.MAX_BYTES, tracecontext.MAX_MEMBERS)


# -- docs/testing.md: the context stand-ins and `invoke` ----------------------------------

TESTING = (DOCS / "testing.md").read_text()


@pytest.mark.parametrize("stand_in", [LambdaContext, AzureContext], ids=lambda cls: cls.__name__)
def test_the_testing_guide_gives_each_context_stand_ins_keyword_arguments(stand_in: type) -> None:
    """The guide's ``LambdaContext(...)``/``AzureContext(...)``: every argument, in order, and its default."""
    match = re.search(rf"`{stand_in.__name__}\((.*?)\)`:", TESTING)
    assert match is not None
    documented = [part.strip().split("=", 1) for part in match.group(1).split(",")]
    parameters = inspect.signature(stand_in).parameters
    assert [name for name, *_ in documented] == list(parameters)
    for name, *default in documented:
        try:
            value = ast.literal_eval(default[0])
        except (ValueError, SyntaxError):  # a name such as `time.monotonic`: not checked
            continue
        if value is not Ellipsis:  # `...`: a default the guide does not spell out
            assert (name, value) == (name, parameters[name].default)


def test_the_testing_guide_names_every_way_invoke_exits_1(tmp_path: Path) -> None:
    """Each cause the guide gives for exit status 1 gives it, and each cause that gives it is in the guide."""
    sentence = re.search(r"It exits 1 when (.*?) and 2 when", " ".join(TESTING.split()))
    assert sentence is not None
    handler = tmp_path / "handlers12j.py"
    handler.write_text(
        textwrap.dedent(
            """
            import sys
            import time


            def boom(event, context):
                raise ValueError("declined")


            def leave(event, context):
                sys.exit(3)


            def slow(event, context):
                time.sleep(0.05)  # 50 times the deadline of 1 ms below
                return "late"
            """
        )
    )
    causes = {
        "raised": ("boom",),
        "`sys.exit`": ("leave",),
        "`--timeout-ms`": ("slow", "--timeout-ms", "1"),
    }
    for phrase, (function, *options) in causes.items():
        result = CliRunner().invoke(cli, ["invoke", f"{handler}:{function}", "--no-color", *options])
        assert (phrase, result.exit_code) == (phrase, 1), result.output
        assert phrase in sentence.group(1)


# -- docs/migration.md: Lambda's X-Ray variable ----------------------------------------------

XRAY_ENVIRONMENT = "Root=1-5759e988-bd862e3fe1be46a9994a3e9d;Parent=53995c3f42cd8ad8;Sampled=1"


@traced_handler
def _handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    return {"statusCode": 200}


def _root_trace(environ: dict[str, str]) -> tuple[str, object]:
    """The trace id and context source of an HTTP invocation that carries no context of its own."""
    event = events.api_gateway_v2(headers={"traceparent": None, "X-Amzn-Trace-Id": None})
    with capture_spans(environ=environ) as spans:
        _handler(event, LambdaContext())
    (root,) = spans.collect()
    return f"{root.trace_id:032x}", root.attributes.get("nexs.context.source")


def test_the_migration_setting_for_disabling_aws_context_propagation_does_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What the guide puts for ``OTEL_LAMBDA_DISABLE_AWS_CONTEXT_PROPAGATION`` ignores Lambda's X-Ray id."""
    (line,) = [
        line
        for line in (DOCS / "migration.md").read_text().splitlines()
        if line.startswith("| `OTEL_LAMBDA_DISABLE_AWS_CONTEXT_PROPAGATION")
    ]
    settings = dict(re.findall(r"`([A-Z][A-Z0-9_]*)=([^`]*)`", _cells(line)[1]))
    assert settings, f"no setting given as NAME=value: {_cells(line)[1]}"
    monkeypatch.setenv("_X_AMZN_TRACE_ID", XRAY_ENVIRONMENT)
    xray_trace = "5759e988bd862e3fe1be46a9994a3e9d"
    assert _root_trace({}) == (xray_trace, "xray")  # by default the variable is the parent
    trace, source = _root_trace(settings)
    assert (trace == xray_trace, source) == (False, None)
