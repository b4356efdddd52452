"""Errors mapped once: domain errors and bad input to HTTP statuses with `{detail, code}` bodies, and a
dependency that does not answer (the database, Redis) to `Unavailable`."""

from __future__ import annotations

import errno
import logging
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import redis.exceptions
import sqlalchemy.exc
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError

from channels.messages import ErrorCode
from persistence import errors as e

log = logging.getLogger("conversme.errors")

# Most specific first.
HTTP_STATUS: list[tuple[type[e.DomainError], int]] = [
    (e.NotFound, 404),
    (e.Forbidden, 403),
    (e.Unauthorized, 401),
    (e.Conflict, 409),
    (e.Invalid, 422),
    (e.BadRequest, 400),
    (e.RateLimited, 429),
    (e.Unavailable, 503),
    (e.PayloadTooLarge, 413),
    (e.UnsupportedMediaType, 415),
    (e.NotImplementedFeature, 501),
    (e.AIRejected, 502),
    (e.AITimeout, 504),
    (e.AIUnavailable, 503),
]


def status_for(error: e.DomainError) -> int:
    for cls, status in HTTP_STATUS:
        if isinstance(error, cls):
            return status
    return 400


def _loc(loc: tuple[int | str, ...], where: str) -> str:
    # A check on the whole input (a model validator) has no field: name the input itself.
    return ".".join(str(p) for p in loc if p not in ("body", "query")) or where


def validation_errors(error: ValidationError, where: str) -> e.Invalid:
    """Pydantic's errors as one readable sentence (the frontend shows `detail`) plus a field list."""
    fields: list[dict[str, Any]] = []
    for item in error.errors(include_url=False, include_context=False, include_input=False):
        fields.append({"field": _loc(tuple(item["loc"]), where), "message": item["msg"], "type": item["type"]})
    summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields[:5])
    if len(fields) > 5:
        summary += f" (and {len(fields) - 5} more)"
    return e.Invalid(f"invalid {where}: {summary}", errors=fields)


def body(error: e.DomainError) -> dict[str, Any]:
    out: dict[str, Any] = {"detail": error.message, "code": error.code}
    if error.errors:
        out["errors"] = error.errors
    return out


# WebSocket reply codes of the protocol contract, most specific first.
WS_CODE: list[tuple[type[e.DomainError], ErrorCode]] = [
    (e.NotFound, "not_found"),
    (e.Forbidden, "forbidden"),
    (e.Unauthorized, "unauthorized"),
    (e.Conflict, "conflict"),
    (e.RateLimited, "rate_limited"),
    (e.Unavailable, "unavailable"),
    (e.AIUnavailable, "ai_unavailable"),
    (e.AIRejected, "invalid"),
    (e.Invalid, "invalid"),
    (e.BadRequest, "invalid"),
    (e.PayloadTooLarge, "invalid"),
    (e.UnsupportedMediaType, "invalid"),
]


def ws_code(error: e.DomainError) -> ErrorCode:
    for cls, code in WS_CODE:
        if isinstance(error, cls):
            return code
    return "internal"


# What a database or Redis that is down, restarting, starting up or out of connections raises, at any depth.
_DEPENDENCY_DOWN: tuple[type[BaseException], ...] = (
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.TimeoutError,  # no pooled connection became free within DB_POOL_TIMEOUT
    asyncpg.PostgresConnectionError,  # 08xxx, ConnectionDoesNotExistError among them
    asyncpg.CannotConnectNowError,  # starting up, recovering after a crash
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
    redis.exceptions.ConnectionError,  # BusyLoadingError too: Redis still loading its data
    redis.exceptions.TimeoutError,
    # A Redis Cluster between a master's death and its replica's promotion, or a slot being moved.
    redis.exceptions.ClusterDownError,  # MasterDownError too
    redis.exceptions.TryAgainError,
    redis.exceptions.SlotNotCoveredError,
    ConnectionError,  # refused, reset, broken pipe
    TimeoutError,
)
# An OSError is a network failure only with one of these (or none: asyncio's "Multiple exceptions" when every
# address refused); a full disk or a missing file is a bug or an outage of ours, never "retry shortly".
_NETWORK_ERRNOS = {errno.ECONNREFUSED, errno.ECONNRESET, errno.ECONNABORTED, errno.EHOSTUNREACH,
                   errno.ENETUNREACH, errno.ENETDOWN, errno.ETIMEDOUT, errno.EPIPE, errno.EADDRNOTAVAIL}


def _dependency_down(error: BaseException) -> bool:
    if isinstance(error, _DEPENDENCY_DOWN):
        return True
    if isinstance(error, sqlalchemy.exc.DBAPIError) and error.connection_invalidated:
        return True
    return type(error) is OSError and (error.errno is None or error.errno in _NETWORK_ERRNOS)


def unavailable(error: BaseException) -> e.Unavailable | None:
    """`Unavailable` when `error` (or what it wraps: SQLAlchemy's `orig`, its cause) says the database or Redis did
    not answer; None for anything else, which is a bug and stays `internal`. The implicit context is not followed:
    a bug in an `except` clause handling a dropped connection is still a bug."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if _dependency_down(current):
            return e.Unavailable()
        if isinstance(current, sqlalchemy.exc.StatementError):
            pending.append(current.orig)
        pending.append(current.__cause__)
    return None


def translate(error: BaseException) -> e.DomainError | None:
    """The domain error a third-party exception stands for, the same for REST and the WebSocket: a constraint
    the change broke is a conflict, a dependency that did not answer is `unavailable`; None for a bug."""
    if isinstance(error, IntegrityError):
        return e.Conflict("the change conflicts with existing data")
    return unavailable(error)
