#!/bin/sh
# Container entrypoint: read secrets mounted as files (Docker/Compose secrets, Kubernetes volumes) into
# the environment, then replace this shell with the command, so that it runs as PID 1's direct child
# (or as PID 1) and receives SIGTERM itself. For each NAME below, NAME_FILE=/path sets NAME from that file
# unless NAME is already set.
set -eu

for name in SECRET_KEY DATABASE_URL REDIS_URL BROKER_URL OPENAI_API_KEY METRICS_TOKEN ADMIN_PASSWORD \
            TASKIQ_DASHBOARD_TOKEN; do
  file_var="${name}_FILE"
  eval "file=\${$file_var:-}"
  eval "current=\${$name:-}"
  if [ -n "$file" ] && [ -z "$current" ]; then
    if [ ! -r "$file" ]; then
      echo "conversme-entrypoint: $file_var points to $file, which cannot be read" >&2
      exit 2
    fi
    value=$(cat "$file")
    export "$name=$value"
  fi
  unset "$file_var" 2>/dev/null || true
done

exec "$@"
