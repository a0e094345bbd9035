"""README's configuration table and trigger table agree with the code.

The table is the user's reference for every setting (docs/architecture.md:
"Every setting goes in README's configuration table"): each variable it names
must be one the package reads, each variable the package reads must be in it,
and a default it states must be the value a bad setting falls back to. The
trigger table's ``faas.trigger`` and span kind are checked against what the
shipped sample events really give.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from nexs_serverless import SpanKind, traced_handler
from nexs_serverless.cli.config_check import check
from nexs_serverless.testing import LambdaContext, capture_spans, events

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
SOURCE = "\n".join(path.read_text() for path in (ROOT / "nexs_serverless").rglob("*.py"))
_NAME = re.compile(r"^(?:OTEL|NEXS|AWS|GOOGLE|GCLOUD|GCP|APPLICATIONINSIGHTS)_[A-Z0-9_\[\]]*[A-Z0-9]$")
# Read by the package but not settings: the zero-code wrapper script sets it.
NOT_SETTINGS = {"NEXS_ORIGINAL_HANDLER"}


def _read(name: str) -> bool:
    """`name` is in the source, or is an OTLP variable the code composes (``_names("HEADERS")``)."""
    otlp = re.fullmatch(r"OTEL_EXPORTER_OTLP_(?:TRACES_)?([A-Z_]+)", name)
    return name in SOURCE or (otlp is not None and f'"{otlp.group(1)}"' in SOURCE)


def _section(title: str) -> str:
    start = README.index(f"## {title}\n")
    end = README.index("\n## ", start + 1)
    return README[start:end]


def _cells(line: str) -> list[str]:
    """A table line's cells (``\\|`` inside a cell is not a separator)."""
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip().strip("|"))]


def _rows(title: str) -> list[list[str]]:
    return [_cells(line) for line in _section(title).splitlines() if line.startswith("| `")]


def _expand(token: str) -> list[str]:
    """``OTEL_[SPAN_]X`` -> both spellings."""
    match = re.search(r"\[(\w+)\]", token)
    if match is None:
        return [token]
    return [token.replace(match.group(0), match.group(1)), token.replace(match.group(0), "")]


def _row_variables(cell: str) -> list[list[str]]:
    """Each variable of a table cell, as its candidate spellings.

    A token starting with ``_`` is a suffix of the name before it: appended
    (``OTEL_TRACES_SAMPLER`` / ``_ARG``) or replacing its last part
    (``NEXS_EXPORT_BACKOFF_MS`` / ``_MAX_MS``, ``..._ENDPOINT``, ``_HEADERS``).
    """
    variables: list[list[str]] = []
    last: list[str] = []
    for token in re.findall(r"`([^`]+)`", cell):
        if token.startswith("_") and last:
            spellings = [name + token for name in last] + [name.rsplit("_", 1)[0] + token for name in last]
            # The spelling the code uses first, so that [0] names the variable.
            variables.append(sorted(spellings, key=lambda name: not _read(name)))
        elif _NAME.match(token):
            last = _expand(token)
            variables.append(last)
    return variables


TABLE = [(_row_variables(row[0]), row) for row in _rows("Configuration")]


def test_every_variable_the_table_names_is_read_by_the_package() -> None:
    """No row of README's configuration table names a variable the code never reads."""
    unread = [names[0] for variables, _ in TABLE for names in variables if not any(map(_read, names))]
    assert sum(len(variables) for variables, _ in TABLE) > 60
    assert unread == []


def test_every_variable_the_package_reads_is_in_the_table() -> None:
    """Every ``OTEL_*``/``NEXS_*`` setting in the source has its row in README's table."""
    listed = {name for variables, _ in TABLE for names in variables for name in names}
    read = set(re.findall(r"\b((?:OTEL|NEXS)_[A-Z0-9_]*[A-Z0-9])\b", SOURCE)) - NOT_SETTINGS
    missing = sorted(name for name in read if name not in listed)
    assert missing == []


# What an area's variables need before `config check` builds the part that reads them.
_NEEDS = {
    "NEXS_XRAY_": {"OTEL_TRACES_EXPORTER": "xray", "AWS_LAMBDA_FUNCTION_NAME": "f"},
    "AWS_XRAY_": {"OTEL_TRACES_EXPORTER": "xray", "AWS_LAMBDA_FUNCTION_NAME": "f"},
    "NEXS_FILE_": {"OTEL_TRACES_EXPORTER": "file", "NEXS_FILE_PATH": "/dev/null"},
    "NEXS_TENANT_COPY": {"NEXS_TENANT_EXPORTERS": '{"acme": "console"}'},
}
# Stated defaults that a bad value cannot reveal: a URL, a path or a name taken as given.
_TAKEN_AS_GIVEN = {"NEXS_XRAY_ENDPOINT"}


