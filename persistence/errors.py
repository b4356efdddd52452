"""Domain errors: one root with typed fields. `server/errors.py` maps them to HTTP and WebSocket codes."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    code = "error"
    # True for the rare refusal that must still commit what led to it (revoking a leaked token family).
    keep_changes = False

    def __init__(self, message: str, *, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors or []


class NotFound(DomainError):
    code = "not_found"

    def __init__(self, resource: str, ident: object = None) -> None:
        super().__init__(f"{resource} not found" if ident is None else f"{resource} {ident} not found")
        self.resource = resource


class Forbidden(DomainError):
    code = "forbidden"


class Unauthorized(DomainError):
    code = "unauthorized"


class TokenReuse(Unauthorized):
    keep_changes = True


class Conflict(DomainError):
    code = "conflict"


class Invalid(DomainError):
    """The request is well-formed but its values are not acceptable (422)."""

    code = "invalid"


class BadRequest(DomainError):
    code = "bad_request"


class RateLimited(DomainError):
    code = "rate_limited"

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unavailable(DomainError):
    """A dependency (the database, Redis) did not answer: nothing was done, so the client may retry the same
    request after `retry_after` seconds."""

    code = "unavailable"

    def __init__(self, message: str = "a service the server depends on is unavailable; retry shortly",
                 retry_after: float = 2.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PayloadTooLarge(DomainError):
    code = "payload_too_large"


class UnsupportedMediaType(DomainError):
    code = "unsupported_media_type"


class NotImplementedFeature(DomainError):
    code = "not_implemented"


class AIUnavailable(DomainError):
    code = "ai_unavailable"


class AIRejected(DomainError):
    """The AI service refused the request itself (a bad request, the context too long, content filtered)."""

    code = "ai_rejected"


class AITimeout(AIUnavailable):
    """The AI service did not answer (or stopped sending) within the configured time."""

    code = "timeout"
