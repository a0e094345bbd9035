"""The repository scripts the CLI fronts: ``scripts/build_layer.py`` and ``scripts/bench.py``.

They live in the source tree, not in the package (a layer or a wheel does
not need them), so they are looked up next to the package (a checkout or
an editable install) and then in the current directory. A missing script
is a clear error naming where it was looked for, never a traceback.
"""

from __future__ import annotations

import importlib.util
import inspect
import subprocess
import sys
from pathlib import Path

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import ModuleType

__all__ = ["ScriptError", "build_layer", "find_script", "run_bench"]


class ScriptError(Exception):
    """A script is missing, or refused the options given (the message says which)."""


def _candidates(name: str) -> list[Path]:
    here = Path(__file__).resolve().parents[2] / "scripts" / name
    there = Path.cwd() / "scripts" / name
    return [here] if here == there else [here, there]


def find_script(name: str) -> Path:
    """The path of ``scripts/<name>``.

    Raises:
        ScriptError: when no candidate exists (the message lists where it looked).
    """
    for path in _candidates(name):
        if path.is_file():
            return path
    looked = ", ".join(str(path) for path in _candidates(name))
    raise ScriptError(f"scripts/{name} not found (looked in {looked}); run from a nexs-serverless checkout")


def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_nexs_script_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ScriptError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_layer(**options: object) -> Path:
    """Call ``build_layer(**options)`` from ``scripts/build_layer.py``; options left None are not passed.

    Raises:
        ScriptError: when the script or its function is missing, or the build
            is refused (its ``LayerError``, or an option it does not take).
    """
    module = _load(find_script("build_layer.py"))
    function = getattr(module, "build_layer", None)
    if not callable(function):
        raise ScriptError(f"{module.__file__} has no build_layer() function")
    given = {key: value for key, value in options.items() if value is not None}
    try:  # an option the script does not take is refused by name; a TypeError inside the build is a bug
        inspect.signature(function).bind(**given)
    except TypeError as exc:
        raise ScriptError(f"layer build: {exc}") from exc
    layer_error = getattr(module, "LayerError", None)
    if not (isinstance(layer_error, type) and issubclass(layer_error, Exception)):
        return Path(function(**given))
    try:
        path = function(**given)
    except layer_error as exc:
        raise ScriptError(f"layer build: {exc}") from exc
    return Path(path)


def run_bench(args: Sequence[str]) -> int:
    """Run ``scripts/bench.py`` with `args` in this interpreter; its exit status.

    Raises:
        ScriptError: when the script is missing.
    """
    script = find_script("bench.py")
    return subprocess.call([sys.executable, str(script), *args])  # noqa: S603 - our own script
