"""Review 10: the zero-code wrapper and the after-response extension, against awslambdaric and the emulator.

Each test runs a function process the way the managed Python runtime does
(`support.runtime_api.FunctionProcess`), once without the layer and once
through the wrapper, and compares what the runtime posted.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support.otlp_receiver import OTLPReceiver
from support.polling import wait_for
from support.runtime_api import FunctionProcess, RuntimeAPI

import nexs_serverless.wrapper as wrapper

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "layer" / "nexs-handler"


def _init_error(task_root: Path, handler: str, env: dict[str, str], log: Path) -> tuple[Any, ...]:
    """What the runtime posted to ``init/error`` for `handler` (and the header it sent)."""
    with (
        RuntimeAPI() as api,
        FunctionProcess(api, handler=handler, task_root=task_root, log_path=log, env=env),
    ):
        assert api.wait_init_error()
        return api.init_error, api.init_error_type


def _with_and_without(task_root: Path, spec: str, tmp_path: Path) -> dict[str, tuple[Any, ...]]:
    """The init error for `spec` without the layer and through the wrapper module."""
    return {
        "without": _init_error(task_root, spec, {}, tmp_path / "without.log"),
        "with": _init_error(
            task_root, wrapper.WRAPPER_HANDLER, {wrapper.HANDLER_VARIABLE: spec}, tmp_path / "with.log"
        ),
    }


@pytest.mark.parametrize(
    ("source", "error_type"),
    [
        ("import os\nTABLE = os.environ['ORDERS_TABLE_UNSET']\n", "KeyError"),
        ("raise RuntimeError('configuration missing')\n", "RuntimeError"),
        ("import json\nCONFIG = json.loads('{')\n", "JSONDecodeError"),
    ],
    ids=["key-error", "runtime-error", "json-error"],
)
def test_an_error_raised_at_import_reads_line_for_line_as_without_the_layer(
    tmp_path: Path, source: str, error_type: str
) -> None:
    """A module that fails while imported: init/error carries the same stack, none of the wrapper's frames.

    Before, only an AttributeError was rebuilt; any other error (a KeyError for a missing
    environment variable, the most common init failure) reached the runtime with the
    wrapper's three frames on top of its stack trace.
    """
    (tmp_path / "fails_at_import.py").write_text(source + "\n\ndef handler(event, context):\n    return 1\n")
    posted = _with_and_without(tmp_path, "fails_at_import.handler", tmp_path)
    error, header = posted["with"]
    assert (error["errorType"], header) == (error_type, error_type)
    assert not [line for line in error["stackTrace"] if "wrapper.py" in line]
    assert posted["with"] == posted["without"]


def test_an_odd_module_name_fails_as_without_the_layer(tmp_path: Path) -> None:
    """``.handler`` (an empty module name) fails init with the runtime's ValueError and stack."""
    posted = _with_and_without(tmp_path, ".handler", tmp_path)
    assert posted["with"][1] == "ValueError"
    assert posted["with"] == posted["without"]


def test_a_handler_that_is_not_callable_fails_each_invocation_as_without_the_layer(tmp_path: Path) -> None:
    """``handler = None``: init succeeds and the invocation fails with "'NoneType' object is not callable".

    Before, the wrapper handed it to `traced_handler`, which took None for its options form
    and returned a decorator: the runtime called that and failed with a TypeError about a lambda.
    """
    (tmp_path / "not_callable.py").write_text("handler = None\n")
    outcomes = []
    for name, handler, env in (
        ("without", "not_callable.handler", {}),
        ("with", wrapper.WRAPPER_HANDLER, {wrapper.HANDLER_VARIABLE: "not_callable.handler"}),
    ):
        with (
            RuntimeAPI() as api,
            FunctionProcess(
                api, handler=handler, task_root=tmp_path, log_path=tmp_path / f"{name}.log", env=env
            ),
        ):
            invocation = api.invoke({}, timeout_ms=10_000)
            assert invocation.error is not None
            assert api.init_error is None
            outcomes.append(({**invocation.error, "requestId": "<id>"}, invocation.error_type))
    assert outcomes[0][0]["errorMessage"] == "'NoneType' object is not callable"
    assert outcomes[1] == outcomes[0]


def test_script_keeps_a_configured_original_handler_when_the_handler_setting_is_empty() -> None:
    """No _HANDLER but NEXS_ORIGINAL_HANDLER set, as the init error for an empty handler suggests: kept.

    Before, the script overwrote it with the empty _HANDLER, so following the advice changed nothing.
    """
    base = {k: v for k, v in os.environ.items() if k not in ("_HANDLER", "NEXS_ORIGINAL_HANDLER")}
    show = "import os; print(os.environ['_HANDLER'], os.environ['NEXS_ORIGINAL_HANDLER'])"
    result = subprocess.run(
        [str(SCRIPT), sys.executable, "-c", show],
        env={**base, "NEXS_ORIGINAL_HANDLER": "app.handler"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.split() == [wrapper.WRAPPER_HANDLER, "app.handler"]


LATE_SIGTERM = """\
import signal
import threading
import time
from pathlib import Path

from nexs_serverless import traced_handler, tracer


@traced_handler
def handler(event, context):
    release = Path(event["release"])

    def work():
        with tracer.span("late-work"):
            while not release.exists():
                time.sleep(0.01)
        Path(event["done"]).write_text("ended")

    threading.Thread(target=work, daemon=True).start()
    return "ok"


def on_sigterm(signum, frame):
    # The function's own shutdown hook, installed after the decoration; it does not exit.
    Path(__file__).with_name("user-sigterm").write_text("ran")


signal.signal(signal.SIGTERM, on_sigterm)
"""


def test_sigterm_flushes_when_the_function_installed_its_handler_after_the_decoration(
    receiver: OTLPReceiver, tmp_path: Path
) -> None:
    """A SIGTERM handler the module installs after @traced_handler: ours still flushes first, then it runs.

    Before, the function's handler replaced ours: a span that ended after the invocation's
    flush was lost at shutdown (the function's handler returned, then Lambda's SIGKILL came).
    """
    task = tmp_path / "task"
    task.mkdir()
    (task / "late_sigterm.py").write_text(LATE_SIGTERM)
    release, done = tmp_path / "release", tmp_path / "done"
    env = {
        "NEXS_FLUSH_MODE": "after_response",
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
    }
    with (
        RuntimeAPI() as api,
        FunctionProcess(
            api, handler="late_sigterm.handler", task_root=task, log_path=tmp_path / "f.log", env=env
        ) as function,
    ):
        assert api.invoke({"release": str(release), "done": str(done)}).json() == "ok"
        assert api.wait_idle()
        release.write_text("go")
        assert wait_for(done.exists)
        assert "late-work" not in receiver.span_names()  # it ended after the invocation's flush
        assert function.process is not None
        function.process.send_signal(signal.SIGTERM)
        assert wait_for((task / "user-sigterm").exists), function.output()
        # Ours ran before the function's own handler, which returned: the span is already out.
        assert "late-work" in receiver.span_names()
