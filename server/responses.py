"""How the REST side answers: camelCase JSON rendered by orjson, a declared response type serialised through
a cached TypeAdapter, and a DomainError mapped once to its status, body and headers."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, TypeAdapter
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


_adapters: dict[Any, TypeAdapter[Any]] = {}


def serialize(response_type: Any, value: Any) -> Any:
    if response_type is None:
        if isinstance(value, BaseModel):
            return value.model_dump(mode="json", by_alias=True)
        return TypeAdapter(type(value)).dump_python(value, mode="json", by_alias=True)
    adapter = _adapters.get(response_type)
    if adapter is None:
        adapter = _adapters[response_type] = TypeAdapter(response_type)
    return adapter.dump_python(value, mode="json", by_alias=True)

