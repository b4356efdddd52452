"""Health, readiness and API docs (assets served locally, spec generated from the code)."""

from __future__ import annotations

import re
import sys
from html.parser import HTMLParser
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

import server
from server import openapi
from server.routes import all_endpoints
from tests.conftest import MakeUser


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


class _AssetRefs(HTMLParser):
    """Every URL a page makes the browser fetch: script src, link href, img/source/iframe src."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        wanted = {"script": "src", "link": "href", "img": "src", "source": "src", "iframe": "src"}.get(tag)
        for name, value in attrs:
            if name == wanted and value:
                self.urls.append(value)


def _asset_refs(html: str) -> list[str]:
    parser = _AssetRefs()
    parser.feed(html)
    parser.close()
    return parser.urls


EXPECTED_TYPES = {".js": ("text/javascript", "application/javascript"), ".css": ("text/css",)}


@pytest.mark.parametrize(("page", "expected"), [
    ("/docs", {"swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "swagger-init.js"}),
    ("/redoc", {"redoc.standalone.js"}),
])
async def test_docs_pages_and_their_assets_are_served_locally(client: httpx.AsyncClient, page: str,
                                                              expected: set[str]) -> None:
    r = await client.get(page)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "http://" not in r.text and "https://" not in r.text and "//cdn" not in r.text
    urls = _asset_refs(r.text)
    assert {PurePosixPath(urlsplit(u).path).name for u in urls} == expected, urls
    for url in urls:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc and url.startswith("/") and not url.startswith("//"), url
        asset = await client.get(url)
        assert asset.status_code == 200, url
        media_type = asset.headers["content-type"].split(";")[0].strip()
        assert media_type in EXPECTED_TYPES[PurePosixPath(parts.path).suffix], (url, media_type)
        assert len(asset.content) > 20, url
    # The bundles themselves may try another origin (ReDoc's footer logo comes from cdn.redoc.ly): the page's
    # policy keeps every fetch on this server.
    csp = dict(d.strip().split(" ", 1) for d in r.headers["content-security-policy"].split(";"))
    assert csp["default-src"] == "'self'" and csp["object-src"] == "'none'"
    for directive, sources in csp.items():
        assert not re.search(r"https?:|\*|//", sources), (directive, sources)
        assert set(sources.split()) <= {"'self'", "'none'", "'unsafe-inline'", "'unsafe-eval'", "data:", "blob:"}
    assert "'unsafe-inline'" not in csp["script-src"]


async def test_swagger_ui_does_not_call_the_online_validator(client: httpx.AsyncClient) -> None:
    init = await client.get("/docs/swagger-init.js")
    assert init.status_code == 200 and "validatorUrl: null" in init.text and "https://" not in init.text


def test_vendored_docs_assets_come_with_their_licences() -> None:
    assets = openapi.assets_dir()
    assert assets.is_relative_to(Path(server.__file__).parent / "static")
    assert "Apache License" in (assets / "swagger-ui" / "LICENSE").read_text()
    assert (assets / "swagger-ui" / "NOTICE").is_file()  # Apache-2.0 section 4(d)
    assert "MIT License" in (assets / "redoc" / "LICENSE").read_text()
    readme = (assets / "README.md").read_text()
    assert "swagger-ui-dist" in readme and "redoc" in readme and "Refreshing" in readme


def test_docs_need_no_django_package() -> None:
    """The assets used to come from drf-spectacular-sidecar, which pulls in Django: nothing may refer to it now."""
    root = Path(server.__file__).parent
    for source in root.rglob("*.py"):
        text = source.read_text().lower()
        assert "spectacular" not in text and "django" not in text, source
    assert not {"django", "drf_spectacular_sidecar"} & set(sys.modules)


async def test_cors_preflight_allows_the_frontend_only(client: httpx.AsyncClient) -> None:
    ok = await client.options("/events", headers={"Origin": "http://localhost:3000",
                                                  "Access-Control-Request-Method": "POST",
                                                  "Access-Control-Request-Headers": "authorization,x-debug-info"})
    assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == "http://localhost:3000"
    bad = await client.options("/events", headers={"Origin": "https://evil.example",
                                                   "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in bad.headers


def _documented(spec: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    responses: dict[str, Any] = spec["paths"][path][method.lower()]["responses"]
    return responses


@pytest.mark.parametrize(("method", "path", "request_kw", "status"), [
    ("GET", "/events/{event_id}", {}, 404),
    ("DELETE", "/topics/{topic_id}", {}, 403),  # a non-admin on a topic write
    ("POST", "/events", {"content": b"{not json", "headers": {"content-type": "application/json"}}, 400),
    ("POST", "/events", {"content": b"{}", "headers": {"content-type": "application/xml"}}, 415),
    ("POST", "/events", {"content": b"[" * (1024 * 1024 + 1), "headers": {"content-type": "application/json"}}, 413),
    ("POST", "/users/reset-password/request", {}, 501),
    ("POST", "/auth/refresh", {"json": {"refreshToken": "nope"}, "auth": False}, 401),
])
async def test_openapi_documents_the_error_statuses_routes_answer(
        client: httpx.AsyncClient, make_user: MakeUser, method: str, path: str, request_kw: dict[str, Any],
        status: int) -> None:
    """The fuzz (tests/fuzz/test_rest.py) found every route answering statuses its operation did not document
    (404, 403, 400, 413, 415, 501 ...): each one is documented now, with the `Error` body."""
    spec = (await client.get("/openapi.json")).json()
    user = await make_user()
    kw = dict(request_kw)
    headers = {} if kw.pop("auth", True) is False else dict(user.headers)
    headers.update(kw.pop("headers", {}))
    r = await client.request(method, re.sub(r"{[^}]+}", "00000000-0000-4000-8000-000000000000", path),
                             headers=headers, **kw)
    assert r.status_code == status, r.text
    documented = _documented(spec, method, path)
    assert str(status) in documented, sorted(documented)
    assert documented[str(status)]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    assert {"detail", "code"} <= set(r.json())


async def test_openapi_documents_non_json_answers(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    r = await client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    assert list(_documented(spec, "GET", "/metrics")["200"]["content"]) == ["text/plain"]
    assert set(_documented(spec, "GET", "/reports/{report_id}/download")["200"]["content"]) == {"text/html",
                                                                                               "text/csv"}


def test_every_operation_documents_the_errors_every_route_may_answer() -> None:
    spec = openapi.document(all_endpoints(), "test")
    for ep in all_endpoints():
        documented = set(_documented(spec, ep.method, ep.path))
        assert {"422", "503"} <= documented, (ep.method, ep.path)
        if ep.auth:
            assert {"401", "403", "404"} <= documented, (ep.method, ep.path)
        if ep.body is not None or ep.raw_body:
            assert {"400", "413", "415"} <= documented, (ep.method, ep.path)


async def test_the_original_health_page_reads_five_of_five(client: httpx.AsyncClient) -> None:
    """The original frontend's health page (app/health_check.ts) asks these without a token and counts a 2xx
    JSON answer as a success; `/templates/{id}` and `/directories/{id}` must not swallow them."""
    for path in ("/health", "/templates/health", "/directories/health", "/templates/test", "/directories/test"):
        r = await client.get(path)
        assert r.status_code == 200, (path, r.text)
        assert r.json()["status"] == "ok"
    body = (await client.get("/templates/test")).json()
    assert set(body) == {"status", "router", "check", "timestamp"} and body["router"] == "templates"
    for router in ("users", "events", "processes", "live-processes", "posts", "topics", "live", "plan",
                   "progress", "reports"):
        r = await client.get(f"/{router}/health")
        assert r.status_code == 200 and r.json()["router"] == router, router
    assert (await client.get("/templates/not-an-id")).status_code in (401, 422)
