# syntax=docker/dockerfile:1
# One image for every role: the API (default command), `conversme worker`, `conversme scheduler`,
# and the one-shot `conversme migrate` / `conversme init`. See docs/deploy.md.
#
# Reproducible: the builder installs exactly the versions in uv.lock (./scripts/lock.sh refreshes it) with a
# pinned uv: first the dependencies alone (a layer that survives code changes), then the package itself, never
# resolving anything. tests/ship/test_dockerfile.py runs these same install lines in a clean directory.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- builder: a virtual environment with the pinned dependencies and the app ----------------------------
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    UV_PROJECT_ENVIRONMENT=/opt/venv \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=python \
    UV_LINK_MODE=copy \
    UV_COMPILE_BYTECODE=1 \
    UV_NO_CACHE=1
RUN python -m venv /opt/uv && /opt/uv/bin/pip install uv==0.13.9
WORKDIR /src
COPY pyproject.toml uv.lock README.md ./
RUN /opt/uv/bin/uv sync --frozen --no-dev --no-editable --no-install-project
COPY server ./server
COPY channels ./channels
COPY handlers ./handlers
COPY ai ./ai
COPY adapters ./adapters
COPY persistence ./persistence
COPY jobs ./jobs
COPY migrations ./migrations
# --no-editable: the package is copied into /opt/venv, so the final stage needs no sources. UV_COMPILE_BYTECODE
# compiles once here, so the read-only app never writes .pyc files at run time.
RUN /opt/uv/bin/uv sync --frozen --no-dev --no-editable

# ---- final: only the virtual environment, run as an unprivileged user -----------------------------------
FROM ${PYTHON_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    API_HOST=0.0.0.0 \
    API_PORT=8000 \
    DATA_DIR=/data \
    LOG_FORMAT=json
RUN groupadd --system --gid 10001 conversme \
    && useradd --system --uid 10001 --gid conversme --home-dir /app --shell /usr/sbin/nologin conversme \
    && mkdir -p /app /data \
    && chown conversme:conversme /data
COPY --from=builder /opt/venv /opt/venv
COPY --chmod=0755 deploy/entrypoint.sh /usr/local/bin/conversme-entrypoint
WORKDIR /app
USER conversme
EXPOSE 8000
STOPSIGNAL SIGTERM
# The API's liveness. Workers and schedulers serve no HTTP: their services switch this check off
# (docker-compose.yml) and are watched through their heartbeats (GET /admin/jobs, /metrics).
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('API_PORT', '8000'), timeout=4)"]
ENTRYPOINT ["conversme-entrypoint"]
CMD ["conversme", "serve"]
