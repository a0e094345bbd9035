"""Zero-code tracing: the /opt/nexs-handler script and the `nexs_serverless.wrapper` bootstrap module."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import nexs_serverless.wrapper as wrapper
from nexs_serverless.exporters import InMemoryExporter
from nexs_serverless.testing import LambdaContext, reset

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "layer" / "nexs-handler"
FUNCTIONS = Path(__file__).resolve().parent / "support" / "functions"
SHOW_ENV = (
    "import os, sys, json; "
    "print(json.dumps([os.environ.get('_HANDLER'), os.environ.get('NEXS_ORIGINAL_HANDLER'), sys.argv[1:]]))"
)


@pytest.fixture
def functions_on_path(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The fixture handlers importable as top-level modules, forgotten afterwards."""
    monkeypatch.syspath_prepend(str(FUNCTIONS))
    yield
    for name in ("edge", "broken_import", "syntax_error"):
        sys.modules.pop(name, None)


@pytest.fixture(autouse=True)
def _forget_loaded_handler() -> Iterator[None]:
    """`wrapper.handler` is cached on first lookup; each test starts without it."""
    yield
    vars(wrapper).pop("handler", None)


def _run_script(*command: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("_HANDLER", "NEXS_ORIGINAL_HANDLER")}
    return subprocess.run(
        [str(SCRIPT), *command], env={**base, **env}, capture_output=True, text=True, check=False
    )


def test_script_is_executable_in_the_repository() -> None:
    """The source of /opt/nexs-handler carries its exec bit (the layer zip copies the mode it needs)."""
    assert os.access(SCRIPT, os.X_OK)
    assert SCRIPT.read_text().startswith("#!/bin/sh\n")


def test_script_saves_the_handler_and_points_the_runtime_at_the_wrapper() -> None:
    """_HANDLER moves to NEXS_ORIGINAL_HANDLER; the runtime starts on the wrapper's handler, argv intact."""
    result = _run_script(sys.executable, "-c", SHOW_ENV, "a b", "--flag", env={"_HANDLER": "app.handler"})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == ["nexs_serverless.wrapper.handler", "app.handler", ["a b", "--flag"]]


def test_script_run_twice_keeps_the_original_handler() -> None:
    """Wrapping an already wrapped start keeps the function's handler, not the wrapper's."""
    result = _run_script(str(SCRIPT), sys.executable, "-c", SHOW_ENV, env={"_HANDLER": "pkg/mod.fn"})
    assert json.loads(result.stdout)[:2] == ["nexs_serverless.wrapper.handler", "pkg/mod.fn"]


def test_script_without_a_handler_leaves_the_error_to_the_runtime_init() -> None:
    """No _HANDLER: the original is empty, so the bootstrap module reports it through init/error."""
    result = _run_script(sys.executable, "-c", SHOW_ENV, env={})
    assert json.loads(result.stdout)[:2] == ["nexs_serverless.wrapper.handler", ""]


def test_script_without_a_command_explains_its_use() -> None:
    """Run by hand with no runtime command, it exits 64 with a usage line."""
    result = _run_script(env={"_HANDLER": "app.handler"})
    assert result.returncode == 64
    assert "AWS_LAMBDA_EXEC_WRAPPER=/opt/nexs-handler" in result.stderr


def test_wrapper_handler_traces_the_original_without_touching_it(functions_on_path: None) -> None:
    """`wrapper.handler` is the original wrapped with traced_handler; the user's module keeps it plain."""
    memory = InMemoryExporter()
    reset(environ={"NEXS_ORIGINAL_HANDLER": "edge.ok"}, exporters=[memory])
    import edge

    traced = wrapper.handler  # type: ignore[attr-defined]
    assert traced is not edge.ok
    assert traced.__wrapped__ is edge.ok
    context = LambdaContext(aws_request_id="req-1")
    assert traced({"n": 1}, context) == {"echo": {"n": 1}, "request_id": "req-1"}
    (root,) = memory.get_finished_spans()
    assert root.attributes["faas.invocation_id"] == "req-1"


def test_wrapper_handler_is_resolved_once(functions_on_path: None) -> None:
    """The runtime's lookup and later ones get the same wrapped function."""
    reset(environ={"NEXS_ORIGINAL_HANDLER": "edge.ok"})
    assert wrapper.handler is wrapper.handler  # type: ignore[attr-defined]


def test_wrapper_does_not_wrap_a_decorated_handler_twice(functions_on_path: None) -> None:
    """A handler already decorated with @traced_handler is returned as it is."""
    from nexs_serverless import traced_handler

    def fn(event: Any, context: Any) -> int:
        return 1

    decorated = traced_handler(fn)
    sys.modules["already_traced"] = type(sys)("already_traced")
    sys.modules["already_traced"].handler = decorated  # type: ignore[attr-defined]
    try:
        assert wrapper.load_handler("already_traced.handler") is decorated
    finally:
        del sys.modules["already_traced"]


def test_slashes_name_packages_as_the_runtime_allows(functions_on_path: None, tmp_path: Path) -> None:
    """``pkg/mod.fn`` imports ``pkg.mod`` (the runtime accepts both separators)."""
    package = tmp_path / "zc_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "mod.py").write_text("def fn(event, context):\n    return 'deep'\n")
    sys.path.insert(0, str(tmp_path))
    try:
        assert wrapper.resolve("zc_pkg/mod.fn")({}, None) == "deep"
    finally:
        sys.path.remove(str(tmp_path))
        for name in ("zc_pkg", "zc_pkg.mod"):
            sys.modules.pop(name, None)


