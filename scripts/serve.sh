#!/usr/bin/env bash
# Set up a virtualenv (once) and run the server on the embedded default: a SQLite file under ./data,
# the in-process hub and job queue, no other services. DEBUG is on unless you set it (see README).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then "$PY" -m venv .venv; fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e .
export DEBUG=${DEBUG:-true}
.venv/bin/conversme init
exec .venv/bin/conversme serve "$@"
