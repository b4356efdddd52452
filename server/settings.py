"""Settings: one frozen object, loaded once from the environment and `.env`, passed down."""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from adapters.storage import StorageConfig
from handlers.links import served_link

PLACEHOLDER_SECRETS = frozenset(
    {"", "changeme", "change-me", "secret", "your-secret-key", "your_secret_key", "supersecret",
     "CHANGE_ME", "please-change-me", "dev", "development"}
)


class ConfigError(Exception):
    """A setting is missing or invalid; start-up stops with this message."""


@dataclass(frozen=True)
class Settings:
    debug: bool = False
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    api_workers: int = 1
    database_url: str = ""
    db_pool_size: int = 10
    db_max_overflow: int = 20
    db_pool_timeout: float = 30.0
    redis_url: str = "memory://"
    # REDIS_PREFIX: every Redis key and channel starts with it, so deployments (or test runs) can share a Redis.
    redis_prefix: str = "cm:"
    frontend_url: str = "http://localhost:3000"
    redirect_url: str = ""
    cors_origins: tuple[str, ...] = ()
    secret_key: str = ""
    algorithm: str = "HS256"
    access_token_expire_minutes: int = 15
    refresh_token_expire_days: int = 30
    openai_api_key: str = ""
    openai_base_url: str = ""
    openai_model: str = "gpt-4o-mini"
    openai_transcribe_model: str = "whisper-1"
    openai_timeout: float = 30.0  # seconds without a byte from the AI service before the call fails
    ai_tokens_per_minute_user: int = 20_000  # 0: no budget
    ai_tokens_per_minute_session: int = 40_000
    ai_context_tokens: int = 6_000  # prompt budget per turn (system prompt, checklist and recent messages)
    ai_max_output_tokens: int = 1_000
    ai_lease_seconds: float = 5.0  # a generation whose instance stops refreshing ends `interrupted` after this
    max_audio_bytes: int = 25 * 1024 * 1024
    data_dir: Path = Path("data")
    upload_dir: Path = Path("data/uploads")
    upload_url_prefix: str = "/uploads"
    max_upload_bytes: int = 25 * 1024 * 1024
    trusted_proxies: tuple[str, ...] = ()
    login_rate_per_account: int = 10
    login_rate_per_ip: int = 30
    login_rate_window_seconds: int = 300
    argon2_time_cost: int = 3
    argon2_memory_cost: int = 65536
    argon2_parallelism: int = 4
    admin_email: str = "admin@convers.me"
    admin_password: str = ""
    auto_migrate: bool = True
    max_page_size: int = 200
    # The durable topic log (event and user topics): how long, and how many per topic, a client can resume.
    log_retention_seconds: int = 86_400
    log_retention_messages: int = 1000
    log_level: str = "info"
    log_format: str = ""  # LOG_FORMAT: json | text; empty: text in DEBUG, json otherwise (server/logging.py)
    ws_auth_timeout: float = 10.0
    ws_heartbeat: int = 25
    ws_heartbeat_timeout: int = 10
    # How often each instance checks its sockets' sign-in sessions against the database: the backstop for a
    # `session.ended` announcement that never arrived (normally sockets close as soon as it does).
    ws_session_sweep_seconds: float = 60.0
    # How long an instance may serve a signed-in caller from memory (handlers.accounts.auth_cache); changes are
    # announced and applied at once, this bounds only an announcement lost with Redis. 0: a query on every request.
    auth_cache_seconds: float = 10.0
    ws_max_queue_bytes: int = 1024 * 1024
    ws_push_burst: int = 20
    ws_push_rate: float = 10.0
    ws_max_topics: int = 100
    instance_id: str = ""
    shutdown_timeout: int = 20
    # --- background jobs ---
    broker_url: str = "memory://"  # BROKER_URL, default REDIS_URL: memory:// runs jobs inside the server
    scheduler_interval: float = 1.0  # seconds between scheduler ticks (reminder delivery delay ≤ this + a job)
    embedded_scheduler: bool = True  # memory:// only: the server runs the scheduler loop itself
    job_max_retries: int = 3  # failed runs retried with exponential backoff, then dead-lettered
    job_retry_base: float = 2.0  # seconds: the first retry's delay (doubling each time, capped at 5 min)
    job_timeout: float = 120.0  # seconds one run may take
    job_redeliver_seconds: float = 180.0  # redis://: a dead worker's unacknowledged job runs again after this
    worker_concurrency: int = 16  # jobs one worker runs at a time
    reports_dir: Path = Path("data/reports")  # private report files (never under the public uploads mount)
    # STORAGE_URL: where files live. Empty: the local directories above; s3://BUCKET[/PREFIX]: an S3-compatible
    # bucket, reached with the AWS tools' variables (AWS_ENDPOINT_URL_S3, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
    # AWS_REGION), so every instance and worker sees the same files (adapters.storage).
    storage_url: str = ""
    aws_endpoint_url_s3: str = ""
    aws_access_key_id: str = ""
    aws_secret_access_key: str = ""
    aws_region: str = ""
    storage_presign: bool = True  # bucket downloads: redirect to a presigned URL; false: the app proxies them
    storage_presign_seconds: int = 300  # how long a presigned download URL stays valid
    storage_presign_endpoint: str = ""  # the bucket endpoint as clients reach it, when not AWS_ENDPOINT_URL_S3
    taskiq_dashboard_url: str = ""  # optional: report job lifecycle to a taskiq-dashboard (docs/jobs.md)
    taskiq_dashboard_token: str = ""
    auto_reports: bool = False  # the scheduler queues last week's / quarter's report for every active user
    metrics_token: str = ""  # when set, GET /metrics needs `Authorization: Bearer <token>`
    extra: Mapping[str, str] = field(default_factory=dict)

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

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)


