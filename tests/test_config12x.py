"""Settings read outside `config.py`, as a demanding user writes them: a huge backup count, blank
values, an hour-plus timeout, a long tenant spec, typos of variable names, and where `config check`
says a value came from."""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from support.canned_http import CannedServer
from support.exporter_spans import make_span

from nexs_serverless import config
from nexs_serverless.cli.config_check import check, known_variables
from nexs_serverless.config import ConfigError
from nexs_serverless.exporters import azure_monitor, cloud_trace, file, otlp_settings, xray
from nexs_serverless.exporters.resilient import Options
from nexs_serverless.redaction_settings import build_redactor
from nexs_serverless.tenancy import annotate

ROOT = Path(__file__).resolve().parent.parent
HOUR_MS = 3_600_000
_IKEY = "InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=http://127.0.0.1:9"


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING]


# -- 1. the file exporter's backups -------------------------------------------------------


def test_a_huge_backup_count_is_named_and_falls_back(caplog: pytest.LogCaptureFixture) -> None:
    """``NEXS_FILE_BACKUPS=1000000`` is one problem line and 3 backups (a rotation renamed a million)."""
    settings, _ = config.load({"NEXS_FILE_BACKUPS": "1000000", "NEXS_FILE_PATH": "/dev/null"})
    with caplog.at_level(logging.WARNING, logger="nexs_serverless"):
        exporter = file.from_settings(settings)
    assert exporter.backups == file.DEFAULT_BACKUPS
    assert _warnings(caplog) == [
        "nexs_serverless: invalid NEXS_FILE_BACKUPS='1000000' (expected an integer from 0 to 100); using 3"
    ]


def test_code_passing_more_than_100_backups_is_a_config_error() -> None:
    """`FileExporter(backups=101)` raises at once; 100 is accepted."""
    with pytest.raises(ConfigError, match="from 0 to 100"):
        file.FileExporter("/dev/null", backups=101)
    assert file.FileExporter("/dev/null", backups=100).backups == 100


# -- 2. a blank X-Ray endpoint --------------------------------------------------------------


@pytest.mark.usefixtures("aws_test_credentials")
def test_a_blank_xray_endpoint_is_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    """``NEXS_XRAY_ENDPOINT="  "`` leaves boto3 its own endpoint; it was every span a serialization error."""
    with CannedServer() as server:
        # boto3's own endpoint, as it resolves it when none is passed: the canned server here.
        monkeypatch.setenv("AWS_ENDPOINT_URL_XRAY", server.url)
        monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
        environ = {"NEXS_XRAY_TRANSPORT": "api", "AWS_REGION": "us-east-1", "NEXS_XRAY_ENDPOINT": "  "}
        exporter = xray.from_settings(config.load(environ)[0])
        try:
            assert exporter.send([make_span()], 5.0) == 0
        finally:
            exporter.shutdown()
        assert len(server.requests) == 1


# -- 3. a blank redaction hash key ----------------------------------------------------------


def _hashed(environ: dict[str, str]) -> str:
    settings, _ = config.load({"NEXS_REDACTION_KEYS": "user.id:hash", **environ})
    redactor = build_redactor(settings)
    assert redactor is not None
    attributes: dict[str, object] = {"user.id": "42"}
    redactor.redact_attributes(attributes)
    return str(attributes["user.id"])


