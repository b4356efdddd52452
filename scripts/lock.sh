#!/usr/bin/env bash
# Refresh uv.lock after changing dependencies in pyproject.toml (the only lock: scripts, CI and the Dockerfile
# install from it). `./scripts/lock.sh --upgrade` moves every package to its newest allowed version.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/uv.sh
exec "$UV" lock "$@"
