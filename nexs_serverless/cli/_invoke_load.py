"""``nexs-serverless invoke``'s handler loading: a spec to a function, imported as Lambda imports it.

Split from `invoke`, which runs the handler. The import's failures become an
`InvokeError` naming the line of the handler's code that raised, the frames
of this module and of importlib left out.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import traceback
from pathlib import Path

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

__all__ = ["InvokeError", "function_name_of", "load_handler"]


class InvokeError(Exception):
    """The handler or the event cannot be loaded (the message says what to fix)."""


def _import_file(path: Path) -> Any:
    """Import a handler file as Lambda does: its folder on ``sys.path``, module named after the file."""
    folder = str(path.parent.resolve())
    if folder not in sys.path:
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    if spec is None or spec.loader is None:
        raise InvokeError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


def function_name_of(spec: str) -> str:
    """The function name `spec` suggests, as Lambda's console would show it.

    The folder of a ``handler.py``, ``main.py`` or ``app.py``, else the
    file's or the module's last name.
    """
    target = spec.partition(":")[0]
    path = Path(target)
    if path.is_dir():
        return path.resolve().name
    if path.suffix == ".py" or path.is_file():
        return path.resolve().parent.name if path.stem in ("handler", "main", "app") else path.stem
    return target.rsplit(".", 1)[-1] or "function"


def load_handler(spec: str) -> Callable[..., Any]:
    """Import the handler `spec` names and return it.

    `spec` is ``module:function`` (``app.main:handler``, imported from the
    current directory), ``path/to/file.py[:function]`` or a folder holding
    ``handler.py``; the function defaults to ``handler``.

    Raises:
        InvokeError: when the module cannot be imported or has no such callable.
    """
    target, _, function = spec.partition(":")
    if ":" in function or not target:
        raise InvokeError(f"handler {spec!r}: expected module:function or path/to/file.py[:function]")
    function = function or "handler"
    path = Path(target)
    if path.is_dir():
        path = path / "handler.py"
    elif path.suffix != ".py" and _path_like(target) and not path.exists():  # `src/orders` is no module
        raise InvokeError(f"handler {spec!r}: no file or folder {target}")
    try:
        if path.suffix == ".py" or path.is_file():
            if not path.is_file():
                raise InvokeError(f"handler {spec!r}: no file {path}")
            module = _import_file(path)
        else:
            if "" not in sys.path and os.getcwd() not in sys.path:
                sys.path.insert(0, os.getcwd())
            module = importlib.import_module(target)
    except InvokeError:
        raise
    # SystemExit too: a module calling sys.exit() at import ended the CLI, with status 0 for exit(0),
    # as if the handler had run.
    except (Exception, SystemExit) as exc:
        message = f"handler {spec!r}: importing it failed: {type(exc).__name__}: {exc}"
        raise InvokeError(message + _where(exc)) from exc
    fn: Callable[..., Any] | None = getattr(module, function, None)
    if not callable(fn):
        raise InvokeError(f"handler {spec!r}: {module.__name__} has no function {function!r}")
    return fn


def _path_like(target: str) -> bool:
    """Whether `target` can only be a path (a module name has no slash and does not start with a dot)."""
    return "/" in target or os.sep in target or target.startswith(".")


def _where(exc: BaseException) -> str:
    """`` (file.py, line N)``: the line of the handler's code that raised, importlib's frames skipped.

    Nothing when no frame is the handler's: a module that does not exist
    raises inside importlib, whose line would send the reader to the
    standard library. A SyntaxError's message names its line already.
    """
    if isinstance(exc, SyntaxError):
        return ""
    frames = [
        frame
        for frame in traceback.extract_tb(exc.__traceback__)
        if frame.filename[:1] != "<" and not _machinery(frame.filename)
    ]
    if not frames:
        return ""
    return f" ({frames[-1].filename}, line {frames[-1].lineno})"


def _machinery(filename: str) -> bool:
    """Whether `filename` is this module or importlib's: frames of the loading, not of the handler."""
    if filename == _machinery.__code__.co_filename:
        return True
    folder = os.path.dirname(importlib.__file__ or "")
    return bool(folder) and os.path.dirname(filename) == folder
