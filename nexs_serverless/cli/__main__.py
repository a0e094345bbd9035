"""``python -m nexs_serverless.cli``: the same as the ``nexs-serverless`` console script."""

from __future__ import annotations

from . import main

main()
