"""The console's files (its own and the realtime client's build in vendor/) are served by the app from the
package, reference nothing outside it, and the admin realtime figures it shows are for admins only."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from tests.conftest import MakeUser

CONSOLE = Path(__file__).resolve().parents[2] / "server" / "console"
FILES = sorted(p.relative_to(CONSOLE).as_posix() for p in CONSOLE.rglob("*") if p.is_file())
MODULE_REF = re.compile(r'^(?:import|export) .* from "([^"]+)";$', re.M)


async def test_console_page_and_assets_are_served(client: httpx.AsyncClient) -> None:
    r = await client.get("/console")
    assert r.status_code == 308 and r.headers["location"] == "/console/"
    page = await client.get("/console/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "connect-src 'self'" in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert "vendor/conversme.js" in FILES and "realtime.js" in FILES
    for name in FILES:
        asset = await client.get(f"/console/{name}")
        assert asset.status_code == 200, name
        kind = {"js": "javascript", "css": "text/css", "html": "text/html"}[name.rsplit(".", 1)[1]]
        assert kind in asset.headers["content-type"], name
    assert (await client.get("/console/missing.js")).status_code == 404
    assert (await client.get("/console/..%2Fapp.py")).status_code == 404


def test_console_loads_nothing_from_elsewhere() -> None:
    html = (CONSOLE / "index.html").read_text()
    for ref in re.findall(r'(?:src|href)="([^"]+)"', html):
        assert not re.match(r"^(https?:)?//", ref), f"external reference {ref}"
        assert ref.startswith("data:") or (CONSOLE / ref).is_file(), ref
    for script in CONSOLE.rglob("*.js"):
        text = script.read_text()
        assert "http://" not in text and "https://" not in text, script.name
        for module in MODULE_REF.findall(text):
            assert module.startswith("./") and (script.parent / module).is_file(), (script.name, module)
        assert ".innerHTML" not in text, f"{script.name}: build DOM nodes, never markup from data"


def test_only_realtime_js_talks_to_the_socket() -> None:
    """The panels go through realtime.js, which wraps the shared client; the console has no socket of its own."""
    assert not (CONSOLE / "socket.js").exists()
    for script in CONSOLE.glob("*.js"):
        text = script.read_text()
        assert "new WebSocket" not in text, script.name
        if script.name != "realtime.js":
            assert "./vendor/" not in text, f"{script.name}: use realtime.js"


async def test_admin_realtime_is_for_admins(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    user = await make_user("plain")
    admin = await make_user("boss", admin=True)
    assert (await client.get("/admin/realtime")).status_code == 401
    r = await client.get("/admin/realtime", headers=user.headers)
    assert r.status_code == 403 and "instanceId" not in r.text
    r = await client.get("/admin/realtime", headers=admin.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"instanceId", "hub", "connections", "authenticated", "queuedBytes", "topics",
                         "subscriptions", "published", "topTopics"}
    assert body["hub"] == "memory" and body["connections"] == 0 and body["topTopics"] == []
