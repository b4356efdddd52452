"""Settings: one frozen object, loaded once from the environment and `.env`, passed down.

Each setting is declared once below — name, type, default, doc and checks — and read, documented
(`.env.example`, rendered by `python -m server.settings`) and tested from that declaration (server.envconfig)."""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from adapters.storage import StorageConfig
from handlers.links import served_link
from server.envconfig import ConfigError, Value, read, read_env_file, render_env_file, setting

__all__ = ["ConfigError", "Settings", "load_settings", "normalize_database_url", "read_env_file"]

PLACEHOLDER_SECRETS = frozenset(
    {"", "changeme", "change-me", "secret", "your-secret-key", "your_secret_key", "supersecret",
     "CHANGE_ME", "please-change-me", "dev", "development"}
)
HTTP = ("http://", "https://")
HUB_SCHEMES = ("memory://", "redis://", "rediss://", "unix://", "redis+cluster://", "rediss+cluster://")
LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")
MIB = 1024 * 1024

GROUPS = {
    "server": "server", "database": "database", "files": "files (docs/deploy.md, \"File storage\")",
    "redis": "Redis", "realtime": "realtime (GET /ws)", "jobs": "background jobs (docs/jobs.md)",
    "security": "security", "seed": "seed", "ai": "AI (docs/ai.md)",
}
ENV_HEADER = """\
# Convers.me server configuration. Copy to .env, or set these in the environment (the environment wins).
# Every setting is optional on the embedded default except SECRET_KEY outside DEBUG.
# Rendered from server/settings.py (python -m server.settings > .env.example); a test keeps the two equal.
"""


