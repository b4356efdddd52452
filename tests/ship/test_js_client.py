"""The TypeScript realtime client (clients/js) against real servers: `npm ci`, `npm run build`, the committed
vendor copy (server/console/vendor, what /console serves) and the generated events checked fresh, then the
Node tests (`node --experimental-websocket --test`) run against two server instances on PostgreSQL + Redis with
the fake OpenAI server behind the AI sessions, and a scenario in Chromium that imports
/console/vendor/conversme.js from the server and talks to a Python client through it.

Node and npm are required: missing, the tests fail (.ci/run checks for them first)."""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page

from channels.client import RealtimeClient
from tests.realtime.conftest import pg_db  # noqa: F401  (fixture reused here)
from tests.realtime.harness import BIN, event_with, person

# The same stack as the console's end-to-end test (two instances, PostgreSQL, Redis, the fake OpenAI server) and
# its Chromium; fixtures imported here run once for this module.
from tests.ship.test_console_e2e import Stack, browser, stack  # noqa: F401

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
CLIENT = ROOT / "clients" / "js"
TIMEOUT = 15_000  # ms: each browser-side wait below waits up to this long for its event (a hang guard)


def run(cmd: list[str], *, timeout: float, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=CLIENT, capture_output=True, text=True, timeout=timeout, env=env)


def assert_ok(r: subprocess.CompletedProcess[str], what: str) -> None:
    assert r.returncode == 0, f"{what} failed ({r.returncode}):\n{r.stdout[-20000:]}\n{r.stderr[-10000:]}"


