#!/usr/bin/env bash
# Set up a virtualenv (once) and run the whole test suite: lint, types, tests on SQLite and PostgreSQL.
# Needs PostgreSQL at 127.0.0.1:5432 and Redis at 127.0.0.1:6379 (see README); tests fail without them.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then "$PY" -m venv .venv; fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[test]"
.venv/bin/ruff check .
.venv/bin/mypy .
exec .venv/bin/pytest "$@"
