"""The OpenAPI document, generated from the endpoints' declared request and response models, and the
Swagger UI / ReDoc pages, whose assets are vendored in server/static/apidocs (no CDN, no extra dependency)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter
from starlette.responses import HTMLResponse

from server.routing import Endpoint

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
    """One parameter per field, described by the field's docstring (handlers.schema.In)."""
    params = []
    for name, info in model.model_fields.items():
        schema = TypeAdapter(info.annotation or Any).json_schema(mode="validation")
        param = {"name": info.alias or name, "in": "query", "required": info.is_required(), "schema": schema}
        if info.description:
            alias = f" (also accepted as `{name}`)" if (info.alias or name) != name else ""
            param["description"] = info.description + alias
        params.append(param)
    return params


# Path parameters by name (the same name means the same thing on every route); a new one needs a line here, which
# tests/api/test_openapi_descriptions.py asks for.
_PATH_PARAMS = {
    "collection_id": "the collection's id",
    "context_id": "the live session's id",
    "dead_id": "the dead letter's id (GET /admin/jobs/dead)",
    "directory_id": "the directory's id",
    "event_id": "the event's id",
    "handle": "the user's handle, without the @",
    "media_id": "the media item's id",
    "notification_id": "the notification's id",
    "post_id": "the post's id",
    "process_id": "the process's id (a template or a live process)",
    "report_id": "the report's id",
    "step_id": "the step's id",
    "substep_id": "the substep's id",
    "template_id": "the template's id",
    "topic_id": "the topic's id",
    "user_id": "the user's id",
}
# The multipart `file` field of the upload routes.
_UPLOADS = {
    "/live/transcribe": "the recording: WebM, Ogg, MP3, WAV, FLAC or M4A audio, at most MAX_AUDIO_BYTES",
    "/media/upload": "the file: an image, a video or an audio recording",
    "/media/upload/profile": "the profile picture (an image)",
}


def _path_param(name: str) -> dict[str, Any]:
    param: dict[str, Any] = {"name": name, "in": "path", "required": True,
                             "schema": {"type": "string", "format": "uuid" if name == "id" or name.endswith("_id")
                                        else ""}}
    if name in _PATH_PARAMS:
        param["description"] = _PATH_PARAMS[name]
    return param


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
        params = [_path_param(n) for n in ep.param_names]
        if ep.query is not None:
            params.extend(_query_params(ep.query))
        if params:
            op["parameters"] = params
        if ep.body is not None:
            media = "application/x-www-form-urlencoded" if ep.form else "application/json"
            op["requestBody"] = {"required": True,
                                 "content": {media: {"schema": _schema(ep.body, "validation", components)}}}
        elif ep.raw_body:
            file: dict[str, Any] = {"type": "string", "format": "binary"}
            if ep.path in _UPLOADS:
                file["description"] = _UPLOADS[ep.path]
            op["requestBody"] = {"content": {"multipart/form-data": {"schema": {
                "type": "object", "properties": {"file": file}}}}}
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
