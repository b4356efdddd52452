"""Structured logs: one JSON object per line (or readable text in development), the request id on every
line, and secrets scrubbed from whatever reaches a handler.

Every process (`serve`, `worker`, `scheduler`, `migrate`, …) calls `configure(settings, role)` once;
`conversme serve` hands `log_config(settings, "api")` to uvicorn instead, so that each of its worker
processes applies the same configuration (uvicorn re-applies `log_config` in every child it spawns).
The request id comes from `server.middleware.request_id_var` via `RequestIdFilter`, attached to the
handler so that records from every logger (ours, uvicorn's, SQLAlchemy's) carry it."""

from __future__ import annotations

import json
import logging
import logging.config
import re
import traceback
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from server.middleware import RequestIdFilter
from server.settings import Settings

REDACTED = "[REDACTED]"

# What a secret looks like when it ends up in a message by accident. Order matters: the key=value rules
# run before the bare-token rules so that the key name survives ("password=[REDACTED]").
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Authorization: Bearer xyz / "authorization": "Basic xyz" / (b'authorization', b'Bearer xyz')
    (re.compile(r"(?i)(authorization['\"]?\s*(?:[:=,]\s*(?:b?['\"])?|\s+))(?:(?:bearer|basic|token)\s+)?"
                r"[^\s'\",;)}\]]+"), r"\1" + REDACTED),
    (re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"), r"\1" + REDACTED),
    # password=…, "password": "…", secret_key: …, api_key=…, accessToken=…, refresh_token: …
    (re.compile(r"(?i)(['\"]?\b(?:password|passwd|pwd|new_?password|old_?password|current_?password|secret|"
                r"secret_?key|api_?key|openai_?api_?key|access_?token|refresh_?token|id_?token|token|"
                r"metrics_?token|dashboard_?token|client_?secret)['\"]?\s*[:=]\s*(?:b?['\"])?)"
                r"(?!\[REDACTED)[^\s'\",&;)}\]]+"), r"\1" + REDACTED),
    # JWTs anywhere (header.payload.signature, base64url; both first parts start with {" → "eyJ")
    (re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), REDACTED),
    # OpenAI-style keys: sk-…, sk-proj-…
    (re.compile(r"\bsk-[A-Za-z0-9_-]{16,}"), REDACTED),
    # credentials in URLs: postgresql://user:secret@host, redis://:secret@host
    (re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s/]+@"), r"\1" + REDACTED + "@"),
)

# LogRecord's own attributes: everything else on a record came from `extra=` and goes into the JSON.
_RESERVED = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime",
                                                                              "request_id", "color_message"}


class Redactor:
    """Scrubs the known secret shapes, plus the exact values of this deployment's configured secrets."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Short values would match ordinary words; the configured secrets are long by rule (SECRET_KEY ≥ 32).
        self.secrets = sorted({s for s in secrets if s and len(s) >= 8}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        for pattern, replacement in _PATTERNS:
            text = pattern.sub(replacement, text)
        return text


def _settings_secrets(settings: Settings) -> list[str]:
    found = [settings.secret_key, settings.openai_api_key, settings.metrics_token, settings.admin_password,
             settings.taskiq_dashboard_token]
    for url in (settings.database_url, settings.redis_url, settings.broker_url):
        match = re.search(r"://[^:/@\s]*:([^@\s/]+)@", url)
        if match:
            found.append(match.group(1))
    return found


class RedactingFilter(logging.Filter):
    """Renders the message once, scrubbed, and freezes it (args cleared) so no handler sees the raw one."""

    def __init__(self, redactor: Redactor | None = None) -> None:
        super().__init__()
        self.redact = redactor or Redactor()

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_redacted", False):
            return True
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not lose the line
            message = f"{record.msg!r} {record.args!r}"
        access = _access_fields(record)
        if access:
            for key, value in access.items():
                setattr(record, key, self.redact(value) if isinstance(value, str) else value)
        record.msg = self.redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        record.exc_info = None  # the scrubbed text above is what gets printed
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        for key, value in list(vars(record).items()):
            if key not in _RESERVED and isinstance(value, str):
                setattr(record, key, self.redact(value))
        setattr(record, "_redacted", True)  # noqa: B010 - LogRecord has no such attribute to declare
        return True


def _access_fields(record: logging.LogRecord) -> dict[str, Any]:
    """uvicorn's access line: `'%s - "%s %s HTTP/%s" %d'` with (client, method, path, version, status)."""
    if record.name != "uvicorn.access" or not isinstance(record.args, tuple) or len(record.args) != 5:
        return {}
    client, method, path, version, status = record.args
    return {"client": str(client), "method": str(method), "path": str(path), "http_version": str(version),
            "status": status}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, request_id, role, pid, extras, exc."""

    def __init__(self, role: str = "", instance: str = "") -> None:
        super().__init__()
        self.role = role
        self.instance = instance

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace(
                "+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        if self.role:
            entry["role"] = self.role
        if self.instance:
            entry["instance"] = self.instance
        entry["pid"] = record.process
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def __init__(self, role: str = "") -> None:
        prefix = f"{role} " if role else ""
        super().__init__(f"%(asctime)s %(levelname)-7s {prefix}%(name)s [%(request_id)s] %(message)s",
                         datefmt="%H:%M:%S")


def log_format(settings: Settings) -> str:
    """LOG_FORMAT wins; otherwise text in DEBUG (people read it), JSON everywhere else (machines read it)."""
    if settings.log_format in ("json", "text"):
        return settings.log_format
    return "text" if settings.debug else "json"


def log_config(settings: Settings, role: str = "api", fmt: str | None = None) -> dict[str, Any]:
    """A `logging.config.dictConfig` document: one stderr handler on the root logger, uvicorn's loggers
    routed into it (their own handlers dropped), SQLAlchemy kept quiet unless LOG_LEVEL=debug."""
    level = settings.log_level.upper() if settings.log_level else "INFO"
    if level == "TRACE":  # uvicorn's extra level; the stdlib does not know it
        level = "DEBUG"
    fmt = fmt or log_format(settings)
    formatter: dict[str, Any] = (
        {"()": JsonFormatter, "role": role, "instance": settings.instance_id} if fmt == "json"
        else {"()": TextFormatter, "role": role})
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "request_id": {"()": RequestIdFilter},
            "redact": {"()": RedactingFilter, "redactor": Redactor(_settings_secrets(settings))},
        },
        "formatters": {"main": formatter},
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr", "formatter": "main",
                       "filters": ["request_id", "redact"]},
        },
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {
            "uvicorn": {"level": level, "handlers": [], "propagate": True},
            "uvicorn.error": {"level": level, "handlers": [], "propagate": True},
            "uvicorn.access": {"level": level, "handlers": [], "propagate": True},
            "sqlalchemy": {"level": "INFO" if level == "DEBUG" else "WARNING", "handlers": [], "propagate": True},
            "alembic.runtime.plugins": {"level": "WARNING", "handlers": [], "propagate": True},
            "httpx": {"level": "WARNING", "handlers": [], "propagate": True},
            "httpcore": {"level": "WARNING", "handlers": [], "propagate": True},
        },
    }


def configure(settings: Settings, role: str = "api", fmt: str | None = None) -> None:
    logging.config.dictConfig(log_config(settings, role, fmt))
