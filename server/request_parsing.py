"""A request's inputs as the pipeline reads them, strictly: path parameters (ids as UUIDs), the query string,
a capped JSON or urlencoded body, the bearer token. Bad input is a 4xx with a useful message, never a 500."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import parse_qsl

import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from channels import wire_json
from persistence.errors import BadRequest, Invalid, PayloadTooLarge, UnsupportedMediaType
from server import errors
from server.routing import Endpoint

MAX_JSON_BODY = 1024 * 1024
# The login form carries a username, a password and a few OAuth2 fields: a few KiB at most.
MAX_FORM_BODY = 16 * 1024
MAX_FORM_FIELDS = 50


def parse_path(endpoint: Endpoint, request: Request) -> dict[str, uuid.UUID | str]:
    parsed: dict[str, uuid.UUID | str] = {}
    for name, value in request.path_params.items():
        if name == "id" or name.endswith("_id"):
            try:
                parsed[name] = uuid.UUID(str(value))
            except ValueError:
                raise errors.validation_errors(
                    ValidationError.from_exception_data(
                        "path", [{"type": "uuid_parsing", "loc": (name,), "input": value,
                                  "ctx": {"error": "invalid UUID"}}]),
                    "path") from None
        else:
            _refuse_nul(str(value), name, "path")
            parsed[name] = value
    return parsed


def _refuse(where: str, problem: str) -> Invalid:
    field, _, message = problem.partition(": ")
    return Invalid(f"invalid {where}: {problem}", errors=[{"field": field, "message": message, "type": "value_error"}])


def _refuse_nul(value: str, name: str, where: str) -> None:
    # PostgreSQL refuses NUL in text: caught here, before any query runs, rather than as a 500 deep in one.
    if "\x00" in value:
        raise _refuse(where, f"{name}: may not contain a NUL character")


def query_dict(request: Request) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in request.query_params.multi_items():
        _refuse_nul(key, "parameter name", "query")
        _refuse_nul(value, key, "query")
        key = key.removesuffix("[]")
        if key in out:
            current = out[key]
            out[key] = [*current, value] if isinstance(current, list) else [current, value]
        else:
            out[key] = value
    return out


async def read_body(endpoint: Endpoint, request: Request) -> Any:
    if endpoint.form:
        content_type = request.headers.get("content-type", "")
        if "json" in content_type:
            return await _read_json(request)
        if "application/x-www-form-urlencoded" not in content_type:
            raise UnsupportedMediaType("send the form as application/x-www-form-urlencoded")
        return _parse_form(await _read_capped(request, MAX_FORM_BODY))
    return await _read_json(request)


def _parse_form(raw: bytes) -> dict[str, str]:
    """A urlencoded form, strictly: UTF-8, a bounded number of fields, no NUL; the first value of a repeated key."""
    try:
        text = raw.decode("ascii")  # urlencoded bodies are ASCII; anything else is percent-encoded
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS, encoding="utf-8",
                          errors="strict")
    except UnicodeDecodeError:
        raise BadRequest("the form is not valid urlencoded UTF-8") from None
    except ValueError:
        raise BadRequest(f"the form has more than {MAX_FORM_FIELDS} fields") from None
    form: dict[str, str] = {}
    for key, value in pairs:
        _refuse_nul(key, "field name", "body")
        _refuse_nul(value, key, "body")
        form.setdefault(key, value)
    return form


async def _read_capped(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _read_json(request: Request) -> Any:
    raw = await _read_capped(request, MAX_JSON_BODY)
    if not raw.strip():
        return {}
    content_type = request.headers.get("content-type", "application/json")
    if "json" not in content_type and "text/plain" not in content_type:
        raise UnsupportedMediaType("send the body as application/json")
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"body is not valid JSON: {exc}") from None
    if (problem := wire_json.problem(value)) is not None:
        raise _refuse("body", problem)
    return value


def validate(model: type[BaseModel], data: Any, where: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise errors.validation_errors(exc, where) from None


def bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()

