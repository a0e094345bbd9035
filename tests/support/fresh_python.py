"""Code run in a fresh interpreter, for what only a new process shows.

What an import loads (the test process has loaded everything already), the
global OpenTelemetry provider a first invocation installs, a signal handler
that ends the process: each needs a process nothing else touched.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping

__all__ = ["run_python"]


def run_python(
    code: str, *args: str, env: Mapping[str, str] | None = None, check: bool = True, timeout_s: float = 120
) -> subprocess.CompletedProcess[str]:
    """``python -c code args...`` with this interpreter; its output captured as text.

    The child gets this process's environment (which the suite's autouse
    `_clean_state` fixture has cleared of tracer settings) updated with `env`.
    With `check`, a non-zero exit raises `CalledProcessError`.
    """
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=check,
        timeout=timeout_s,
    )