@dataclass(frozen=True)
class Settings:
    # --- server ---
    api_host: str = setting("127.0.0.1", "interface `conversme serve` binds", group="server")
    api_port: int = setting(8000, "port `conversme serve` listens on", group="server", low=0, high=65535)
    api_workers: int = setting(1, "uvicorn worker processes, each draining on SIGTERM (more than 1 needs "
                               "PostgreSQL and Redis)", group="server", low=1)
    debug: bool = setting(False, "development mode: random SECRET_KEY kept in DATA_DIR, guest login, fixed seed "
                          "admin password", group="server")
    log_level: str = setting("info", "critical, error, warning, info, debug or trace", group="server",
                             choices=LOG_LEVELS, fold=True)
    log_format: str = setting("", "json (one object per line, request id on each) or text; empty: text in DEBUG, "
                              "else json", group="server", choices=("", "json", "text"), fold=True)
    shutdown_timeout: int = setting(20, "seconds for a graceful stop (sockets drain and close 1012, requests "
                                    "finish)", group="server", low=0, unit="seconds")
    instance_id: str = setting("", "a name for this instance in presence and ops views (empty: host-pid-random)",
                               group="server")
    metrics_token: str = setting("", "when set, GET /metrics needs `Authorization: Bearer <token>` (else public)",
                                 group="server")
    max_page_size: int = setting(200, "upper bound of `limit` on every list", group="server", low=1)
    # --- database ---
    database_url: str = setting(
        "sqlite+aiosqlite:///data/conversme.db", "postgresql://user@host:5432/db works as written (asyncpg); "
        "SQLite is migrated at start", group="database", derived="SQLite file DATA_DIR/conversme.db")
    db_pool_size: int = setting(20, "connections each process keeps", group="database", low=1)
    db_max_overflow: int = setting(10, "extra connections under load", group="database", low=0)
    db_pool_timeout: float = setting(30.0, "seconds to wait for a free connection", group="database", low=0,
                                     unit="seconds")
    auto_migrate: bool = setting(True, "SQLite only: upgrade the schema at start (PostgreSQL: `conversme "
                                 "migrate`)", group="database")
    # --- files ---
    data_dir: Path = setting(Path("data"), "SQLite file, generated DEBUG key, local files", group="files")
    upload_dir: Path = setting(Path("data/uploads"), "uploaded media on this machine", group="files",
                               derived="DATA_DIR/uploads")
    # Private report files: never under the public uploads mount.
    reports_dir: Path = setting(Path("data/reports"), "private report files, served only to their owner",
                                group="files", derived="DATA_DIR/reports")
    upload_url_prefix: str = setting("/uploads", "the site path media URLs start with", group="files")
    max_upload_bytes: int = setting(25 * MIB, "largest upload (25 MiB)", group="files", low=1)
    # STORAGE_URL: s3://BUCKET[/PREFIX] puts every file in an S3-compatible bucket, reached with the AWS tools'
    # variables, so every instance and worker sees the same files (adapters.storage).
    storage_url: str = setting("", "empty: UPLOAD_DIR and REPORTS_DIR on this machine; s3://BUCKET[/PREFIX]: an "
                               "S3-compatible bucket", group="files")
    aws_endpoint_url_s3: str = setting("", "the S3 API: MinIO, R2, Tigris (https://fly.storage.tigris.dev); "
                                       "empty: AWS_ENDPOINT_URL, else AWS S3", group="files",
                                       aliases=("AWS_ENDPOINT_URL",), schemes=HTTP)
    aws_access_key_id: str = setting("", "the bucket's credentials (secret; both or neither)", group="files")
    aws_secret_access_key: str = setting("", "the bucket's credentials (secret; both or neither)", group="files")
    aws_region: str = setting("", "auto for Tigris and R2; empty: AWS_DEFAULT_REGION", group="files",
                              aliases=("AWS_DEFAULT_REGION",))
    storage_presign: bool = setting(True, "downloads redirect to a presigned URL; false: the server proxies them",
                                    group="files")
    storage_presign_seconds: int = setting(300, "how long a presigned download URL works (S3 allows 7 days)",
                                           group="files", low=1, high=7 * 86_400, unit="seconds")
    storage_presign_endpoint: str = setting("", "the bucket's address as browsers reach it, when not "
                                            "AWS_ENDPOINT_URL_S3", group="files", schemes=HTTP)
    # --- Redis ---
    redis_url: str = setting("memory://", "redis://, rediss://, unix:// or redis+cluster://host:port,...: shared "
                             "hub, presence, rate limits and job queue; memory://: this process only",
                             group="redis", schemes=HUB_SCHEMES)
    # Every Redis key and channel starts with it, so deployments (or test runs) can share a Redis.
    redis_prefix: str = setting("cm:", "first characters of every Redis key and channel (1-64 of letters, "
                                "digits and _ . : { } -)", group="redis")
    # The durable topic log (event and user topics): how long, and how many per topic, a client can resume.
    log_retention_seconds: int = setting(86_400, "how long a client can resume a topic", group="redis", low=0,
                                         unit="seconds")
    log_retention_messages: int = setting(1000, "how many messages per topic a client can resume", group="redis",
                                          low=0)
    # --- realtime ---
    ws_auth_timeout: float = setting(10.0, "seconds a new socket has to send its auth frame (then close 4001)",
                                     group="realtime", low=0, unit="seconds")
    ws_heartbeat: int = setting(25, "server WebSocket ping interval, seconds", group="realtime", low=1,
                                unit="seconds")
    ws_heartbeat_timeout: int = setting(10, "no pong within this many seconds: the connection is dropped",
                                        group="realtime", low=1, unit="seconds")
    ws_max_queue_bytes: int = setting(MIB, "outbound queue per connection; over it: AI deltas coalesced, then "
                                      "close 4008", group="realtime", low=1)
    ws_push_burst: int = setting(20, "pushes per connection: burst ...", group="realtime", low=1)
    ws_push_rate: float = setting(10.0, "... and sustained per second (then rate_limited; abuse: close 4029)",
                                  group="realtime", low=0)
    ws_max_topics: int = setting(100, "topics per connection", group="realtime", low=1)
    # The backstop for a `session.ended` announcement that never arrived (normally sockets close as soon as it does).
    ws_session_sweep_seconds: float = setting(60.0, "how often each instance checks its sockets' sign-in sessions",
                                              group="realtime", low=0, unit="seconds")
    # Changes are announced and applied at once; this bounds only an announcement lost with Redis.
    auth_cache_seconds: float = setting(10.0, "how long a signed-in caller is served from memory (0: a query on "
                                        "every request)", group="realtime", low=0, unit="seconds")
    # --- background jobs ---
    broker_url: str = setting("memory://", "memory://: the server runs its own jobs and scheduler", group="jobs",
                              schemes=HUB_SCHEMES, derived="REDIS_URL")
    scheduler_interval: float = setting(1.0, "seconds between scheduler ticks (due reminders are claimed and "
                                        "enqueued)", group="jobs", low=0, unit="seconds")
    embedded_scheduler: bool = setting(True, "memory:// only: run the scheduler inside the server (with Redis: "
                                       "`conversme scheduler`)", group="jobs")
    job_max_retries: int = setting(3, "a failing job is retried this often with exponential backoff, then "
                                   "dead-lettered", group="jobs", low=0)
    job_retry_base: float = setting(2.0, "seconds before the first retry (doubling, capped at 300)", group="jobs",
                                    low=0, unit="seconds")
    job_timeout: float = setting(120.0, "seconds one job run may take", group="jobs", low=0, unit="seconds")
    job_redeliver_seconds: float = setting(180.0, "Redis: a job whose worker died is delivered again after this "
                                           "(must exceed JOB_TIMEOUT)", group="jobs", low=0, unit="seconds")
    worker_concurrency: int = setting(16, "jobs one `conversme worker` runs at once", group="jobs", low=1)
    taskiq_dashboard_url: str = setting("", "optional taskiq-dashboard to report job lifecycle events to",
                                        group="jobs", schemes=HTTP)
    taskiq_dashboard_token: str = setting("", "the dashboard's token", group="jobs")
    auto_reports: bool = setting(False, "the scheduler builds last week's and last quarter's reports for every "
                                 "active user", group="jobs")
    # --- security ---
    secret_key: str = setting("", "required outside DEBUG: 32+ random characters", group="security")
    algorithm: str = setting("HS256", "HS256, HS384 or HS512", group="security", choices=("HS256", "HS384", "HS512"))
    access_token_expire_minutes: int = setting(15, "access-token lifetime (60 for the original frontend, "
                                               "docs/deploy.md)", group="security", low=1, unit="minutes")
    refresh_token_expire_days: int = setting(30, "absolute lifetime of a sign-in (refresh-token family)",
                                             group="security", low=1, unit="days")
    frontend_url: str = setting("http://localhost:3000", "allowed CORS / WebSocket origin", group="security",
                                schemes=HTTP)
    cors_origins: tuple[str, ...] = setting((), "more allowed origins, comma-separated", group="security")
    redirect_url: str = setting("", "where the frontend lives for links in notifications", group="security",
                                schemes=HTTP)
    trusted_proxies: tuple[str, ...] = setting((), "CIDRs whose X-Forwarded-For is believed (e.g. 10.0.0.0/8), "
                                               "comma-separated", group="security")
    login_rate_per_account: int = setting(10, "login attempts per account per window", group="security", low=1)
    login_rate_per_ip: int = setting(30, "login attempts per client IP per window", group="security", low=1)
    login_rate_window_seconds: int = setting(300, "the login rate window", group="security", low=1,
                                             unit="seconds")
    argon2_time_cost: int = setting(3, "password hashing: iterations", group="security", low=1)
    argon2_memory_cost: int = setting(65536, "password hashing: KiB of memory", group="security", low=8)
    argon2_parallelism: int = setting(4, "password hashing: lanes", group="security", low=1)
    # --- seed ---
    admin_email: str = setting("admin@convers.me", "the administrator `conversme init` seeds", group="seed")
    admin_password: str = setting("", "empty: generated and printed once by `conversme init` (DEBUG: admin1234)",
                                  group="seed")
    # --- AI ---
    openai_api_key: str = setting("", "empty: the server starts, AI features answer \"unavailable\"", group="ai")
    openai_base_url: str = setting("", "any OpenAI-compatible server (vLLM, Ollama, LM Studio); empty: OpenAI",
                                   group="ai", schemes=HTTP)
    openai_model: str = setting("gpt-4o-mini", "chat model for live sessions and plans (needs tool calling and "
                                "JSON-schema output)", group="ai")
    openai_transcribe_model: str = setting("whisper-1", "POST /live/transcribe", group="ai")
    openai_timeout: float = setting(30.0, "seconds without a byte from the AI service before a call fails "
                                    "(ai.error timeout)", group="ai", low=0, unit="seconds")
    ai_tokens_per_minute_user: int = setting(20_000, "token budget per user per minute (0: none); over it: "
                                             "rate_limited", group="ai", low=0)
    ai_tokens_per_minute_session: int = setting(40_000, "token budget per live session per minute (0: none)",
                                                group="ai", low=0)
    ai_context_tokens: int = setting(6_000, "prompt budget per turn: system prompt, checklist, recent messages "
                                     "(~4 chars a token)", group="ai", low=1)
    ai_max_output_tokens: int = setting(1_000, "longest answer per turn", group="ai", low=1)
    ai_lease_seconds: float = setting(5.0, "a generation whose instance died ends as ai.error `interrupted` after "
                                      "about this", group="ai", low=0, unit="seconds")
    max_audio_bytes: int = setting(25 * MIB, "largest recording POST /live/transcribe accepts (25 MiB, the API's "
                                   "own limit)", group="ai", low=1)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def allowed_origins(self) -> tuple[str, ...]:
        origins = [o for o in (self.frontend_url, *self.cors_origins) if o]
        return tuple(dict.fromkeys(o.rstrip("/") for o in origins))

    @property
    def storage(self) -> StorageConfig:
        return StorageConfig(
            url=self.storage_url, upload_dir=self.upload_dir, reports_dir=self.reports_dir,
            upload_url_prefix=self.upload_url_prefix, endpoint=self.aws_endpoint_url_s3,
            access_key_id=self.aws_access_key_id, secret_access_key=self.aws_secret_access_key,
            region=self.aws_region, presign=self.storage_presign, presign_seconds=self.storage_presign_seconds,
            presign_endpoint=self.storage_presign_endpoint)


