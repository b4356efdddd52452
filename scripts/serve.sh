#!/usr/bin/env bash
# Set up .venv from uv.lock (exact versions) and run the server on the embedded default: a SQLite file under
# ./data, the in-process hub and job queue, no other services. DEBUG is on unless you set it (see README).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/uv.sh
# --inexact: keep the test tools if ./scripts/test.sh installed them into the same .venv.
"$UV" sync --frozen --inexact --quiet
export DEBUG=${DEBUG:-true}
.venv/bin/conversme init
exec .venv/bin/conversme serve "$@"
