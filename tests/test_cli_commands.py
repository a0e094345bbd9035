"""``nexs-serverless`` events, config check, layer build and bench, and the entry point itself."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from support.fresh_python import run_python

from nexs_serverless.cli import main
from nexs_serverless.cli.app import cli
from nexs_serverless.cli.config_check import check, known_variables
from nexs_serverless.testing import events

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    """Run the CLI in-process."""
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


# -- events -------------------------------------------------------------------------


def test_events_list_names_every_sample() -> None:
    """`events list` prints one line per sample event with what it is."""
    result = run("events", "list")
    assert result.exit_code == 0
    names = [line.split()[0] for line in result.output.splitlines()]
    assert names == events.names()
    assert any(
        line.startswith("sqs") and "aws:sqs · 2 record(s)" in line for line in result.output.splitlines()
    )


def test_events_show_prints_the_json() -> None:
    """`events show NAME` prints the sample as shipped."""
    result = run("events", "show", "eventbridge")
    assert json.loads(result.output) == events.load("eventbridge")


def test_events_show_unknown_name() -> None:
    """An unknown sample is a usage error listing the known ones."""
    result = run("events", "show", "nope")
    assert result.exit_code == 2
    assert "no sample event named 'nope'" in result.output


# -- config check -------------------------------------------------------------------


def test_config_check_clean_environment() -> None:
    """No variables: every setting is its default, nothing wrong, exit 0."""
    result = run("config", "check", "--no-color")
    assert result.exit_code == 0, result.output
    assert "  exporters " in result.output
    assert "errors (0)" in result.output
    assert "(no NEXS_* or OTEL_* variable: every setting is its default)" in result.output


def test_config_check_says_whether_the_attribute_check_is_compiled(monkeypatch: pytest.MonkeyPatch) -> None:
    """The report names the compiled check's file, or says the spans run the Python loop."""
    from nexs_serverless import _speedups

    compiled = dict(check({}).parts)["attribute check"]
    assert compiled == f"compiled ({_speedups.__file__})"
    monkeypatch.setitem(sys.modules, "nexs_serverless._speedups", None)  # as where it is not built
    assert dict(check({}).parts)["attribute check"].startswith("pure Python")


def test_config_check_reports_an_invalid_value_and_exits_1() -> None:
    """An invalid value is an error naming variable, value and fallback; its setting shows the default."""
    result = run("config", "check", "--no-color", env={"NEXS_FLUSH_TIMEOUT_MS": "soon"})
    assert result.exit_code == 1
    assert "✗ invalid NEXS_FLUSH_TIMEOUT_MS='soon' (expected an integer from 1 to 3600000); using 1000" in (
        result.output
    )
    line = next(line for line in result.output.splitlines() if line.strip().startswith("flush_timeout_ms"))
    assert line.split() == ["flush_timeout_ms", "1000", "default", "(NEXS_FLUSH_TIMEOUT_MS", "invalid)"]


def test_config_check_shows_where_values_come_from() -> None:
    """A valid variable shows as the source of its setting, and is listed as set."""
    result = run("config", "check", "--no-color", env={"OTEL_SERVICE_NAME": "checkout"})
    line = next(line for line in result.output.splitlines() if line.strip().startswith("service_name"))
    assert line.split() == ["service_name", "checkout", "from", "OTEL_SERVICE_NAME"]
    assert "  OTEL_SERVICE_NAME=checkout" in result.output
    assert "service.name=checkout" in result.output


def test_config_check_warns_about_unknown_variables() -> None:
    """A NEXS_ variable that no module reads is a warning (a typo), not an error."""
    result = run("config", "check", "--no-color", env={"NEXS_FLUSH_TIMOUT_MS": "5"})
    assert result.exit_code == 0
    assert "! NEXS_FLUSH_TIMOUT_MS is not read by nexs_serverless" in result.output