def _stated_defaults() -> list[tuple[str, str]]:
    """(variable, default) where the row gives one default per variable, or one for all."""
    pairs: list[tuple[str, str]] = []
    for variables, row in TABLE:
        literals = re.findall(r"`([^`]+)`", row[1])
        names = [names[0] for names in variables if names[0] not in _TAKEN_AS_GIVEN]
        if len(literals) == len(variables):
            pairs.extend((names[0], literal) for names, literal in zip(variables, literals, strict=True))
        elif len(literals) == 1 and row[1] == f"`{literals[0]}`":
            pairs.extend((name, literals[0]) for name in names)
    return [(name, default) for name, default in pairs if name not in _TAKEN_AS_GIVEN]


def _shown(fallback: str) -> str:
    """A fallback as `Problem` prints it (``repr``), written as the table writes defaults."""
    text = fallback.strip()
    if text.startswith("("):
        text = ",".join(re.findall(r"'([^']*)'", text))
    return {"True": "true", "False": "false"}.get(text, text.strip("'"))


@pytest.mark.parametrize(("variable", "default"), _stated_defaults())
def test_a_bad_value_falls_back_to_the_default_the_table_states(variable: str, default: str) -> None:
    """A bad value is one error naming variable and value, and it falls back to the stated default."""
    environ = {variable: "bogus!"}
    for prefix, needs in _NEEDS.items():
        if variable.startswith(prefix):
            environ.update(needs)
    errors = [error for error in check(environ).errors if variable in error]
    assert len(errors) == 1, check(environ).errors
    assert errors[0].startswith(f"invalid {variable}='bogus!' (expected ")
    assert _shown(errors[0].rsplit("; using ", 1)[1]) == default


def test_the_stated_defaults_cover_the_core_and_export_settings() -> None:
    """The default check above is not vacuous: it covers the settings users tune most."""
    checked = {name for name, _ in _stated_defaults()}
    assert {
        "NEXS_FLUSH_TIMEOUT_MS",
        "NEXS_TIMEOUT_GUARD_MS",
        "NEXS_SPAN_POOL_SIZE",
        "NEXS_EXPORT_BREAKER_FAILURES",
        "NEXS_EXPORT_BACKOFF_MAX_MS",
        "OTEL_TRACES_SAMPLER_ARG",
        "OTEL_PROPAGATORS",
        "NEXS_XRAY_MODE",
        "AWS_XRAY_DAEMON_ADDRESS",
    } <= checked


# -- the trigger table ------------------------------------------------------------------

_KINDS = {"SERVER": SpanKind.SERVER, "CONSUMER": SpanKind.CONSUMER}
# README trigger row (its first words) -> the shipped sample events it covers.
_SAMPLES = {
    "API Gateway": ["api-gateway-v1", "api-gateway-v2", "alb", "function-url"],
    "SQS (batch)": ["sqs"],
    "SNS, SNS→SQS": ["sns", "sns-sqs"],
    "EventBridge": ["eventbridge"],
    "Kinesis": ["kinesis"],
    "DynamoDB Streams": ["dynamodb"],
    "S3": ["s3"],
    "Step Functions": ["step-functions"],
}


def _trigger_rows() -> dict[str, tuple[str, int]]:
    rows = {}
    for line in _section("Propagation and triggers").splitlines():
        cells = _cells(line)
        if len(cells) == 3 and re.fullmatch(r"`\w+`, [A-Z]+( \(.*\))?", cells[1]):
            trigger, kind = cells[1].split(",", 1)
            rows[cells[0].replace("`", "")] = (trigger.strip("` "), _KINDS[kind.split()[0]])
    return rows


@traced_handler
def _handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    return {"statusCode": 200}


@pytest.mark.parametrize("row", sorted(_SAMPLES))
def test_the_trigger_table_gives_what_each_sample_event_gives(row: str) -> None:
    """Each AWS row's ``faas.trigger`` and span kind are what its sample events produce."""
    rows = _trigger_rows()
    (title,) = [title for title in rows if title.startswith(row)]
    trigger, kind = rows[title]
    for sample in _SAMPLES[row]:
        with capture_spans() as spans:
            _handler(events.load(sample), LambdaContext())
            (root,) = [span for span in spans.collect() if "faas.trigger" in span.attributes]
        assert (sample, root.attributes["faas.trigger"], root.kind) == (sample, trigger, kind)


def test_a_scheduled_eventbridge_event_is_a_timer_as_the_table_says() -> None:
    """EventBridge's row: a scheduled event is ``timer``, SERVER."""
    assert "(scheduled: `timer`, SERVER)" in _section("Propagation and triggers")
    with capture_spans() as spans:
        _handler(events.load("eventbridge-scheduled"), LambdaContext())
    (root,) = spans.collect()
    assert (root.attributes["faas.trigger"], root.kind) == ("timer", SpanKind.SERVER)
