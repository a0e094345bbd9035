"""Review of `nexs-serverless invoke` (session 12): streamed handlers, and handlers that cannot be
loaded, each reported as what it is."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from nexs_serverless.cli.app import cli


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, [*args, "--no-color", "--width", "100"], catch_exceptions=False)


def invoke_plain(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def write(folder: Path, name: str, code: str) -> str:
    path = folder / name
    path.write_text(textwrap.dedent(code))
    return str(path)


def test_a_generator_handler_is_streamed_and_its_trace_drawn(tmp_path: Path) -> None:
    """A generator handler (a streamed response) is read to the end: its trace is drawn and its chunks
    are the result (the CLI showed `(no spans)` and `<generator object ...>`)."""
    handler = write(
        tmp_path,
        "streamed12h.py",
        """
        from nexs_serverless import tracer

        def handler(event, context):
            with tracer.span("first-chunk"):
                yield "a"
            yield "b"
        """,
    )
    result = invoke("invoke", handler)
    assert result.exit_code == 0, result.output
    assert "(no spans)" not in result.output
    assert "cold start" in result.output
    assert "└── first-chunk" in result.output
    assert 'result: [\n  "a",\n  "b"\n]' in result.output


def test_an_async_generator_handler_is_streamed(tmp_path: Path) -> None:
    """An async generator handler is drained in an event loop, as a generator is iterated."""
    handler = write(
        tmp_path,
        "astreamed12h.py",
        """
        async def handler(event, context):
            yield "x"
        """,
    )
    result = invoke("invoke", handler)
    assert result.exit_code == 0, result.output
    assert "cold start" in result.output
    assert 'result: [\n  "x"\n]' in result.output


def test_a_stream_failing_midway_is_a_failed_invocation(tmp_path: Path) -> None:
    """A generator raising after its first chunk marks the invocation failed and exits 1 (it used to
    exit 0, the generator never having been read)."""
    handler = write(
        tmp_path,
        "brokenstream12h.py",
        """
        def handler(event, context):
            yield "a"
            raise ValueError("mid-stream")
        """,
    )
    result = invoke("invoke", handler)
    assert result.exit_code == 1
    assert "raised ValueError" in result.output
    assert "ERROR ValueError: mid-stream" in result.output


def test_a_module_calling_sys_exit_at_import_is_an_error(tmp_path: Path) -> None:
    """`sys.exit(0)` in the handler's module is reported, naming the line, and exits 2 (it ended the
    CLI with status 0, as if the handler had run)."""
    handler = write(tmp_path, "quits12h.py", "import sys\nsys.exit(0)\ndef handler(e, c):\n    return 1\n")
    result = invoke("invoke", handler)
    assert result.exit_code == 2
    assert f"importing it failed: SystemExit: 0 ({handler}, line 2)" in result.output


def test_a_missing_module_points_at_no_line_of_the_standard_library() -> None:
    """`module:function` naming no module says so, without a file and line inside importlib."""
    result = invoke("invoke", "no_such_module_12h:handler")
    assert result.exit_code == 2
    assert "No module named 'no_such_module_12h'" in result.output
    assert "importlib" not in result.output
    assert "line " not in result.output


def test_a_path_that_does_not_exist_is_named_as_a_path(tmp_path: Path) -> None:
    """A HANDLER with a slash or a leading dot is a path: a missing one is named as a missing file or
    folder (it was imported as a module: "No module named 'a/b'", or a TypeError for './x')."""
    for spec in (str(tmp_path / "src" / "orders"), "./no-such-folder-12h"):
        result = invoke("invoke", spec)
        assert result.exit_code == 2
        assert f"no file or folder {spec}" in result.output
        assert "No module named" not in result.output
        assert "TypeError" not in result.output


def test_async_invocations_share_one_event_loop(tmp_path: Path) -> None:
    """What an async handler keeps between invocations (a client, a keep-alive task) lives on, as in
    a worker's event loop (a loop per invocation cancelled it: the second call saw it dead)."""
    handler = write(
        tmp_path,
        "keepalive12h.py",
        """
        import asyncio

        keepalive = None

        async def handler(event, context):
            global keepalive
            if keepalive is None:
                keepalive = asyncio.get_running_loop().create_task(asyncio.sleep(3600))
                return "started"
            return "cancelled" if keepalive.cancelled() else "alive"
        """,
    )
    result = invoke("invoke", handler, "--times", "2")
    assert result.exit_code == 0, result.output
    assert 'result: "started"' in result.output
    assert 'result: "alive"' in result.output


def test_bench_help_says_how_to_reach_the_suites_own_options(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """`bench --help` is the CLI's text, so it names `bench -- --help`, which does reach the script
    (the help said every ARG was passed on, and `--help` never was)."""
    from nexs_serverless.cli import scripts

    script = tmp_path / "scripts" / "bench.py"
    script.parent.mkdir()
    script.write_text("import sys\nprint('bench', sys.argv[1:])\n")
    monkeypatch.setattr(scripts, "_candidates", lambda name: [tmp_path / "scripts" / name])
    shown = " ".join(invoke_plain("bench", "--help").output.split())  # as wrapped to the width
    assert "`bench -- --help` shows the suite's own options" in shown
    assert capfd.readouterr().out == ""
    result = invoke_plain("bench", "--", "--help")
    assert result.exit_code == 0
    assert capfd.readouterr().out.strip() == "bench ['--help']"