@pytest.fixture(scope="module")
def built() -> str:
    """`npm ci && npm run build`; the node binary's path."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.fail("node and npm are required for clients/js: apt-get install -y nodejs npm (.ci/run does it)")
    version = run([node, "--version"], timeout=30).stdout.strip()
    assert int(version.lstrip("v").split(".")[0]) >= 20, f"Node 20+ is required, found {version}"
    # One install at a time in this directory: `npm ci` starts by deleting node_modules, so a second worker's
    # install could pull tsc away from under this one's build (seen once as "tsc: not found" after a clean ci).
    digest = hashlib.sha1(str(CLIENT).encode()).hexdigest()[:12]
    lock_path = Path(tempfile.gettempdir()) / f"conversme-npm-{digest}.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        assert_ok(run([npm, "ci", "--no-audit", "--no-fund"], timeout=300), "npm ci")
        assert_ok(run([npm, "run", "build"], timeout=300), "npm run build")
    return node


def test_vendor_copy_is_a_fresh_build(built: str) -> None:
    """What /console serves is exactly what the TypeScript source builds to."""
    assert_ok(run([built, "scripts/vendor.mjs", "--check"], timeout=60), "vendor check")


def test_generated_events_are_fresh() -> None:
    r = run([sys.executable, "scripts/gen_events.py", "--check"], timeout=60)
    assert_ok(r, "src/events.ts freshness (run `npm run gen` in clients/js)")


def test_console_serves_the_client(stack: Stack) -> None:  # noqa: F811
    r = httpx.get(f"{stack.a.url}/console/vendor/conversme.js", timeout=10)
    assert r.status_code == 200
    assert "javascript" in r.headers["content-type"]
    assert (ROOT / "server" / "console" / "vendor" / "conversme.js").read_text() == r.text


def test_node_suite_against_real_servers(built: str, stack: Stack) -> None:  # noqa: F811
    # CONVERSME_SERVE: how to start one more instance of the stack (restart.test.mjs stops and starts its own).
    serve = {"bin": str(BIN), "env": stack.a.env}
    env = {**os.environ, "CONVERSME_URL": stack.a.url, "CONVERSME_URL_B": stack.b.url,
           "CONVERSME_SERVE": json.dumps(serve)}
    tests = sorted(str(p.relative_to(CLIENT)) for p in (CLIENT / "test").glob("*.test.mjs"))
    assert tests, "no Node tests found in clients/js/test"
    # A hang guard per test, and an exit even if a failed test left a socket or a timer behind.
    r = run([built, "--experimental-websocket", "--test", "--test-reporter=spec", "--test-timeout=180000",
             "--test-force-exit", *tests], timeout=900, env=env)
    print(r.stdout[-20000:])
    assert_ok(r, "node --test")


# Runs in the page: the served module, imported with a plain dynamic import() from the server's origin.
CONNECT = """async ({ token, topic }) => {
  const { Client, describeClose, localStoragePositions } = await import("/console/vendor/conversme.js");
  const client = new Client({ url: location.origin.replace(/^http/, "ws") + "/ws", getToken: async () => token,
                              positions: localStoragePositions() });
  const room = client.topic(topic);
  window.t = { client, room, chat: [], presenceChanges: 0, describeClose };
  room.on("chat.message", (line) => window.t.chat.push(line.text));
  room.presence.on("change", () => { window.t.presenceChanges++; });
  // Resolves when pred() holds, re-checked after every msg and presence change: waits on events, not polling (the
  // console's CSP also forbids the eval that Playwright's wait_for_function polls with).
  window.t.until = (pred) => new Promise((resolve) => {
    if (pred()) return resolve(true);
    const offs = [];
    const tick = () => { if (pred()) { offs.forEach((off) => off()); resolve(true); } };
    // client "msg" fires after the topic's own handlers (window.t.chat is up to date by then).
    offs.push(client.on("msg", tick), room.presence.on("change", tick));
  });
  client.connect();
  const reply = await room.join();
  return { present: Object.keys(reply.presence), status: client.status, label: describeClose(1012) };
}"""


async def until(page: Page, predicate: str, arg: str) -> None:
    """Wait (on the page's events) until `predicate(arg)` holds in the page."""
    async with asyncio.timeout(TIMEOUT / 1000):
        await page.evaluate(f"(arg) => window.t.until(() => ({predicate})(arg))", arg)


async def test_browser_scenario_in_chromium(built: str, stack: Stack, browser: Browser) -> None:  # noqa: F811
    async with httpx.AsyncClient(base_url=stack.a.url, timeout=30) as api:
        ada, grace = await person(api, "Ada"), await person(api, "Grace")
        event = await event_with(api, ada, grace)
    topic = f"event:{event['id']}"
    context = await browser.new_context()
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(f"{stack.a.url}/console")
    joined: dict[str, Any] = await page.evaluate(CONNECT, {"token": ada.token, "topic": topic})
    assert joined["present"] == [ada.id]
    assert joined["status"] == "online"
    assert joined["label"] == "Server restarting — reconnecting"

    # Grace, on the other instance through the Python client: presence reaches the page through Redis.
    async with RealtimeClient(stack.b.ws_url, token=grace.token) as other:
        await other.join(topic)
        await until(page, "(id) => window.t.room.presence.has(id)", grace.id)
        names = await page.evaluate("window.t.room.presence.list().map((m) => m.name).sort()")
        assert names == ["Ada", "Grace"]

        # A msg pushed by the other client arrives in the page.
        await other.push(topic, "chat.send", {"text": "hello from python"})
        await until(page, "(text) => window.t.chat.includes(text)", "hello from python")

        # The page pushes: the reply comes back to it, the msg reaches the other client.
        line = await page.evaluate("window.t.room.push('chat.send', { text: 'hello from chromium' })")
        assert line["text"] == "hello from chromium"
        assert line["authorId"] == ada.id
        frame = await other.next(topic=topic, event="chat.message")
        while frame["data"]["text"] != "hello from chromium":  # Grace's own line comes back to her first
            frame = await other.next(topic=topic, event="chat.message")
        # And a refused push rejects with a ReplyError the page can label.
        refused = await page.evaluate("""async () => {
          try { await window.t.room.push('chat.send', { text: '' }); return null; }
          catch (e) { return { name: e.name, code: e.code }; }
        }""")
        assert refused == {"name": "ReplyError", "code": "invalid"}

    # Grace gone: the page's presence drops her.
    await until(page, "(id) => !window.t.room.presence.has(id)", grace.id)
    assert await page.evaluate("window.t.chat") == ["hello from python", "hello from chromium"]
    # The position survives a reload in localStorage, where the client keeps it.
    stored = await page.evaluate("(topic) => JSON.parse(localStorage.getItem('conversme:pos:' + topic))", topic)
    assert stored == await page.evaluate("window.t.room.position")
    await page.evaluate("window.t.client.disconnect()")
    assert await page.evaluate("window.t.client.status") == "closed"
    assert errors == []
    await context.close()
