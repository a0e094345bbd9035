"""Review 12 (o): the zero-code wrapper and the after-response extension under the runtimes Lambda runs.

The python3.12+ runtimes load the handler with `awslambdaric` 2.1 or later,
which reports a handler it cannot load at init (``init/error``). The
python3.10 and 3.11 managed runtimes (``/var/runtime/bootstrap.py``, like
`awslambdaric` before 2.1) load it at init too, but report a handler fault
(bad name, import error, syntax error, missing function) at each invocation,
through a stand-in handler their ``make_fault_handler`` builds, and only what
the user's module raises otherwise as an init error. `OLD_RUNTIME` is such a
bootstrap, written for these tests on `awslambdaric`'s client and error
formatting: each test runs a function with it once without the layer and once
through ``/opt/nexs-handler``, and compares what the runtime posted.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from support.otlp_receiver import OTLPReceiver
from support.polling import wait_for
from support.runtime_api import OPT_VARIABLE, FunctionProcess, RuntimeAPI

OLD_RUNTIME = f'''\
"""A Python runtime bootstrap that reports handler faults at each invocation (awslambdaric < 2.1)."""

import importlib
import os
import sys

from awslambdaric import bootstrap as ric
from awslambdaric.lambda_runtime_client import LambdaRuntimeClient
from awslambdaric.lambda_runtime_exception import FaultException


def make_fault_handler(fault):
    def result(*args):
        raise fault

    return result


def _get_handler(handler):
    try:
        modname, fname = handler.rsplit(".", 1)
    except ValueError as e:
        message = "Bad handler '{{}}': {{}}".format(handler, e)
        return make_fault_handler(FaultException(FaultException.MALFORMED_HANDLER_NAME, message))
    try:
        if modname.split(".")[0] in sys.builtin_module_names:
            message = "Cannot use built-in module {{}} as a handler module".format(modname)
            return make_fault_handler(FaultException(FaultException.BUILT_IN_MODULE_CONFLICT, message))
        module = importlib.import_module(modname.replace("/", "."))
    except ImportError as e:
        message = "Unable to import module '{{}}': {{}}".format(modname, e)
        return make_fault_handler(FaultException(FaultException.IMPORT_MODULE_ERROR, message))
    except SyntaxError as e:
        trace = ['  File "%s" Line %s\\n    %s' % (e.filename, e.lineno, e.text)]
        message = "Syntax error in module '{{}}': {{}}".format(modname, e)
        return make_fault_handler(FaultException(FaultException.USER_CODE_SYNTAX_ERROR, message, trace))
    try:
        return getattr(module, fname)
    except AttributeError:
        message = "Handler '{{}}' missing on module '{{}}'".format(fname, modname)
        return make_fault_handler(FaultException(FaultException.HANDLER_NOT_FOUND, message))


handle_event_request = ric.handle_event_request


def main():
    opt = os.environ.get({OPT_VARIABLE!r})
    if opt:
        sys.path.insert(0, opt + "/python")
    sys.path.insert(0, os.environ["LAMBDA_TASK_ROOT"])
    client = LambdaRuntimeClient(os.environ["AWS_LAMBDA_RUNTIME_API"])
    log_sink = ric.StandardLogSink()
    try:
        request_handler = _get_handler(os.environ["_HANDLER"])
    except Exception:
        client.post_init_error(ric.build_fault_result(sys.exc_info(), None))
        sys.exit(1)
    while True:
        request = client.wait_next_invocation()
        handle_event_request(
            client, request_handler, request.invoke_id, request.event_body, request.content_type,
            request.client_context, request.cognito_identity, request.invoked_function_arn,
            request.deadline_time_in_ms, request.tenant_id, log_sink, request.invocation_id,
        )


if __name__ == "__main__":
    main()
'''

HANDLER = "\n\ndef handler(event, context):\n    return {'ok': True}\n"
USER_CODE = {
    "app.py": HANDLER,
    "syntax_error.py": "def handler(event, context)\n    return 1\n",
    "broken_import.py": "import no_such_dependency_12o\n" + HANDLER,
    "key_error.py": "import os\nTABLE = os.environ['TABLE_12O']\n" + HANDLER,
    "attr_error.py": "import os\nTABLE = os.environ.NOPE\n" + HANDLER,
}


@pytest.fixture(scope="module")
def task(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The function's code: a working handler and modules that fail in each way."""
    folder = tmp_path_factory.mktemp("task")
    for name, source in USER_CODE.items():
        (folder / name).write_text(source)
    return folder


