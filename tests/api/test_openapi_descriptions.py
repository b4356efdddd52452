"""Every request field in /openapi.json says what it is: each property of a request body (nested models and
array items included, through $ref) and each query and path parameter has a description. A field added without
one (the docstring under it, see handlers/schema.py `In`) fails here, with its place in the document."""

from __future__ import annotations

from typing import Any

import httpx


def _undescribed(schema: Any, where: str, components: dict[str, Any], seen: set[str]) -> list[str]:
    if not isinstance(schema, dict):
        return []
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        if name in seen:
            return []
        seen.add(name)
        return _undescribed(components[name], name, components, seen)
    found: list[str] = []
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        for sub in schema.get(key, []):
            found += _undescribed(sub, where, components, seen)
    for key in ("items", "additionalProperties"):
        found += _undescribed(schema.get(key), where, components, seen)
    for prop, sub in (schema.get("properties") or {}).items():
        if not str(sub.get("description", "")).strip():
            found.append(f"{where}.{prop}")
        found += _undescribed(sub, f"{where}.{prop}", components, seen)
    return found


async def test_every_request_field_and_parameter_has_a_description(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    components = spec["components"]["schemas"]
    missing: list[str] = []
    bodies = 0
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            for param in op.get("parameters", []):
                if not str(param.get("description", "")).strip():
                    missing.append(f"{method.upper()} {path}: {param['in']} parameter {param['name']}")
            for media in (op.get("requestBody") or {}).get("content", {}).values():
                bodies += 1
                missing += [f"{method.upper()} {path}: body {field}"
                            for field in _undescribed(media["schema"], "body", components, set())]
    assert bodies > 50  # the walk saw the request bodies
    assert missing == [], "\n".join(missing)


async def test_descriptions_are_the_fields_own(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    create = spec["components"]["schemas"]["EventCreate"]["properties"]
    assert "template" in create["templateProcessId"]["description"]
    events = {p["name"]: p for p in spec["paths"]["/events"]["get"]["parameters"]}
    assert events["templateProcessId"]["description"].endswith("(also accepted as `template_process_id`)")
    assert events["skip"]["description"].startswith("items to skip")
    [event_id] = spec["paths"]["/events/{event_id}"]["get"]["parameters"]
    assert event_id["description"] == "the event's id"