def read_env_file(path: Path) -> dict[str, str]:
    """Parse a `.env` file: KEY=VALUE lines, `#` comments, optional quotes."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key = key.strip().removeprefix("export ").strip()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        else:
            # An unquoted value ends at ` #`: `.env.example` documents each setting on its own line.
            value = re.split(r"\s+#", value, maxsplit=1)[0].strip() if not value.startswith("#") else ""
        values[key] = value
    return values


def normalize_database_url(url: str) -> str:
    """Accept `postgresql://` and `sqlite:///` as written; pick the async drivers."""
    for prefix in ("postgres://", "postgresql://", "postgresql+psycopg2://", "postgresql+psycopg://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix):]
    if url.startswith("sqlite://") and not url.startswith("sqlite+aiosqlite://"):
        return "sqlite+aiosqlite://" + url[len("sqlite://"):]
    return url


def _bool(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ConfigError(f"{name} must be true or false, got {value!r}")


def _int(name: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {value!r}") from None


def _float(name: str, value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {value!r}") from None


def _list(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


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


_INTS = {
    "API_PORT": "api_port", "API_WORKERS": "api_workers", "DB_POOL_SIZE": "db_pool_size",
    "DB_MAX_OVERFLOW": "db_max_overflow", "ACCESS_TOKEN_EXPIRE_MINUTES": "access_token_expire_minutes",
    "REFRESH_TOKEN_EXPIRE_DAYS": "refresh_token_expire_days", "MAX_UPLOAD_BYTES": "max_upload_bytes",
    "LOGIN_RATE_PER_ACCOUNT": "login_rate_per_account", "LOGIN_RATE_PER_IP": "login_rate_per_ip",
    "LOGIN_RATE_WINDOW_SECONDS": "login_rate_window_seconds", "ARGON2_TIME_COST": "argon2_time_cost",
    "ARGON2_MEMORY_COST": "argon2_memory_cost", "ARGON2_PARALLELISM": "argon2_parallelism",
    "MAX_PAGE_SIZE": "max_page_size", "LOG_RETENTION_SECONDS": "log_retention_seconds",
    "LOG_RETENTION_MESSAGES": "log_retention_messages",
    "AI_TOKENS_PER_MINUTE_USER": "ai_tokens_per_minute_user",
    "AI_TOKENS_PER_MINUTE_SESSION": "ai_tokens_per_minute_session", "AI_CONTEXT_TOKENS": "ai_context_tokens",
    "AI_MAX_OUTPUT_TOKENS": "ai_max_output_tokens", "MAX_AUDIO_BYTES": "max_audio_bytes",
    "STORAGE_PRESIGN_SECONDS": "storage_presign_seconds",
}
_STRS = {
    "API_HOST": "api_host", "REDIS_URL": "redis_url", "REDIS_PREFIX": "redis_prefix", "FRONTEND_URL": "frontend_url",
    "REDIRECT_URL": "redirect_url", "ALGORITHM": "algorithm", "OPENAI_API_KEY": "openai_api_key",
    "OPENAI_BASE_URL": "openai_base_url", "OPENAI_MODEL": "openai_model",
    "OPENAI_TRANSCRIBE_MODEL": "openai_transcribe_model", "ADMIN_EMAIL": "admin_email",
    "ADMIN_PASSWORD": "admin_password", "UPLOAD_URL_PREFIX": "upload_url_prefix", "LOG_LEVEL": "log_level",
    "AWS_ACCESS_KEY_ID": "aws_access_key_id", "AWS_SECRET_ACCESS_KEY": "aws_secret_access_key",
    "STORAGE_PRESIGN_ENDPOINT": "storage_presign_endpoint",
}


def _storage(env: Mapping[str, str], values: dict[str, Any]) -> None:
    url = env.get("STORAGE_URL", "").strip()
    if url in ("local", "file://"):
        url = ""
    if url and (not url.startswith("s3://") or not url.removeprefix("s3://").split("/")[0]):
        raise ConfigError(f"STORAGE_URL must be empty (the local directories) or s3://BUCKET[/PREFIX], got {url!r}")
    values["storage_url"] = url
    # As the AWS tools read them: the S3-specific endpoint first, then the one for every service.
    values["aws_endpoint_url_s3"] = (env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or "").strip()
    values["aws_region"] = (env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "").strip()
    values["storage_presign"] = _bool("STORAGE_PRESIGN", env.get("STORAGE_PRESIGN", "true"))
    if url and bool(env.get("AWS_ACCESS_KEY_ID")) != bool(env.get("AWS_SECRET_ACCESS_KEY")):
        raise ConfigError("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY go together")
    if not 1 <= values.get("storage_presign_seconds", 300) <= 7 * 86_400:
        raise ConfigError("STORAGE_PRESIGN_SECONDS must be between 1 and 604800 (S3's limit of 7 days)")


def load_settings(environ: Mapping[str, str] | None = None, env_file: Path | None = Path(".env")) -> Settings:
    """Read settings from `environ` (default: os.environ) over `.env`; fail loudly on bad values."""
    env: dict[str, str] = read_env_file(env_file) if env_file else {}
    env.update(os.environ if environ is None else environ)
    values: dict[str, Any] = {}
    for key, attr in _INTS.items():
        if env.get(key):
            values[attr] = _int(key, env[key])
    for key, attr in _STRS.items():
        if key in env:
            values[attr] = env[key]
    for key, attr in (("WS_AUTH_TIMEOUT", "ws_auth_timeout"), ("WS_PUSH_RATE", "ws_push_rate"),
                      ("WS_SESSION_SWEEP_SECONDS", "ws_session_sweep_seconds"),
                      ("AUTH_CACHE_SECONDS", "auth_cache_seconds")):
        if env.get(key):
            values[attr] = _float(key, env[key])
    for key, attr in (("WS_HEARTBEAT", "ws_heartbeat"), ("WS_HEARTBEAT_TIMEOUT", "ws_heartbeat_timeout"),
                      ("WS_MAX_QUEUE_BYTES", "ws_max_queue_bytes"), ("WS_PUSH_BURST", "ws_push_burst"),
                      ("WS_MAX_TOPICS", "ws_max_topics"), ("SHUTDOWN_TIMEOUT", "shutdown_timeout")):
        if env.get(key):
            values[attr] = _int(key, env[key])
    values["instance_id"] = env.get("INSTANCE_ID", "")
    for key, attr in (("SCHEDULER_INTERVAL", "scheduler_interval"), ("JOB_RETRY_BASE", "job_retry_base"),
                      ("JOB_TIMEOUT", "job_timeout"), ("JOB_REDELIVER_SECONDS", "job_redeliver_seconds")):
        if env.get(key):
            values[attr] = _float(key, env[key])
    for key, attr in (("JOB_MAX_RETRIES", "job_max_retries"), ("WORKER_CONCURRENCY", "worker_concurrency")):
        if env.get(key):
            values[attr] = _int(key, env[key])
    values["embedded_scheduler"] = _bool("EMBEDDED_SCHEDULER", env.get("EMBEDDED_SCHEDULER", "true"))
    values["taskiq_dashboard_url"] = env.get("TASKIQ_DASHBOARD_URL", "")
    values["taskiq_dashboard_token"] = env.get("TASKIQ_DASHBOARD_TOKEN", "")
    values["auto_reports"] = _bool("AUTO_REPORTS", env.get("AUTO_REPORTS", "false"))
    values["metrics_token"] = env.get("METRICS_TOKEN", "")
    values["log_format"] = env.get("LOG_FORMAT", "").strip().lower()
    if values["log_format"] not in ("", "json", "text"):
        raise ConfigError(f"LOG_FORMAT must be json or text, got {env['LOG_FORMAT']!r}")
    for key, attr in (("OPENAI_TIMEOUT", "openai_timeout"), ("AI_LEASE_SECONDS", "ai_lease_seconds")):
        if env.get(key):
            values[attr] = _float(key, env[key])
    if env.get("DB_POOL_TIMEOUT"):
        values["db_pool_timeout"] = _float("DB_POOL_TIMEOUT", env["DB_POOL_TIMEOUT"])
    debug = _bool("DEBUG", env.get("DEBUG", "false"))
    values["debug"] = debug
    values["auto_migrate"] = _bool("AUTO_MIGRATE", env.get("AUTO_MIGRATE", "true"))
    values["cors_origins"] = _list(env.get("CORS_ORIGINS", ""))
    values["trusted_proxies"] = _list(env.get("TRUSTED_PROXIES", ""))
    data_dir = Path(env.get("DATA_DIR", "data"))
    values["data_dir"] = data_dir
    values["upload_dir"] = Path(env.get("UPLOAD_DIR", str(data_dir / "uploads")))
    values["reports_dir"] = Path(env.get("REPORTS_DIR", str(data_dir / "reports")))
    _storage(env, values)
    database_url = env.get("DATABASE_URL", "").strip()
    if not database_url:
        database_url = f"sqlite:///{(data_dir / 'conversme.db').as_posix()}"
    values["database_url"] = normalize_database_url(database_url)
    if not re.fullmatch(r"[A-Za-z0-9_.:{}-]{1,64}", values.get("redis_prefix", "cm:")):
        raise ConfigError("REDIS_PREFIX must be 1-64 characters of letters, digits and _ . : { } -")
    if not values.get("redis_url"):
        values["redis_url"] = "memory://"
    if values["redis_url"].startswith(("redis+cluster://", "rediss+cluster://")) and re.search(
            r"[{}]", values.get("redis_prefix", "cm:")):
        # On a cluster the code puts each topic's (queue's) name in the hash tag, after the prefix: braces in the
        # prefix would become the tag instead and pile every key of the deployment into one slot.
        raise ConfigError("REDIS_PREFIX must not contain { or } with a redis+cluster:// REDIS_URL")
    values["broker_url"] = env.get("BROKER_URL", "").strip() or values["redis_url"]
    secret = env.get("SECRET_KEY", "").strip()
    if secret in PLACEHOLDER_SECRETS or len(secret) < 32:
        if not debug:
            raise ConfigError(
                "SECRET_KEY is missing, a placeholder, or shorter than 32 characters. Set it to a long "
                "random value (python -c 'import secrets; print(secrets.token_urlsafe(48))'), "
                "or set DEBUG=true for local development."
            )
        secret = _debug_secret(data_dir)
    values["secret_key"] = secret
    if values.get("algorithm", "HS256") not in {"HS256", "HS384", "HS512"}:
        raise ConfigError("ALGORITHM must be one of HS256, HS384, HS512")
    if values.get("job_timeout", 120.0) >= values.get("job_redeliver_seconds", 180.0):
        # Redis hands a job nobody acknowledged for JOB_REDELIVER_SECONDS to another worker: a job still
        # running by then would run twice at once.
        raise ConfigError("JOB_TIMEOUT must be shorter than JOB_REDELIVER_SECONDS")
    if values.get("access_token_expire_minutes", 15) <= 0:
        raise ConfigError("ACCESS_TOKEN_EXPIRE_MINUTES must be positive")
    prefix = values.get("upload_url_prefix", "/uploads")
    if not prefix.startswith("/") or served_link(prefix) is None:
        # Every media URL starts with it: one that fails the link rule would have all of them served as null.
        raise ConfigError(f"UPLOAD_URL_PREFIX must be a site path such as /uploads, got {prefix!r}")
    return Settings(**values)
