"""How the REST side answers: JSON rendered by orjson, and a DomainError mapped once to its status, body
and headers."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

from channels import wire_json
from persistence.errors import DomainError, RateLimited, Unauthorized, Unavailable
from server import errors


class ORJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return wire_json.dumps(content)


def error_response(error: DomainError, request_id: str | None = None) -> JSONResponse:
    headers: dict[str, str] = {}
    if isinstance(error, Unauthorized):
        headers["WWW-Authenticate"] = "Bearer"
    if isinstance(error, RateLimited | Unavailable):
        headers["Retry-After"] = str(max(1, int(error.retry_after)))
    content = errors.body(error)
    if request_id:
        content["requestId"] = request_id
    return ORJSONResponse(content, status_code=errors.status_for(error), headers=headers)
