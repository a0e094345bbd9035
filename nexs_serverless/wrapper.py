"""Zero-code tracing: the handler Lambda calls when ``AWS_LAMBDA_EXEC_WRAPPER=/opt/nexs-handler``.

The layer's wrapper script (``/opt/nexs-handler``) keeps the function's handler
in ``NEXS_ORIGINAL_HANDLER`` and points ``_HANDLER`` at
``nexs_serverless.wrapper.handler``. When the runtime looks that name up during
init, this module imports the function's handler the way the Python runtime
does (``path/to/module.function``: the last dot separates the function, slashes
or dots separate packages) and wraps it with `traced_handler`, configured by
the environment only. The user's code is not touched, and a handler already
decorated with `@traced_handler` is not wrapped twice.

A missing or malformed handler fails at init, reported through the runtime's
``init/error`` with the error type and message the runtime itself would give
for that handler (``Runtime.MalformedHandlerName``,
``Runtime.ImportModuleError``, ``Runtime.HandlerNotFound``,
``Runtime.UserCodeSyntaxError``, ``Runtime.BuiltInModuleConflict``), so a
broken deployment reads the same with and without the layer. An error the
user's module raises while imported reaches the runtime as that error too,
with the stack the runtime would show (none of this module's frames), even an
``AttributeError``, which would otherwise escape ``__getattr__`` as a missing
``handler`` here. A handler that is not callable is handed over untraced: the
runtime then fails each invocation on it, as it does without the layer.

Environment: ``NEXS_ORIGINAL_HANDLER`` (set by ``/opt/nexs-handler``) and every
variable `traced_handler` reads.
"""

from __future__ import annotations

import importlib
import sys
import traceback

from .handler import traced_handler
from .runtime import runtime

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import TracebackType
    from typing import Any

__all__ = ["HANDLER_VARIABLE", "HandlerError", "load_handler", "resolve"]

HANDLER_VARIABLE = "NEXS_ORIGINAL_HANDLER"
WRAPPER_HANDLER = __name__ + ".handler"

# The runtime's error types (awslambdaric `FaultException`), reused so the runtime reports ours as its own.
MALFORMED_HANDLER_NAME = "Runtime.MalformedHandlerName"
IMPORT_MODULE_ERROR = "Runtime.ImportModuleError"
HANDLER_NOT_FOUND = "Runtime.HandlerNotFound"
USER_CODE_SYNTAX_ERROR = "Runtime.UserCodeSyntaxError"
BUILT_IN_MODULE_CONFLICT = "Runtime.BuiltInModuleConflict"

# Where the runtime's exception class lives: the `awslambdaric` package (3.12+ runtimes,
# container images) or the flat modules of older managed runtimes (/var/runtime).
_FAULT_MODULES = ("awslambdaric.lambda_runtime_exception", "lambda_runtime_exception")


class HandlerError(Exception):
    """The handler cannot be loaded (raised when the runtime's own exception class is not loaded).

    Attributes:
        error_type: the runtime's error type, e.g. ``Runtime.ImportModuleError``.
        msg: the message the runtime would give.
        trace: extra stack lines (syntax errors), or None.
    """

    def __init__(self, error_type: str, msg: str, trace: list[str] | None = None) -> None:
        super().__init__(f"{error_type}: {msg}")
        self.error_type = error_type
        self.msg = msg
        self.trace = trace


def __getattr__(name: str) -> object:
    # PEP 562: resolved when the runtime does getattr(module, "handler"), i.e. during init.
    if name != "handler":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        loaded = load_handler(runtime.settings.env(HANDLER_VARIABLE))
    except AttributeError as exc:
        # Escaping __getattr__, it would read as "no attribute 'handler'": the runtime's getattr
        # would report Runtime.HandlerNotFound on this module instead of the user's error.
        raise fault(type(exc).__name__, str(exc), _user_frames(exc)) from exc
    except Exception as exc:
        # Any other error of the user's module (a KeyError for a missing environment variable)
        # goes on as it is, without our frames on top of its stack: the runtime reports its
        # stack from the import on, as without the layer. (A bare `raise` keeps the traceback
        # set here on Python 3.11+; 3.10 adds this frame back.)
        exc.__traceback__ = _past_own_frames(exc.__traceback__)
        raise
    globals()["handler"] = loaded
    return loaded


