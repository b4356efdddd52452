#!/usr/bin/env bash
# Set up .venv from uv.lock (exact versions, test tools included) and run the whole suite: lint, types, and
# pytest on SQLite and PostgreSQL, on every core. Needs PostgreSQL at 127.0.0.1:5432 and Redis at
# 127.0.0.1:6379 (TEST_PG_ADMIN_URL / TEST_REDIS_URL, see README); tests fail without them, never skip.
# Arguments go to pytest: ./scripts/test.sh -m "not slow" is the quick loop.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/uv.sh
"$UV" sync --frozen --extra test --quiet
.venv/bin/ruff check .
.venv/bin/mypy .
# One worker per core (TEST_WORKERS=0 for one process), each with its own databases and Redis key space
# (tests/conftest.py). loadgroup keeps each module of real server processes on one worker (its processes start
# once; tests/jobs/test_processes.py reads what its earlier tests caused) and spreads every other test.
exec .venv/bin/pytest -n "${TEST_WORKERS:-auto}" --dist loadgroup "$@"
