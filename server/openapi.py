"""The OpenAPI document, generated from the endpoints' declared request and response models, and the
Swagger UI / ReDoc pages, whose assets are vendored in server/static/apidocs (no CDN, no extra dependency)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter
from starlette.responses import HTMLResponse

from server.api import Endpoint

REF = "#/components/schemas/{model}"


def _schema(tp: Any, mode: str, components: dict[str, Any]) -> dict[str, Any]:
    schema = TypeAdapter(tp).json_schema(ref_template=REF, mode=mode, by_alias=True)  # type: ignore[arg-type]
    for name, definition in schema.pop("$defs", {}).items():
        components.setdefault(name, definition)
    if isinstance(tp, type) and issubclass(tp, BaseModel) and "properties" in schema:
        components.setdefault(tp.__name__, schema)
        return {"$ref": REF.format(model=tp.__name__)}
    return schema


def _query_params(model: type[BaseModel]) -> list[dict[str, Any]]:
    params = []
    for name, info in model.model_fields.items():
        schema = TypeAdapter(info.annotation or Any).json_schema(mode="validation")
        params.append({"name": info.alias or name, "in": "query", "required": info.is_required(),
                       "schema": schema, "description": f"also accepted as `{name}`"})
    return params


# The statuses of docs/api.md ("Status codes") a route may answer besides its success, all with the `Error` body.
# Most follow from what the endpoint declares (see `_error_statuses`); these routes have answers of their own.
_ROUTE_ERRORS: dict[tuple[str, str], set[int]] = {
    ("POST", "/auth/token"): {401, 429},  # wrong email or password; too many attempts
    ("POST", "/token"): {401, 429},
    ("POST", "/auth/refresh"): {401},
    ("POST", "/auth/guest"): {403},  # DEBUG only
    ("POST", "/users"): {409},  # email or handle taken
    ("POST", "/admin/initialize"): {401, 403},  # administrators only unless DEBUG
    ("POST", "/admin/initialize-library"): {401, 403},
    ("POST", "/market/initialize"): {401, 403},
    ("POST", "/users/reset-password/request"): {501},  # the server sends no email
    ("POST", "/users/reset-password/confirm"): {501},
    ("GET", "/metrics"): {401},  # when METRICS_TOKEN is set
    ("GET", "/users/preferences"): {307},  # deprecated: redirects to /users/me/preferences
    # AI: the model refused / is not configured or not reachable / sent nothing in time; the token budget
    ("POST", "/live/message"): {429, 502, 503, 504},
    ("POST", "/live/transcribe"): {502, 503, 504},
}
# Routes whose success is not JSON (they answer with a response of their own).
_ROUTE_CONTENT: dict[tuple[str, str], dict[str, Any]] = {
    ("GET", "/metrics"): {"text/plain": {"schema": {"type": "string"}}},  # the Prometheus exposition format
    ("GET", "/reports/{report_id}/download"): {"text/html": {"schema": {"type": "string"}},
                                               "text/csv": {"schema": {"type": "string"}}},
}
_ERROR_DESCRIPTIONS = {
    307: "moved (follow the Location header)",
    400: "malformed body, or an operation that cannot apply",
    401: "missing, invalid or expired token",
    403: "may see it but not do this (or administrators only)",
    404: "not found, or not visible to the caller",
    409: "conflicts with existing data or state",
    413: "body too large",
    415: "unsupported content type",
    422: "invalid input",
    429: "rate limited (see Retry-After)",
    501: "not available on this server",
    502: "the AI model refused the request",
    503: "a dependency (database, Redis, the AI service) is unavailable; retry later",
    504: "the AI service did not answer in time",
}


def _error_statuses(ep: Endpoint) -> list[int]:
    codes = {422, 503}  # every route validates its input and needs the database
    if ep.auth:
        codes |= {401, 403, 404}
    if ep.method != "GET":
        codes |= {400, 409}
    if ep.body is not None or ep.raw_body:
        codes |= {400, 413, 415}
    return sorted(codes | _ROUTE_ERRORS.get((ep.method, ep.path), set()))


def _error_response(status: int) -> dict[str, Any]:
    if status == 307:
        return {"description": _ERROR_DESCRIPTIONS[status]}
    return {"description": _ERROR_DESCRIPTIONS[status],
            "content": {"application/json": {"schema": {"$ref": REF.format(model="Error")}}}}


def document(endpoints: Sequence[Endpoint], version: str) -> dict[str, Any]:
    components: dict[str, Any] = {}
    paths: dict[str, Any] = {}
    for ep in endpoints:
        op: dict[str, Any] = {"summary": ep.summary, "tags": list(ep.tags),
                              "operationId": f"{ep.func.__module__.rsplit('.', 1)[-1]}_{ep.func.__name__}"}
        params = [{"name": n, "in": "path", "required": True,
                   "schema": {"type": "string", "format": "uuid" if n == "id" or n.endswith("_id") else ""}}
                  for n in ep.param_names]
        if ep.query is not None:
            params.extend(_query_params(ep.query))
        if params:
            op["parameters"] = params
        if ep.body is not None:
            media = "application/x-www-form-urlencoded" if ep.form else "application/json"
            op["requestBody"] = {"required": True,
                                 "content": {media: {"schema": _schema(ep.body, "validation", components)}}}
        elif ep.raw_body:
            op["requestBody"] = {"content": {"multipart/form-data": {"schema": {
                "type": "object", "properties": {"file": {"type": "string", "format": "binary"}}}}}}
        responses: dict[str, Any] = {}
        if ep.status == 204:
            responses["204"] = {"description": "done"}
        else:
            content = {"application/json": {"schema": _schema(ep.response, "serialization", components)}} \
                if ep.response is not None else {"application/json": {}}
            responses[str(ep.status)] = {"description": "success",
                                         "content": _ROUTE_CONTENT.get((ep.method, ep.path), content)}
        if ep.auth:
            op["security"] = [{"bearer": []}]
        for status in _error_statuses(ep):
            responses[str(status)] = _error_response(status)
        op["responses"] = responses
        openapi_path = ep.path
        paths.setdefault(openapi_path, {})[ep.method.lower()] = op
    components["Error"] = {
        "type": "object", "required": ["detail", "code"],
        "properties": {"detail": {"type": "string"}, "code": {"type": "string"},
                       "errors": {"type": "array", "items": {"type": "object"}},
                       "requestId": {"type": ["string", "null"]}},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "Convers.me API", "version": version,
                 "description": "REST routes of the Convers.me server. Keys are camelCase in responses; "
                                "requests accept camelCase or snake_case."},
        "paths": paths,
        "components": {"schemas": components,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}},
    }


ASSETS_DIR = Path(__file__).resolve().parent / "static" / "apidocs"
"""Swagger UI and ReDoc dist files copied from npm with their licences (see its README.md), served under
ASSETS_URL by a StaticFiles mount in server.app."""
ASSETS_URL = "/docs/assets"


def assets_dir() -> Path:
    return ASSETS_DIR


# The pages' Content-Security-Policy (same origin only) is set with the console's in server/security_headers.py.
SWAGGER = f"""<!doctype html><html><head><meta charset="utf-8"><title>Convers.me API</title>
<link rel="stylesheet" href="{ASSETS_URL}/swagger-ui/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="{ASSETS_URL}/swagger-ui/swagger-ui-bundle.js"></script>
<script src="{ASSETS_URL}/swagger-ui/swagger-ui-standalone-preset.js"></script>
<script src="/docs/swagger-init.js"></script></body></html>"""

# validatorUrl: null -- otherwise Swagger UI shows a badge image fetched from validator.swagger.io with the spec's URL.
SWAGGER_INIT = """window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui", validatorUrl: null,
presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset], layout: "StandaloneLayout"});"""

REDOC = f"""<!doctype html><html><head><meta charset="utf-8"><title>Convers.me API</title></head>
<body><redoc spec-url="/openapi.json"></redoc>
<script src="{ASSETS_URL}/redoc/redoc.standalone.js"></script></body></html>"""


def swagger_page() -> HTMLResponse:
    return HTMLResponse(SWAGGER)


def redoc_page() -> HTMLResponse:
    return HTMLResponse(REDOC)