def _past_own_frames(tb: TracebackType | None) -> TracebackType | None:
    """`tb` from its first entry outside this module (all of it when every entry is ours)."""
    first = tb
    while first is not None and first.tb_frame.f_code.co_filename == __file__:
        first = first.tb_next
    return first if first is not None else tb


def _user_frames(exc: BaseException) -> list[str]:
    """`exc`'s stack lines as the runtime formats an init error, starting past this module's frames.

    Without the layer the runtime drops its own bootstrap frames, so the trace starts where the
    import begins; dropping ours makes the layer's report match it line for line (frames rebuilt
    without column positions, as the runtime's own are, so no ``^^^`` lines).
    """
    frames = [
        traceback.FrameSummary(f.filename, f.lineno, f.name, line=f.line)
        for f in traceback.extract_tb(exc.__traceback__)
    ]
    while frames and frames[0].filename == __file__:
        del frames[0]
    return traceback.format_list(frames)


def load_handler(spec: str) -> Callable[..., Any]:
    """The function named by `spec`, wrapped with `traced_handler` (anything not callable: as it is).

    Raises:
        Exception: the runtime's ``FaultException`` (or `HandlerError` outside
            the runtime) for a missing, malformed or unloadable handler.
    """
    if not spec.strip():
        raise fault(
            MALFORMED_HANDLER_NAME,
            f"nexs-handler: {HANDLER_VARIABLE} is empty; the function's handler setting (_HANDLER) "
            "was not set when /opt/nexs-handler ran. Set the function's Handler "
            f"(module.function), or set {HANDLER_VARIABLE} yourself.",
        )
    if spec.strip() == WRAPPER_HANDLER:
        raise fault(
            MALFORMED_HANDLER_NAME,
            f"nexs-handler: {HANDLER_VARIABLE}={spec!r} names the wrapper itself; "
            "set it to your function's handler (module.function).",
        )
    function: object = resolve(spec.strip())  # whatever the module holds under that name
    if callable(function):
        return traced_handler(function)
    # Not callable: the runtime loads it all the same and fails each invocation with "'X' object
    # is not callable"; `traced_handler` would refuse it at init, or (None) take it for its own
    # options form and hand the runtime a decorator instead.
    return function  # type: ignore[return-value]


def resolve(spec: str) -> Callable[..., Any]:
    """Import the handler ``module.function`` as the Python runtime does, with its error messages."""
    try:
        module_name, function_name = spec.rsplit(".", 1)
    except ValueError as exc:
        raise fault(MALFORMED_HANDLER_NAME, f"Bad handler '{spec}': {exc}") from None
    if module_name.split(".")[0] in sys.builtin_module_names:
        raise fault(BUILT_IN_MODULE_CONFLICT, f"Cannot use built-in module {module_name} as a handler module")
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except ImportError as exc:
        raise fault(IMPORT_MODULE_ERROR, f"Unable to import module '{module_name}': {exc}") from None
    except SyntaxError as exc:
        trace = [f'  File "{exc.filename}" Line {exc.lineno}\n    {exc.text}']
        raise fault(USER_CODE_SYNTAX_ERROR, f"Syntax error in module '{module_name}': {exc}", trace) from None
    try:
        function: Callable[..., Any] = getattr(module, function_name)
    except AttributeError:
        message = f"Handler '{function_name}' missing on module '{module_name}'"
        raise fault(HANDLER_NOT_FOUND, message) from None
    return function


def fault(error_type: str, msg: str, trace: list[str] | None = None) -> Exception:
    """The exception the runtime turns into an ``init/error`` with exactly this type and message."""
    for module_name in _FAULT_MODULES:
        cls = getattr(sys.modules.get(module_name), "FaultException", None)
        if cls is not None:
            error: Exception = cls(error_type, msg, trace)
            return error
    return HandlerError(error_type, msg, trace)