def test_config_check_area_settings_are_checked_by_building_them() -> None:
    """An exporter's own bad setting (read when it is built) is reported as an error."""
    report = check({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_TIMEOUT": "abc"})
    assert any("OTEL_EXPORTER_OTLP_TIMEOUT='abc'" in error for error in report.errors)
    assert len(report.errors) == len(set(report.errors))


def test_config_check_runs_an_invocation_for_per_invocation_settings() -> None:
    """Settings read during an invocation (context precedence) are checked by a dry run, exporting nowhere."""
    report = check({"NEXS_CONTEXT_PRECEDENCE": "carrier-pigeon", "OTEL_TRACES_EXPORTER": "console"})
    assert any(
        error.startswith("invalid NEXS_CONTEXT_PRECEDENCE='carrier-pigeon'") for error in report.errors
    )
    assert dict(report.parts)["invocation"] == "1 span(s) recorded by a dry run"


def test_config_check_exporter_that_cannot_be_built(monkeypatch: pytest.MonkeyPatch) -> None:
    """An exporter whose module is missing (an extra not installed) is an error."""
    from nexs_serverless import exporters

    monkeypatch.setitem(exporters._FACTORIES, "file", ".not_installed:from_settings")
    report = check({"OTEL_TRACES_EXPORTER": "file"})
    assert any("exporter:file" in error and "not_installed" in error for error in report.errors)


def test_config_check_warns_when_nothing_would_be_exported() -> None:
    """The kill switch and `none` exporter are called out."""
    assert any("disabled" in warning for warning in check({"OTEL_SDK_DISABLED": "true"}).warnings)
    assert any("never exported" in warning for warning in check({"OTEL_TRACES_EXPORTER": "none"}).warnings)


def test_config_check_json() -> None:
    """`--json` prints the report as data."""
    result = run("config", "check", "--json", env={"OTEL_TRACES_SAMPLER": "sometimes"})
    report = json.loads(result.output)
    assert result.exit_code == 1
    assert report["settings"]["sampler"] == {
        "value": "parentbased_always_on",
        "source": "default (OTEL_TRACES_SAMPLER invalid)",
    }
    assert report["variables"] == {"OTEL_TRACES_SAMPLER": "sometimes"}
    assert report["errors"][0].startswith("invalid OTEL_TRACES_SAMPLER='sometimes'")


def test_known_variables_come_from_the_source() -> None:
    """Variables the package reads are known by name."""
    names = known_variables()
    assert {"NEXS_FLUSH_TIMEOUT_MS", "OTEL_TRACES_EXPORTER", "NEXS_CAPTURE_EVENT"} <= names


# -- layer build and bench ----------------------------------------------------------


def test_layer_build_calls_the_build_script(tmp_path: Path) -> None:
    """`layer build` builds a zip with the package under python/ and prints its size."""
    result = run("layer", "build", "--no-precompile", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    path = Path(result.output.split()[0])
    assert path.parent == tmp_path
    assert "bytes" in result.output
    with zipfile.ZipFile(path) as archive:
        assert "python/nexs_serverless/__init__.py" in archive.namelist()


def test_layer_build_refused_option_is_a_clear_error(tmp_path: Path) -> None:
    """An option the build refuses (unknown extra) is an error message, exit 1."""
    result = run("layer", "build", "--no-precompile", "--extras", "cobol", "--out", str(tmp_path))
    assert result.exit_code == 1
    assert "layer build: unknown extra(s) cobol" in result.output


def test_missing_script_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Without the script (not a checkout) the command says where it looked."""
    from nexs_serverless.cli import scripts

    monkeypatch.setattr(scripts, "_candidates", lambda name: [tmp_path / "scripts" / name])
    result = run("bench")
    assert result.exit_code == 1
    assert "scripts/bench.py not found" in result.output


def test_bench_passes_arguments_through(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """`bench ARGS` runs the script with ARGS in a child process and exits with its status."""
    from nexs_serverless.cli import scripts

    script = tmp_path / "scripts" / "bench.py"
    script.parent.mkdir()
    script.write_text("import sys\nprint('bench', sys.argv[1:])\nsys.exit(3)\n")
    monkeypatch.setattr(scripts, "_candidates", lambda name: [tmp_path / "scripts" / name])
    result = run("bench", "--quick", "-k", "span")
    assert result.exit_code == 3
    assert capfd.readouterr().out.strip() == "bench ['--quick', '-k', 'span']"


# -- the entry point ----------------------------------------------------------------


def test_main_runs_the_group(capsys: pytest.CaptureFixture[str]) -> None:
    """`main()` is the console script: `--version` prints ours and exits 0."""
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert "nexs-serverless, version 0.1.0" in capsys.readouterr().out


def test_main_without_click_says_how_to_install() -> None:
    """Without click the command explains which extra to install, exit 2."""
    script = "import sys; sys.modules['click'] = None; from nexs_serverless.cli import main; main(['--help'])"
    done = run_python(script, check=False)
    assert done.returncode == 2
    assert "pip install 'nexs-serverless[cli]'" in done.stderr


def test_layer_never_imports_the_cli() -> None:
    """Importing the package and decorating a handler loads neither the CLI nor click."""
    script = (
        "import sys, nexs_serverless\n"
        "nexs_serverless.traced_handler(lambda e, c: None)\n"
        "print(sorted(m for m in sys.modules if m.startswith(('nexs_serverless.cli', 'click'))))"
    )
    done = run_python(script)
    assert done.stdout.strip() == "[]"


def test_config_check_never_prints_credentials() -> None:
    """Header values (API keys) and the redaction hash key are masked in the text and JSON reports."""
    env = {"OTEL_EXPORTER_OTLP_HEADERS": "api-key=SuperSecret123", "NEXS_REDACTION_HASH_KEY": "k" * 32}
    for arguments in (("config", "check", "--no-color"), ("config", "check", "--json")):
        result = run(*arguments, env=env)
        assert "SuperSecret123" not in result.output
        assert "k" * 32 not in result.output
        assert "OTEL_EXPORTER_OTLP_HEADERS" in result.output


def test_layer_build_tells_a_refused_option_from_a_bug_in_the_build(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """An option the script does not take is refused by name; a TypeError raised inside the
    build is a bug and propagates with its traceback (it used to read as a refused option)."""
    from nexs_serverless.cli import scripts

    script = tmp_path / "scripts" / "build_layer.py"
    script.parent.mkdir()
    script.write_text(
        "class LayerError(Exception):\n"
        "    pass\n"
        "def build_layer(python_version=None):\n"
        "    return len(None)  # a bug: TypeError\n"
    )
    monkeypatch.setattr(scripts, "_candidates", lambda name: [tmp_path / "scripts" / name])
    with pytest.raises(scripts.ScriptError, match="unexpected keyword argument 'arch'"):
        scripts.build_layer(arch="arm64")
    with pytest.raises(TypeError, match="has no len"):
        scripts.build_layer(python_version="3.12")


def test_config_check_reports_a_bad_value_the_process_started_with() -> None:
    """The environment read at import is checked too: a bad core setting there is an error, exit 1.

    (Repeated warnings are suppressed per process; the check must still see every problem.)
    """
    import os

    env = {**os.environ, "NEXS_FLUSH_TIMEOUT_MS": "soon"}
    done = subprocess.run(
        [sys.executable, "-m", "nexs_serverless.cli", "config", "check", "--no-color"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "errors (1)" in done.stdout
    assert "NEXS_FLUSH_TIMEOUT_MS" in done.stdout.split("errors (1)", 1)[1]
