"""Zero-code tracing: the handler Lambda calls when ``AWS_LAMBDA_EXEC_WRAPPER=/opt/nexs-handler``.

The layer's wrapper script (``/opt/nexs-handler``) keeps the function's handler
in ``NEXS_ORIGINAL_HANDLER`` and points ``_HANDLER`` at
``nexs_serverless.wrapper.handler``. When the runtime looks that name up during
init, this module imports the function's handler the way the Python runtime
does (``path/to/module.function``: the last dot separates the function, slashes
or dots separate packages) and wraps it with `traced_handler`, configured by
the environment only. The user's code is not touched, and a handler already
decorated with `@traced_handler` is not wrapped twice.

A broken deployment reads the same with and without the layer. When the
runtime's own loader (``_get_handler``, of `awslambdaric` or of the older
runtimes' ``/var/runtime/bootstrap.py``) is the caller, it loads the handler
for us: its error types and messages (``Runtime.MalformedHandlerName``,
``Runtime.ImportModuleError``, ``Runtime.HandlerNotFound``,
``Runtime.UserCodeSyntaxError``, ``Runtime.BuiltInModuleConflict``), and its way
of reporting them: at init (`awslambdaric` 2.1+, the python3.12+ runtimes), or
at each invocation through the stand-in handler it returns (python3.10 and
3.11, whose runtime takes an exception from the loader for a crash of its own).
Elsewhere `resolve` does the same as `awslambdaric`. A missing variable, or one
naming the wrapper, is reported the same way with a precise message. An error
the user's module raises while imported reaches the runtime as that error, with
the stack the runtime would show (none of this module's frames), even an
``AttributeError``, which would otherwise escape ``__getattr__`` as a missing
``handler`` here. A handler that is not callable is handed over untraced: the
runtime then fails each invocation on it, as it does without the layer.

Environment: ``NEXS_ORIGINAL_HANDLER`` (set by ``/opt/nexs-handler``) and every
variable `traced_handler` reads.
"""

from __future__ import annotations

import importlib
import sys

from .handler import traced_handler
from .runtime import runtime

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import FrameType, TracebackType
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
    loader = _runtime_loader(sys._getframe(1))
    try:
        loaded = load_handler(runtime.settings.env(HANDLER_VARIABLE), loader=loader)
    except Exception as exc:
        make_fault_handler = getattr(loader, "__globals__", {}).get("make_fault_handler")
        if not (callable(make_fault_handler) and _is_fault(exc)):
            # An error of the user's module (a KeyError for a missing environment variable) goes on
            # as it is, without our frames on top of its stack: the runtime reports its stack from
            # the import on, as without the layer. An AttributeError escaping __getattr__ would
            # read as "no attribute 'handler'" (the runtime's Runtime.HandlerNotFound on this
            # module), so it goes on as a stand-in of the same name and message.
            tb = _past_own_frames(exc.__traceback__)
            error = _not_an_attribute_error(exc) if isinstance(exc, AttributeError) else exc
            try:
                raise error.with_traceback(tb)
            except Exception as raised:
                raised.__traceback__ = tb  # a bare `raise` keeps it on 3.11+ (3.10 adds this frame)
                raise
        # A runtime that reports handler faults at each invocation (its loader returns a stand-in
        # handler that raises the fault) takes one raised here for a crash: ours go that way too.
        loaded = make_fault_handler(exc)
    globals()["handler"] = loaded
    return loaded


def _runtime_loader(caller: FrameType | None) -> Callable[[str], object] | None:
    """The runtime's handler loader when it is `caller`, the function asking for ``handler``."""
    if caller is None or caller.f_code.co_name != "_get_handler":
        return None
    loader = caller.f_globals.get("_get_handler")
    return loader if callable(loader) and getattr(loader, "__code__", None) is caller.f_code else None


def _is_fault(exc: BaseException) -> bool:
    """Whether `exc` is the runtime's ``FaultException`` (a handler fault, not the user's error)."""
    return any(
        isinstance(exc, cls)
        for cls in (getattr(sys.modules.get(name), "FaultException", None) for name in _FAULT_MODULES)
        if isinstance(cls, type)
    )


def _past_own_frames(tb: TracebackType | None) -> TracebackType | None:
    """`tb` from its first entry outside this module (all of it when every entry is ours)."""
    first = tb
    while first is not None and first.tb_frame.f_code.co_filename == __file__:
        first = first.tb_next
    return first if first is not None else tb


def _not_an_attribute_error(exc: AttributeError) -> Exception:
    """An exception the runtime reports as `exc`: the same class name and message, not an AttributeError.

    The runtime formats an init error from the class name, the message and the stack alone.
    """
    cls = type(exc)
    namespace = {"__module__": cls.__module__, "__qualname__": cls.__qualname__}
    stand_in: type[Exception] = type(cls.__name__, (Exception,), namespace)
    return stand_in(str(exc))


def load_handler(spec: str, *, loader: Callable[[str], object] | None = None) -> Callable[..., Any]:
    """The function named by `spec`, wrapped with `traced_handler` (anything not callable: as it is).

    Args:
        spec: the handler, ``path/to/module.function``.
        loader: what imports it: the runtime's own ``_get_handler``, or `resolve` (None).

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
    function = (loader or resolve)(spec.strip())  # whatever the module holds under that name
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
