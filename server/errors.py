"""Errors mapped once: domain errors and bad input to HTTP statuses with `{detail, code}` bodies."""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError

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
WS_CODE: list[tuple[type[e.DomainError], str]] = [
    (e.NotFound, "not_found"),
    (e.Forbidden, "forbidden"),
    (e.Unauthorized, "unauthorized"),
    (e.Conflict, "conflict"),
    (e.RateLimited, "rate_limited"),
    (e.AIUnavailable, "ai_unavailable"),
    (e.AIRejected, "invalid"),
    (e.Invalid, "invalid"),
    (e.BadRequest, "invalid"),
    (e.PayloadTooLarge, "invalid"),
    (e.UnsupportedMediaType, "invalid"),
]


def ws_code(error: e.DomainError) -> str:
    for cls, code in WS_CODE:
        if isinstance(error, cls):
            return code
    return "internal"