def normalize_database_url(url: str) -> str:
    """Accept `postgresql://` and `sqlite:///` as written; pick the async drivers."""
    for prefix in ("postgres://", "postgresql://", "postgresql+psycopg2://", "postgresql+psycopg://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix):]
    if url.startswith("sqlite://") and not url.startswith("sqlite+aiosqlite://"):
        return "sqlite+aiosqlite://" + url[len("sqlite://"):]
    return url


def _debug_secret(data_dir: Path) -> str:
    """In DEBUG: one random key per data directory, generated once and kept (never a constant)."""
    path = data_dir / "secret_key"
    if path.is_file():
        return path.read_text(encoding="utf-8").strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(key)
    return key


def _str(values: dict[str, Value], attr: str) -> str:
    value = values[attr]
    assert isinstance(value, str)
    return value


def _number(values: dict[str, Value], attr: str) -> float:
    value = values[attr]
    assert isinstance(value, int | float)
    return value


def _resolve(env: Mapping[str, str], values: dict[str, Value]) -> None:
    """What involves more than one setting: defaults derived from others, and the checks across settings."""
    data_dir = values["data_dir"]
    assert isinstance(data_dir, Path)
    for attr, name in (("upload_dir", "uploads"), ("reports_dir", "reports")):
        if attr.upper() not in env or not env[attr.upper()].strip():
            values[attr] = data_dir / name
    url = _str(values, "storage_url").strip()
    url = "" if url in ("local", "file://") else url
    if url and (not url.startswith("s3://") or not url.removeprefix("s3://").split("/")[0]):
        raise ConfigError(f"STORAGE_URL must be empty (the local directories) or s3://BUCKET[/PREFIX], got {url!r}")
    values["storage_url"] = url
    values["aws_region"] = _str(values, "aws_region").strip()
    if url and bool(values["aws_access_key_id"]) != bool(values["aws_secret_access_key"]):
        raise ConfigError("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY go together")
    database_url = _str(values, "database_url").strip() if env.get("DATABASE_URL", "").strip() else ""
    database_url = normalize_database_url(database_url or f"sqlite:///{(data_dir / 'conversme.db').as_posix()}")
    if not database_url.startswith(("postgresql+asyncpg://", "sqlite+aiosqlite://")):
        raise ConfigError(f"DATABASE_URL must be a postgresql:// or sqlite:/// URL, got {env['DATABASE_URL']!r}")
    values["database_url"] = database_url
    prefix = _str(values, "redis_prefix")
    if not re.fullmatch(r"[A-Za-z0-9_.:{}-]{1,64}", prefix):
        raise ConfigError("REDIS_PREFIX must be 1-64 characters of letters, digits and _ . : { } -")
    redis_url = _str(values, "redis_url") or "memory://"
    values["redis_url"] = redis_url
    if redis_url.startswith(("redis+cluster://", "rediss+cluster://")) and re.search(r"[{}]", prefix):
        # On a cluster the code puts each topic's (queue's) name in the hash tag, after the prefix: braces in the
        # prefix would become the tag instead and pile every key of the deployment into one slot.
        raise ConfigError("REDIS_PREFIX must not contain { or } with a redis+cluster:// REDIS_URL")
    values["broker_url"] = (_str(values, "broker_url") if env.get("BROKER_URL", "").strip() else "") or redis_url
    secret = _str(values, "secret_key").strip()
    if secret in PLACEHOLDER_SECRETS or len(secret) < 32:
        if not values["debug"]:
            raise ConfigError(
                "SECRET_KEY is missing, a placeholder, or shorter than 32 characters. Set it to a long "
                "random value (python -c 'import secrets; print(secrets.token_urlsafe(48))'), "
                "or set DEBUG=true for local development."
            )
        secret = _debug_secret(data_dir)
    values["secret_key"] = secret
    if _number(values, "job_timeout") >= _number(values, "job_redeliver_seconds"):
        # Redis hands a job nobody acknowledged for JOB_REDELIVER_SECONDS to another worker: a job still
        # running by then would run twice at once.
        raise ConfigError("JOB_TIMEOUT must be shorter than JOB_REDELIVER_SECONDS")
    upload_prefix = _str(values, "upload_url_prefix")
    if not upload_prefix.startswith("/") or served_link(upload_prefix) is None:
        # Every media URL starts with it: one that fails the link rule would have all of them served as null.
        raise ConfigError(f"UPLOAD_URL_PREFIX must be a site path such as /uploads, got {upload_prefix!r}")


def load_settings(environ: Mapping[str, str] | None = None, env_file: Path | None = Path(".env")) -> Settings:
    """Read settings from `environ` (default: os.environ) over `.env`; fail loudly on bad values."""
    env: dict[str, str] = read_env_file(env_file) if env_file else {}
    env.update(os.environ if environ is None else environ)
    return read(Settings, env, resolve=_resolve)


def env_example() -> str:
    """`.env.example` as the declarations above describe it."""
    return render_env_file(Settings, ENV_HEADER, GROUPS)


if __name__ == "__main__":
    print(env_example(), end="")
