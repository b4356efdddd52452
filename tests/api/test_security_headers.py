"""Security headers on every kind of HTTP response: nosniff everywhere; HTML never framed; the server's own pages
(console, Swagger UI, ReDoc) with a same-origin Content-Security-Policy; uploads served as their sniffed type,
or as an attachment."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import HTMLResponse, PlainTextResponse
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from server.openapi import ASSETS_DIR
from server.security_headers import SecurityHeadersMiddleware
from tests.api.postkit import wav
from tests.conftest import Backend, MakeUser

SAME_ORIGIN_SOURCES = {"'self'", "'none'", "'unsafe-inline'", "'unsafe-eval'", "data:", "blob:"}
# A valid GIF header followed by an HTML document: a browser that sniffed it would run the script.
POLYGLOT = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;<html><body><script>alert(document.domain)</script></body></html>"


def assert_nosniff(r: httpx.Response) -> None:
    # Exactly one: a route that set it too must not end up with "nosniff, nosniff".
    assert r.headers.get_list("x-content-type-options") == ["nosniff"], (r.url, r.headers)


def assert_not_framable(r: httpx.Response) -> None:
    assert r.headers["x-frame-options"] == "DENY", r.url
    policies = r.headers.get_list("content-security-policy")
    assert any(re.search(r"(^|;)\s*frame-ancestors 'none'\s*(;|$)", p) for p in policies), policies


def policy(r: httpx.Response) -> dict[str, set[str]]:
    (csp,) = r.headers.get_list("content-security-policy")
    directives = [d.strip().split() for d in csp.split(";") if d.strip()]
    return {d[0]: set(d[1:]) for d in directives}


async def test_json_api_and_error_responses(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    a = await make_user("ann")
    responses = {
        "ok": await client.get("/users/me", headers=a.headers),
        "health": await client.get("/health"),
        "401": await client.get("/users/me"),
        "404 route": await client.get("/no/such/route"),
        "404 row": await client.get(f"/events/{uuid.uuid4()}", headers=a.headers),
        "405": await client.delete("/health"),
        "422": await client.post("/events", headers=a.headers, json={"title": ""}),
        "201": await client.post("/notifications", headers=a.headers, json={"title": "t", "message": "m"}),
        "preflight": await client.options("/events", headers={"Origin": "http://localhost:3000",
                                                              "Access-Control-Request-Method": "POST"}),
    }
    expected = {"ok": 200, "health": 200, "401": 401, "404 route": 404, "404 row": 404, "405": 405, "422": 422,
                "201": 201, "preflight": 200}
    assert {k: r.status_code for k, r in responses.items()} == expected
    for r in responses.values():
        assert_nosniff(r)
        assert "x-frame-options" not in r.headers  # framing rules are for documents, not data


@pytest.mark.parametrize("page", ["/console/", "/docs", "/redoc"])
async def test_own_pages_have_a_same_origin_policy_and_refuse_framing(client: httpx.AsyncClient, page: str) -> None:
    r = await client.get(page)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert_nosniff(r)
    assert_not_framable(r)
    assert r.headers["referrer-policy"] == "no-referrer"
    csp = policy(r)  # one policy, not the page's plus the middleware's
    assert csp["frame-ancestors"] == {"'none'"} and csp["base-uri"] <= {"'self'", "'none'"}
    assert csp["default-src"] <= {"'self'", "'none'"} and csp.get("object-src", {"'none'"}) == {"'none'"}
    for directive, sources in csp.items():
        assert sources <= SAME_ORIGIN_SOURCES, (page, directive, sources)
    assert "'unsafe-inline'" not in csp.get("script-src", set())


async def test_redoc_cannot_load_its_logo_from_the_cdn(client: httpx.AsyncClient) -> None:
    """ReDoc 2.5 always renders its footer logo from cdn.redoc.ly (`hideLogo` is only in its config schema, the
    renderer never reads it): nothing we serve points there, and the page's policy blocks the request (ReDoc
    then drops the <img> in its onError)."""
    page = await client.get("/redoc")
    assert "cdn.redoc.ly" not in page.text and "https://" not in page.text and "http://" not in page.text
    csp = policy(page)
    assert csp["img-src"] <= {"'self'", "data:", "blob:"} and csp["default-src"] == {"'self'"}
    bundle = (ASSETS_DIR / "redoc" / "redoc.standalone.js").read_text()
    remote_images = set(re.findall(r'src:"(https?://[^"]+)"', bundle))
    assert remote_images == {"https://cdn.redoc.ly/redoc/logo-mini.svg"}, "a new remote asset: check the policy"


@pytest.mark.parametrize("path", ["/docs/assets/redoc/redoc.standalone.js", "/docs/assets/swagger-ui/swagger-ui.css",
                                  "/docs/swagger-init.js", "/console/console.js", "/openapi.json", "/"])
async def test_static_files_and_assets(client: httpx.AsyncClient, path: str) -> None:
    r = await client.get(path)
    assert r.status_code == 200, path
    assert_nosniff(r)
    assert not r.headers["content-type"].startswith("text/html")


async def test_a_gif_html_polyglot_is_served_as_a_gif_with_nosniff(client: httpx.AsyncClient,
                                                                    make_user: MakeUser) -> None:
    a = await make_user("ann")
    r = await client.post("/media/upload", headers=a.headers, files={"file": ("page.html", POLYGLOT, "text/html")})
    assert r.status_code == 201, r.text
    url = r.json()["url"]
    assert url.endswith(".gif") and r.json()["mimeType"] == "image/gif"
    served = await client.get(url)
    assert served.status_code == 200 and served.content == POLYGLOT
    assert served.headers["content-type"] == "image/gif"
    assert_nosniff(served)
    assert "content-disposition" not in served.headers
    part = await client.get(url, headers={"Range": "bytes=0-5"})
    assert part.status_code == 206 and part.content == b"GIF89a" and part.headers["content-type"] == "image/gif"
    assert_nosniff(part)


async def test_uploaded_audio_is_served_inline_as_its_sniffed_type(client: httpx.AsyncClient,
                                                                    make_user: MakeUser) -> None:
    a = await make_user("ann")
    r = await client.post("/media/upload", headers=a.headers, files={"file": ("a.bin", wav(), "text/plain")})
    assert r.status_code == 201, r.text
    served = await client.get(r.json()["url"])
    assert served.headers["content-type"] == "audio/wav" and "content-disposition" not in served.headers
    assert_nosniff(served)


@pytest.mark.parametrize("name", ["media/stray.html", "media/logo.svg", "media/notes.txt", "media/noextension"])
async def test_any_other_stored_file_is_an_attachment(client: httpx.AsyncClient, backend: Backend,
                                                      name: str) -> None:
    """Only what the upload routes accept (typed by its bytes) is rendered; a file that got into the directory
    another way is downloaded, never run as a page (or an SVG with scripts) on this origin."""
    root = backend.state.settings.upload_dir
    (root / name).parent.mkdir(parents=True, exist_ok=True)
    (root / name).write_bytes(b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>")
    try:
        r = await client.get(f"{backend.state.settings.upload_url_prefix}/{name}")
        assert r.status_code == 200
        assert r.headers["content-disposition"] == "attachment"
        assert r.headers["content-type"] == "application/octet-stream"
        assert_nosniff(r)
        assert "x-frame-options" not in r.headers
    finally:
        (root / name).unlink()


async def test_a_missing_upload_is_a_plain_404(client: httpx.AsyncClient, backend: Backend) -> None:
    r = await client.get(f"{backend.state.settings.upload_url_prefix}/media/{uuid.uuid4().hex}.gif")
    assert r.status_code == 404 and "content-disposition" not in r.headers
    assert_nosniff(r)


# ---- the middleware alone: any other HTML, and WebSockets left alone -----------------------------------


def _app() -> Starlette:
    async def page(request: Any) -> HTMLResponse:
        return HTMLResponse("<p>a report</p>", headers={"Content-Security-Policy": "default-src 'none'"})

    async def text(request: Any) -> PlainTextResponse:
        return PlainTextResponse("<p>not html</p>")

    return Starlette(routes=[Route("/report", page), Route("/text", text)])


async def test_any_other_html_refuses_framing_and_keeps_its_own_policy() -> None:
    app = SecurityHeadersMiddleware(_app())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        r = await c.get("/report")
        assert_nosniff(r)
        assert_not_framable(r)
        assert "default-src 'none'" in r.headers.get_list("content-security-policy")
        plain = await c.get("/text")
        assert_nosniff(plain)
        assert "x-frame-options" not in plain.headers and "content-security-policy" not in plain.headers


async def test_websocket_sends_are_not_wrapped() -> None:
    seen: list[Send] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(send)

    async def send(message: Message) -> None:
        pass

    async def receive() -> Message:
        return {"type": "websocket.connect"}

    await SecurityHeadersMiddleware(inner)({"type": "websocket", "path": "/ws", "headers": []}, receive, send)
    assert seen == [send]