@pytest.fixture(scope="module")
def old_runtime(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`OLD_RUNTIME` as a file named as the runtime's (its frames are left out of stack traces by name)."""
    path = tmp_path_factory.mktemp("var-runtime") / "bootstrap.py"
    path.write_text(OLD_RUNTIME)
    return path


def function(
    api: RuntimeAPI,
    tmp_path: Path,
    *,
    handler: str,
    task_root: Path,
    opt: Path | None,
    bootstrap: Path | None = None,
    env: dict[str, str] | None = None,
) -> FunctionProcess:
    """A function process: through the layer's exec wrapper when `opt` is given, on `bootstrap` if given."""
    process = FunctionProcess(
        api,
        handler=handler,
        task_root=task_root,
        opt=opt,
        wrapper=opt / "nexs-handler" if opt is not None else None,
        env=env,
        log_path=tmp_path / f"function-{len(list(tmp_path.glob('function-*')))}.log",
    )
    if bootstrap is not None:
        process.command = [*process.command[: 1 if opt is not None else 0], sys.executable, str(bootstrap)]
    return process


def outcome(process: FunctionProcess, api: RuntimeAPI) -> tuple[Any, ...]:
    """What the runtime posted: its init error, or the first invocation's response or error."""
    with process:
        invocation = api.submit({"n": 1}, timeout_ms=20_000)
        assert wait_for(lambda: api.init_error is not None or invocation.finished.is_set(), 20)
        if api.init_error is not None:
            return ("init", api.init_error, api.init_error_type)
        error = {**invocation.error, "requestId": "<id>"} if invocation.error else None
        return ("invoke", invocation.response, error, invocation.error_type)


def posted_without_and_with_the_layer(
    opt: Path, task: Path, old_runtime: Path, tmp_path: Path, spec: str
) -> dict[str, tuple[Any, ...]]:
    """What `old_runtime` posted for handler `spec`, under ``"without"`` the layer and ``"with"`` it."""
    posted: dict[str, tuple[Any, ...]] = {}
    for name, layer in (("without", None), ("with", opt)):
        with RuntimeAPI() as api:
            process = function(api, tmp_path, handler=spec, task_root=task, opt=layer, bootstrap=old_runtime)
            posted[name] = outcome(process, api)
    return posted


HANDLER_FAULTS = [
    "no_such_module.handler",
    "broken_import.handler",
    "syntax_error.handler",
    "app.missing",
    "app",
    "sys.handler",
]


@pytest.mark.parametrize("spec", HANDLER_FAULTS)
def test_a_handler_fault_reads_the_same_through_the_wrapper_on_a_runtime_that_defers_it(
    opt: Path, task: Path, old_runtime: Path, tmp_path: Path, spec: str
) -> None:
    """python3.10/3.11: a handler that cannot be loaded fails each invocation with the runtime's
    type and message, with and without the layer.

    Before, the wrapper raised the runtime's FaultException from inside the runtime's loader,
    which that runtime does not expect at init: it posted an init error of type "FaultException".
    """
    posted = posted_without_and_with_the_layer(opt, task, old_runtime, tmp_path, spec)
    assert posted["without"][0] == "invoke"
    assert posted["without"][2]["errorType"].startswith("Runtime.")
    assert posted["with"] == posted["without"]


@pytest.mark.parametrize(
    ("spec", "error_type"), [("key_error.handler", "KeyError"), ("attr_error.handler", "AttributeError")]
)
def test_an_error_the_module_raises_reads_the_same_init_error_through_the_wrapper_on_that_runtime(
    opt: Path, task: Path, old_runtime: Path, tmp_path: Path, spec: str, error_type: str
) -> None:
    """python3.10/3.11: an error the user's module raises at import is an init error of its own type,
    with the same stack, with and without the layer (an AttributeError too)."""
    posted = posted_without_and_with_the_layer(opt, task, old_runtime, tmp_path, spec)
    assert posted["without"][0] == "init"
    assert posted["without"][1]["errorType"] == error_type
    assert posted["with"] == posted["without"]


def test_an_empty_handler_setting_fails_each_invocation_on_a_runtime_that_defers_faults(
    opt: Path, task: Path, old_runtime: Path, tmp_path: Path
) -> None:
    """python3.10/3.11, no handler configured: each invocation fails with Runtime.MalformedHandlerName
    and the wrapper's explanation, the way that runtime reports a malformed handler (not an init
    error of type "FaultException")."""
    with RuntimeAPI() as api:
        process = function(api, tmp_path, handler="", task_root=task, opt=opt, bootstrap=old_runtime)
        posted = outcome(process, api)
    assert posted[0] == "invoke"
    error = posted[2]
    assert error["errorType"] == "Runtime.MalformedHandlerName"
    assert "NEXS_ORIGINAL_HANDLER is empty" in error["errorMessage"]


SERIALISATION_PROBE = """\
import decimal
import time

from nexs_serverless import stats, traced_handler, tracer


def flushes():
    return stats().get("flushes_after_response", 0)


class FlushesWhileSerialised(decimal.Decimal):
    # The runtime serialises a Decimal through str() after the handler returned, before its post:
    # this one waits there a while for an after-response flush to begin, and reports whether one did.
    def __new__(cls, before):
        probe = super().__new__(cls, 0)
        probe.before = before
        return probe

    def __str__(self):
        waited = time.monotonic() + 1.0  # a bound: a flush released at the return begins at once
        while flushes() == self.before and time.monotonic() < waited:
            time.sleep(0.005)
        return str(flushes() - self.before)


@traced_handler
def handler(event, context):
    with tracer.span("work-%d" % event["n"]):
        pass
    return {"flushes_while_serialised": FlushesWhileSerialised(flushes())}
"""


def test_after_response_flushes_after_the_post_on_a_runtime_run_as_a_script(
    receiver: OTLPReceiver, opt: Path, old_runtime: Path, tmp_path: Path
) -> None:
    """python3.10/3.11 (``/var/runtime/bootstrap.py`` runs as ``__main__``): the extension flushes
    after the runtime serialised and posted the response, as under `awslambdaric`.

    Before, only `awslambdaric.bootstrap`'s dispatch was wrapped: on these runtimes the wrapper
    handed the invocation over when the handler returned, and the flush ran while the runtime
    was still serialising the response (a large response reached the caller after the export).
    """
    task = tmp_path / "task"
    task.mkdir()
    (task / "app.py").write_text(SERIALISATION_PROBE)
    env = {
        "NEXS_FLUSH_MODE": "after_response",
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
    }
    with RuntimeAPI() as api:
        process = function(api, tmp_path, handler="app.handler", task_root=task, opt=None, env=env)
        process.command = [sys.executable, str(old_runtime)]
        process.env[OPT_VARIABLE] = str(opt)  # the layer on the path, without the exec wrapper
        with process:
            for n in (1, 2):
                invocation = api.invoke({"n": n}, timeout_ms=20_000)
                assert invocation.json() == {"flushes_while_serialised": 0}
                assert api.wait_idle()
            assert wait_for(lambda: {"work-1", "work-2"} <= {span.name for span in receiver.spans()})
        assert len(api.registrations) == 1
