"""The layer build script, loaded for tests, and the core layer built once per test session."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

__all__ = ["CURRENT", "ROOT", "build", "core_layer"]

ROOT = Path(__file__).resolve().parents[2]
CURRENT = f"{sys.version_info.major}.{sys.version_info.minor}"


def _load_build_script() -> ModuleType:
    """scripts/build_layer.py as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location("build_layer", ROOT / "scripts" / "build_layer.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["build_layer"] = module
    spec.loader.exec_module(module)
    return module


build = sys.modules.get("build_layer") or _load_build_script()
_built: list[Path] = []


def core_layer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The core layer for this interpreter's version, precompiled: built once per test session."""
    if not _built:
        out = tmp_path_factory.mktemp("dist")
        _built.append(build.build_layer(python_version=CURRENT, arch="x86_64", out_dir=out, precompile=True))
    return _built[0]
