"""Health, readiness and API docs (assets served locally, spec generated from the code)."""

from __future__ import annotations

import httpx

from server.routes import all_endpoints


async def test_health_and_ready(client: httpx.AsyncClient) -> None:
    r = await client.get("/health")
    assert r.status_code == 200 and r.json()["status"] == "ok"
    r = await client.get("/ready")
    assert r.status_code == 200, r.text
    assert r.json()["checks"] == {"database": "ok", "migrations": "ok"}


async def test_every_response_has_a_server_request_id(client: httpx.AsyncClient) -> None:
    r = await client.get("/health", headers={"X-Request-ID": "client-chosen"})
    assert len(r.headers["x-request-id"]) == 32 and r.headers["x-request-id"] != "client-chosen"


async def test_openapi_lists_every_route_with_models(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    for ep in all_endpoints():
        assert ep.method.lower() in spec["paths"][ep.path], (ep.method, ep.path)
    login = spec["paths"]["/auth/token"]["post"]
    assert "application/x-www-form-urlencoded" in login["requestBody"]["content"]
    token_schema = spec["components"]["schemas"]["TokenOut"]
    assert {"accessToken", "tokenType", "refreshToken", "expiresIn"} <= set(token_schema["properties"])


async def test_docs_pages_and_their_assets_are_served_locally(client: httpx.AsyncClient) -> None:
    for page in ("/docs", "/redoc"):
        r = await client.get(page)
        assert r.status_code == 200 and "https://" not in r.text
    for asset in ("/docs/assets/swagger-ui-dist/swagger-ui-bundle.js", "/docs/assets/swagger-ui-dist/swagger-ui.css",
                  "/docs/assets/redoc/bundles/redoc.standalone.js", "/docs/swagger-init.js"):
        r = await client.get(asset)
        assert r.status_code == 200 and len(r.content) > 20, asset


async def test_cors_preflight_allows_the_frontend_only(client: httpx.AsyncClient) -> None:
    ok = await client.options("/events", headers={"Origin": "http://localhost:3000",
                                                  "Access-Control-Request-Method": "POST",
                                                  "Access-Control-Request-Headers": "authorization,x-debug-info"})
    assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == "http://localhost:3000"
    bad = await client.options("/events", headers={"Origin": "https://evil.example",
                                                   "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in bad.headers
