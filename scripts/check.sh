#!/usr/bin/env bash
# The project's checks, exactly as CI runs them: install into .venv, lint, type-check, test.
# Usage: ./scripts/check.sh [extra pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[dev]'
# An editable install writes no bytecode: compile it, so imports measure as an installed package's.
.venv/bin/python -m compileall -q nexs_serverless
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
# pytest exits 5 when it collected no test: set -e turns that into a failure too. Coverage
# starts before pytest so that it also sees the package's import (our pytest plugin loads it early).
.venv/bin/python -m coverage run -m pytest -q "$@"
.venv/bin/python -m coverage report --skip-covered --sort=cover | tail -25
# Speed regressions: ratios against the peers measured in the same run (not absolute times).
.venv/bin/python scripts/bench.py --quick --check scripts/bench_baseline.json --json bench-results/check.json