@pytest.mark.parametrize("blank", ["   ", " " * 20, "\t\n"])
def test_a_blank_hash_key_is_a_random_key_without_a_problem(
    blank: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A whitespace-only ``NEXS_REDACTION_HASH_KEY`` is unset: a random key, no "too short" line."""
    with caplog.at_level(logging.WARNING, logger="nexs_serverless"):
        hashed = _hashed({"NEXS_REDACTION_HASH_KEY": blank})
    assert _warnings(caplog) == []
    assert hashed.startswith("hmac:")
    # Not keyed by the blanks themselves (twenty spaces passed as a key of 16+ characters).
    assert hashed != "hmac:" + hmac.digest(blank.encode(), b"42", "sha256")[:8].hex()


# -- 4. a long tenant source spec -----------------------------------------------------------


def test_a_long_bad_tenant_source_is_one_short_line(caplog: pytest.LogCaptureFixture) -> None:
    """A 3,000-character bad ``NEXS_TENANT_ID_FROM`` item is shown clipped once, not repeated whole."""
    spec = "cookie:" + "x" * 3000
    settings, _ = config.load({"NEXS_TENANT_ID_FROM": f"{spec},header:x-tenant"})
    attributes: dict[str, object] = {}
    with caplog.at_level(logging.WARNING, logger="nexs_serverless"):
        annotate(attributes, {"headers": {"x-tenant": "acme"}}, settings)
    (line,) = _warnings(caplog)
    assert len(line) < 500
    assert line.startswith("nexs_serverless: invalid NEXS_TENANT_ID_FROM='cookie:xxx")
    assert "(expected header:<name>, claim:<name> or path:<json path>" in line
    assert attributes == {"tenant.id": "acme"}


# -- 5. millisecond settings, an hour at most -----------------------------------------------


def _resilient(name: str) -> Callable[[config.Settings], float]:
    return lambda settings: getattr(Options.from_settings(settings), name) * 1000


TIMEOUTS = [
    ("NEXS_EXPORT_BREAKER_COOLDOWN_MS", 1, 10_000, {}, _resilient("cooldown_s")),
    ("NEXS_EXPORT_BACKOFF_MS", 0, 50, {}, _resilient("backoff_s")),
    ("NEXS_EXPORT_BACKOFF_MAX_MS", 0, 1000, {}, _resilient("max_backoff_s")),
    ("OTEL_EXPORTER_OTLP_TIMEOUT", 1, 10_000, {}, lambda s: otlp_settings.read(s).timeout_s * 1000),
    ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", 1, 10_000, {}, lambda s: otlp_settings.read(s).timeout_s * 1000),
    ("NEXS_XRAY_TIMEOUT_MS", 1, 1000, {}, lambda s: xray.from_settings(s).timeout_ms),
    ("NEXS_GCP_TRACE_TIMEOUT_MS", 1, 1000, {}, lambda s: cloud_trace.from_settings(s).timeout_ms),
    (
        "NEXS_AZURE_TIMEOUT_MS",
        1,
        1000,
        {"APPLICATIONINSIGHTS_CONNECTION_STRING": _IKEY},
        lambda s: azure_monitor.from_settings(s).timeout_ms,
    ),
]


@pytest.mark.parametrize(("variable", "minimum", "default", "needs", "read"), TIMEOUTS)
def test_a_timeout_over_an_hour_is_named_and_falls_back(
    variable: str,
    minimum: int,
    default: int,
    needs: dict[str, str],
    read: Callable[[config.Settings], float],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An ``_MS`` setting above 3600000 is reported and falls back, as ``NEXS_FLUSH_TIMEOUT_MS`` does."""
    with caplog.at_level(logging.WARNING, logger="nexs_serverless"):
        assert round(read(config.load({**needs, variable: str(HOUR_MS + 1)})[0])) == default
    expected = f"(expected an integer from {minimum} to {HOUR_MS}); using {default}"
    assert _warnings(caplog) == [f"nexs_serverless: invalid {variable}='{HOUR_MS + 1}' {expected}"]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="nexs_serverless"):
        assert round(read(config.load({**needs, variable: str(HOUR_MS)})[0])) == HOUR_MS
    assert _warnings(caplog) == []


# -- 6a. unknown variables -----------------------------------------------------------------


@pytest.mark.parametrize(
    "typo", ["OTEL_EXPORTER_OTLP_ENDPIONT", "NEXS_EXPORT_MAX_RETRYS", "OTEL_SPAN_ATRIBUTE_COUNT_LIMIT"]
)
def test_a_typo_under_a_known_prefix_is_an_unknown_variable(typo: str) -> None:
    """A misspelt name under a prefix the package uses gets the "not read" warning like any other."""
    warnings = check({typo: "1"}).warnings
    assert f"{typo} is not read by nexs_serverless (a typo, or another tool's?)" in warnings