def test_other_attributes_are_missing_as_usual() -> None:
    """Only `handler` is resolved lazily; any other name raises AttributeError."""
    with pytest.raises(AttributeError, match="no attribute 'lambda_handler'"):
        _ = wrapper.lambda_handler  # type: ignore[attr-defined]


BAD_SPECS = [
    "edge",  # no function part
    "edge.missing",
    "no_such_module.handler",
    "sys.exit",  # a built-in module
    "broken_import.handler",
    "syntax_error.handler",
]


@pytest.mark.parametrize("spec", BAD_SPECS)
def test_bad_handlers_fail_as_the_runtime_reports_them(
    functions_on_path: None, tmp_path: Path, spec: str
) -> None:
    """Each bad handler raises the runtime's FaultException with the type and message the runtime gives."""
    from awslambdaric import bootstrap
    from awslambdaric.lambda_runtime_exception import FaultException

    (tmp_path / "syntax_error.py").write_text("def handler(event, context)\n    return 1\n")
    sys.path.insert(0, str(tmp_path))
    try:
        expected = _runtime_failure(bootstrap._get_handler, spec)
        for name in ("broken_import", "syntax_error"):
            sys.modules.pop(name, None)
        actual = _runtime_failure(wrapper.load_handler, spec)
    finally:
        sys.path.remove(str(tmp_path))
    if isinstance(expected, FaultException):
        assert isinstance(actual, FaultException)
        assert (actual.exception_type, actual.msg, actual.trace) == (
            expected.exception_type,
            expected.msg,
            expected.trace,
        )
    else:  # an error raised by the module's own code passes through unchanged
        assert (type(actual), str(actual)) == (type(expected), str(expected))


def _runtime_failure(load: Any, spec: str) -> BaseException:
    try:
        load(spec)
    except Exception as exc:
        return exc
    raise AssertionError(f"{spec!r} loaded")


@pytest.mark.parametrize(
    ("spec", "message"),
    [("", "NEXS_ORIGINAL_HANDLER is empty"), ("nexs_serverless.wrapper.handler", "names the wrapper itself")],
)
def test_missing_or_looping_handler_fails_with_a_precise_message(spec: str, message: str) -> None:
    """An empty variable, or one naming the wrapper, is a malformed handler with an explanation."""
    # awslambdaric is a dev dependency: its absence must fail, not skip. Imported here, not at the top,
    # because loading it switches `wrapper.fault` to FaultException for every test of the module.
    from awslambdaric.lambda_runtime_exception import FaultException

    with pytest.raises(FaultException) as info:
        wrapper.load_handler(spec)
    assert info.value.exception_type == "Runtime.MalformedHandlerName"
    assert message in info.value.msg


def test_outside_the_runtime_the_failure_is_a_handler_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the runtime's exception class loaded, HandlerError carries the same type and message."""
    for name in wrapper._FAULT_MODULES:
        monkeypatch.delitem(sys.modules, name, raising=False)
    with pytest.raises(wrapper.HandlerError) as info:
        wrapper.load_handler("no_such_module_either.handler")
    assert info.value.error_type == "Runtime.ImportModuleError"
    assert (
        info.value.msg
        == "Unable to import module 'no_such_module_either': No module named 'no_such_module_either'"
    )


def test_importing_the_wrapper_loads_nothing_of_the_user() -> None:
    """Importing the module (as the layer's bootstrap) resolves no handler until asked."""
    code = "import nexs_serverless.wrapper as w; print('handler' in vars(w))"
    env = {**os.environ, "NEXS_ORIGINAL_HANDLER": "no_such_module.handler"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert result.stdout.strip() == "False"


def test_attribute_error_while_importing_reads_as_without_the_layer(tmp_path: Path) -> None:
    """An AttributeError raised by the user's module at import is that error, not a missing handler.

    The runtime's getattr on the wrapper module would take it for "no attribute 'handler'"
    (Runtime.HandlerNotFound); init/error must carry what the runtime posts without the layer.
    """
    from support.runtime_api import FunctionProcess, RuntimeAPI

    (tmp_path / "attr_error.py").write_text(
        "import os\nTABLE = os.environ.NOPE\n\n\ndef handler(event, context):\n    return 1\n"
    )
    runs = [
        ("without", "attr_error.handler", {}),
        ("with", wrapper.WRAPPER_HANDLER, {wrapper.HANDLER_VARIABLE: "attr_error.handler"}),
    ]
    posted: dict[str, tuple[Any, ...]] = {}
    for name, handler, env in runs:
        log = tmp_path / f"{name}.log"
        with (
            RuntimeAPI() as api,
            FunctionProcess(api, handler=handler, task_root=tmp_path, log_path=log, env=env),
        ):
            assert api.wait_init_error()
            assert api.init_error is not None
            posted[name] = (api.init_error, api.init_error_type)
    error, header = posted["with"]
    assert (error["errorType"], header) == ("AttributeError", "AttributeError")
    assert error["errorMessage"] == "'_Environ' object has no attribute 'NOPE'"
    assert posted["with"] == posted["without"]  # the stack trace too, line for line
