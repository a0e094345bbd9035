"""The ``nexs-serverless`` command: local invoke, sample events, config check, layer build, bench.

Needs click (``pip install 'nexs-serverless[cli]'``). The layer never imports
this package: it is a developer tool, loaded only by the console script.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> None:
    """Run the CLI with `argv` (default: the process's arguments); exits with the command's status."""
    try:
        from .app import cli
    except ModuleNotFoundError as exc:
        if exc.name != "click":
            raise
        sys.stderr.write("nexs-serverless: the CLI needs click: pip install 'nexs-serverless[cli]'\n")
        raise SystemExit(2) from None
    cli.main(args=None if argv is None else list(argv), prog_name="nexs-serverless")