def _readme_variables() -> list[set[str]]:
    """Each variable README's configuration table names, as the spellings it may stand for.

    ``OTEL_[SPAN_]X`` is both names; a token starting with ``_`` is a suffix of the name before
    it, appended (``OTEL_TRACES_SAMPLER`` / ``_ARG``) or replacing its last part (``_MAX_MS``).
    """
    readme = (ROOT / "README.md").read_text()
    start = readme.index("## Configuration\n")
    section = readme[start : readme.index("\n## ", start + 1)]
    variables: list[set[str]] = []
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        last: list[str] = []
        for token in re.findall(r"`([^`]+)`", line.split(" | ")[0]):
            if token.startswith("_") and last:
                variables.append(
                    {name + token for name in last} | {name.rsplit("_", 1)[0] + token for name in last}
                )
            elif token.startswith(("NEXS_", "OTEL_")):
                optional = re.search(r"\[(\w+)\]", token)
                last = [token]
                if optional:
                    last = [token.replace(optional[0], optional[1]), token.replace(optional[0], "")]
                variables.extend({name} for name in last)
    return variables


def test_every_variable_in_the_readme_table_is_known() -> None:
    """The table's variables (both spellings of ``[SPAN_]`` and ``[TRACES_]``) get no "not read" warning."""
    variables = _readme_variables()
    assert len(variables) > 70
    assert [sorted(names) for names in variables if not names & known_variables()] == []


def test_every_known_variable_is_read_by_the_package() -> None:
    """The list names only variables the source reads (the OTLP ones are composed from their setting)."""
    source = "\n".join(path.read_text() for path in (ROOT / "nexs_serverless").rglob("*.py"))
    read = set(re.findall(r"\b((?:OTEL|NEXS)_[A-Z0-9_]*[A-Z0-9])\b", source))
    otlp = re.compile(r"OTEL_EXPORTER_OTLP_(?:TRACES_)?([A-Z_]+)")
    composed = {name for name in known_variables() if (m := otlp.fullmatch(name)) and f'"{m[1]}"' in source}
    assert sorted(read - known_variables()) == []
    assert sorted(known_variables() - read - composed) == []


# -- 6b/6c. where config check says a value came from -------------------------------------------


def _sources(environ: dict[str, str]) -> dict[str, str]:
    return {name: source for name, _, source in check(environ).settings}


def test_event_and_link_attribute_counts_come_from_the_general_limit() -> None:
    """``OTEL_ATTRIBUTE_COUNT_LIMIT`` is shown as the source of events' and links' attribute counts."""
    sources = _sources({"OTEL_ATTRIBUTE_COUNT_LIMIT": "7"})
    assert sources["limits.event_attribute_count"] == "from OTEL_ATTRIBUTE_COUNT_LIMIT"
    assert sources["limits.link_attribute_count"] == "from OTEL_ATTRIBUTE_COUNT_LIMIT"


def test_a_bad_specific_limit_shows_the_general_one_as_the_source() -> None:
    """A bad span limit falls back to the general one, and the report says so, not "default"."""
    report = check({"OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT": "5s", "OTEL_ATTRIBUTE_COUNT_LIMIT": "7"})
    row = next(row for row in report.settings if row[0] == "limits.attribute_count")
    assert row == (
        "limits.attribute_count",
        "7",
        "from OTEL_ATTRIBUTE_COUNT_LIMIT (OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT invalid)",
    )


def test_a_list_with_a_bad_item_shows_its_variable_as_the_source() -> None:
    """``otlp,jaegr`` exports to otlp: the list is the source, less its bad item; all bad: the default."""
    sources = _sources({"OTEL_TRACES_EXPORTER": "otlp,jaegr", "OTEL_RESOURCE_ATTRIBUTES": "team=a,stray"})
    assert sources["exporters"] == "from OTEL_TRACES_EXPORTER (its invalid items dropped)"
    assert sources["resource_attributes"] == "from OTEL_RESOURCE_ATTRIBUTES (its invalid items dropped)"
    assert (
        _sources({"OTEL_TRACES_EXPORTER": "jaegr"})["exporters"] == "default (OTEL_TRACES_EXPORTER invalid)"
    )
    # The item kept is also the default: still the list's own.
    kept = _sources({"OTEL_TRACES_EXPORTER": "console,jaegr"})["exporters"]
    assert kept == "from OTEL_TRACES_EXPORTER (its invalid items dropped)"


def test_a_kill_switch_set_after_a_bad_one_is_the_source() -> None:
    """``NEXS_DISABLED=true`` behind a bad ``OTEL_SDK_DISABLED`` is where ``disabled`` came from."""
    sources = _sources({"OTEL_SDK_DISABLED": "maybe", "NEXS_DISABLED": "true"})
    assert sources["disabled"] == "from NEXS_DISABLED (OTEL_SDK_DISABLED invalid)"
