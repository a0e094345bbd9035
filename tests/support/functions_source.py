"""A Cloud Functions source file for functions-framework's `create_app`, written for one test."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

__all__ = ["function_source"]

# `create_app` writes these; the test's monkeypatch restores them afterwards.
_WRITTEN_BY_CREATE_APP = (
    "FUNCTION_TARGET",
    "FUNCTION_SIGNATURE_TYPE",
    "FUNCTION_TRIGGER_TYPE",
    "FUNCTION_NAME",
)


def function_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: str) -> str:
    """`code` (dedented) in ``tmp_path/main.py``, its path returned; FUNCTION_* undone after the test."""
    for variable in _WRITTEN_BY_CREATE_APP:
        monkeypatch.setenv(variable, "")
    path = tmp_path / "main.py"
    path.write_text(textwrap.dedent(code))
    return str(path)
