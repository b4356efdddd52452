"""The console end to end in headless Chromium (Debian's package, driven by Playwright): two users in two
browser contexts, each on its own server instance (PostgreSQL + Redis), sign in through the page, open the
same event room, see each other in presence, and see each other's ticks live. The live AI session streams
an answer (from the fake OpenAI-compatible server) whose suggested operation, applied, ticks the checklist;
an admin sees connections and jobs.

Screenshots go to $CONSOLE_SCREENSHOTS (default /tmp/conversme-console) for a human look; nothing is
compared against them."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest
from playwright.async_api import Browser, Locator, Page, async_playwright, expect

from tests.conftest import REDIS_URL
from tests.fakes.openai_server import FakeOpenAI
from tests.realtime.conftest import pg_db  # noqa: F401  (fixture reused here)
from tests.realtime.harness import Person, ServerProcess, event_with, migrate, person, server_env

pytestmark = pytest.mark.slow

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
HAVE_CHROMIUM = os.path.exists(CHROMIUM)
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PASSWORD = "correct horse battery"  # tests.realtime.harness.person's
SHOTS = Path(os.environ.get("CONSOLE_SCREENSHOTS", "/tmp/conversme-console"))
TIMEOUT = 15_000  # ms: every expectation below waits up to this long


@dataclass
class Stack:
    a: ServerProcess
    b: ServerProcess
    fake: FakeOpenAI
    database_url: str


@pytest.fixture(scope="module")
def stack(pg_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:  # noqa: F811
    fake = FakeOpenAI().start()
    env = server_env(pg_db, REDIS_URL, tmp_path_factory.mktemp("console"), OPENAI_API_KEY="test",
                     OPENAI_BASE_URL=fake.url, OPENAI_MODEL="fake-model", OPENAI_TIMEOUT="10")
    migrate(env)
    a, b = ServerProcess(env).start(), ServerProcess(env).start()
    try:
        yield Stack(a, b, fake, pg_db)
    finally:
        a.stop()
        b.stop()
        fake.stop()


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    if not HAVE_CHROMIUM:
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (.ci/run does it)")
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


async def open_console(browser: Browser, server: ServerProcess, who: Person) -> Page:
    context = await browser.new_context(viewport={"width": 1400, "height": 900})
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    setattr(page, "js_errors", errors)  # noqa: B010 - checked at the end of each test
    await page.goto(f"{server.url}/console")
    await page.fill("input[name=email]", who.email)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("#signin-form button[type=submit]")
    await expect(page.get_by_test_id("status")).to_have_attribute("data-state", "online", timeout=TIMEOUT)
    await expect(page.get_by_test_id("whoami")).to_contain_text(f"@{who.handle}")
    return page


async def open_room(page: Page, event_id: str) -> None:
    await page.click(f"[data-testid=event][data-event-id='{event_id}']")
    await expect(page.get_by_test_id("step").first).to_be_visible(timeout=TIMEOUT)


def step(page: Page, content: str) -> Locator:
    return page.locator("[data-testid=step]", has=page.locator(":scope > label", has_text=content))


async def shot(page: Page, name: str) -> None:
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)  # creates the directory


def no_js_errors(*pages: Page) -> None:
    for page in pages:
        assert getattr(page, "js_errors") == [], getattr(page, "js_errors")  # noqa: B009


async def test_two_users_see_presence_and_each_others_ticks_live(stack: Stack, browser: Browser) -> None:
    async with httpx.AsyncClient(base_url=stack.a.url, timeout=30) as api:
        ada, grace = await person(api, "Ada"), await person(api, "Grace")
        event = await event_with(api, ada, grace)
    # Each on its own instance: what one ticks reaches the other through Redis.
    page_a = await open_console(browser, stack.a, ada)
    page_b = await open_console(browser, stack.b, grace)
    await open_room(page_a, event["id"])
    await open_room(page_b, event["id"])
    for page in (page_a, page_b):
        await expect(page.get_by_test_id("room-title")).to_have_text("Standup")
        presence = page.get_by_test_id("presence").locator("li")
        await expect(presence).to_have_count(2, timeout=TIMEOUT)
        await expect(presence).to_contain_text(["Ada", "Grace"])

    one_a, one_b = step(page_a, "one"), step(page_b, "one")
    await expect(one_b).to_have_attribute("data-completed", "false")
    await one_a.locator("> label input").check()
    # Grace's page shows it ticked without a reload, with the substep completed along with it.
    await expect(one_b).to_have_attribute("data-completed", "true", timeout=TIMEOUT)
    await expect(one_b.locator("> label input")).to_be_checked()
    await expect(one_b.locator("[data-testid=substep]")).to_have_attribute("data-completed", "true")
    await expect(page_b.get_by_test_id("progress")).to_have_text("1/2")
    await expect(page_b.get_by_test_id("activity")).to_contain_text("step “one” done")

    # And back: Grace reopens the substep, Ada sees it.
    await one_b.locator("[data-testid=substep] input").uncheck()
    await expect(one_a.locator("[data-testid=substep]")).to_have_attribute("data-completed", "false",
                                                                             timeout=TIMEOUT)
    await shot(page_a, "room-ada")
    await shot(page_b, "room-grace")

    # Grace leaves (closes her page): Ada's presence drops her.
    await page_b.context.close()
    await expect(page_a.get_by_test_id("presence").locator("li")).to_have_count(1, timeout=TIMEOUT)
    no_js_errors(page_a, page_b)
    await page_a.context.close()


async def test_live_ai_answer_streams_in_and_its_suggestion_ticks_the_checklist(stack: Stack,
                                                                               browser: Browser) -> None:
    async with httpx.AsyncClient(base_url=stack.a.url, timeout=30) as api:
        ada = await person(api, "Ada")
        event = await event_with(api, ada)
        steps = (await api.get(f"/processes/{event['processId']}/steps", headers=ada.headers)).json()
    two = next(s for s in steps if s["content"] == "two")
    marker = stack.fake.script(uuid.uuid4().hex, text="Step two is next: the rest is already done, so tick it now.",
                               tool_arguments={"is_process_related": True, "suggested_operations": [
                                   {"operation": "complete_step", "priority": "high", "description": "two",
                                    "step_id": two["id"]}]})
    page = await open_console(browser, stack.a, ada)
    await open_room(page, event["id"])
    live = page.get_by_test_id("live")
    await live.get_by_test_id("live-open").click()
    await page.get_by_test_id("live-input").fill(f"What is next? {marker} [rate:12]")
    await page.get_by_test_id("live-send").click()
    await expect(live.get_by_test_id("msg-user")).to_contain_text("What is next?", timeout=TIMEOUT)
    answer = live.get_by_test_id("msg-assistant").last
    # Mid-stream: part of the answer is there and more is coming.
    await expect(answer).to_have_attribute("data-state", "streaming", timeout=TIMEOUT)
    await expect(answer).to_contain_text("Step two", timeout=TIMEOUT)
    await shot(page, "live-streaming")
    await expect(answer).to_have_attribute("data-state", "done", timeout=TIMEOUT)
    await expect(answer.locator(".text")).to_have_text("Step two is next: the rest is already done, so tick it now.")
    apply = answer.locator(".ops button")
    await expect(apply).to_have_count(1)
    await apply.click()
    await expect(apply).to_have_text("applied", timeout=TIMEOUT)
    # The operation ran through the step handlers: the room (event topic) shows step two ticked.
    await expect(step(page, "two")).to_have_attribute("data-completed", "true", timeout=TIMEOUT)
    await shot(page, "live-done")
    no_js_errors(page)
    await page.context.close()


async def test_admin_sees_connections_topics_and_jobs(stack: Stack, browser: Browser) -> None:
    async with httpx.AsyncClient(base_url=stack.a.url, timeout=30) as api:
        boss = await person(api, "Boss")
        event = await event_with(api, boss)
    conn = await asyncpg.connect(stack.database_url)
    try:
        await conn.execute("UPDATE users SET is_admin = true WHERE id = $1", uuid.UUID(boss.id))
    finally:
        await conn.close()
    page = await open_console(browser, stack.a, boss)
    await open_room(page, event["id"])
    await page.get_by_test_id("tab-admin").click()
    realtime = page.get_by_test_id("admin-realtime")
    await expect(realtime).to_be_visible(timeout=TIMEOUT)
    await expect(realtime).to_contain_text(f"event:{event['id']}")
    await expect(realtime).to_contain_text("redis")
    jobs = page.get_by_test_id("admin-jobs")
    await expect(jobs).to_be_visible(timeout=TIMEOUT)
    await expect(jobs).to_contain_text("workers alive")
    await shot(page, "admin")
    no_js_errors(page)
    await page.context.close()
