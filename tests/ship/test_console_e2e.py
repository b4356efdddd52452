"""The console end to end in headless Chromium (Debian's package, driven by Playwright): two users in two
browser contexts, each on its own server instance (PostgreSQL + Redis), sign in through the page, open the
same event room, see each other in presence, and see each other's ticks live. As a tool: one creates an
event from a library template and invites the other, who sees the invitation arrive and opens the room;
they chat both ways (history after a reload), the status changes live, the checklist ticks live, and the
page fits a 400 px wide screen. The live AI session streams an answer (from the fake OpenAI-compatible
server) whose suggested operation, applied, ticks the checklist; on a server without a model the panel
says the AI is off before anything is typed; an admin sees connections (by event title) and jobs.

Screenshots go to $CONSOLE_SCREENSHOTS (default /tmp/conversme-console) for a human look; nothing is
compared against them."""

from __future__ import annotations

import os
import re
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
    tmp: Path


@pytest.fixture(scope="module")
def stack(pg_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:  # noqa: F811
    fake = FakeOpenAI().start()
    tmp = tmp_path_factory.mktemp("console")
    env = server_env(pg_db, REDIS_URL, tmp, OPENAI_API_KEY="test",
                     OPENAI_BASE_URL=fake.url, OPENAI_MODEL="fake-model", OPENAI_TIMEOUT="10")
    migrate(env)
    a, b = ServerProcess(env).start(), ServerProcess(env).start()
    try:
        yield Stack(a, b, fake, pg_db, tmp)
    finally:
        a.stop()
        b.stop()
        fake.stop()


async def make_admin(database_url: str, who: Person) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("UPDATE users SET is_admin = true WHERE id = $1", uuid.UUID(who.id))
    finally:
        await conn.close()


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


async def open_console(browser: Browser, server: ServerProcess, who: Person, width: int = 1400) -> Page:
    context = await browser.new_context(viewport={"width": width, "height": 900})
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
    await make_admin(stack.database_url, boss)
    page = await open_console(browser, stack.a, boss)
    await open_room(page, event["id"])
    await page.get_by_test_id("tab-admin").click()
    realtime = page.get_by_test_id("admin-realtime")
    await expect(realtime).to_be_visible(timeout=TIMEOUT)
    # Topics by name: the event's title, the raw topic kept for a hover.
    await expect(realtime.locator(f"[data-topic='event:{event['id']}']")).to_have_text("event “Standup”")
    await expect(realtime).to_contain_text("redis")
    jobs = page.get_by_test_id("admin-jobs")
    await expect(jobs).to_be_visible(timeout=TIMEOUT)
    await expect(jobs).to_contain_text("workers alive")
    await shot(page, "admin")
    no_js_errors(page)
    await page.context.close()


async def no_horizontal_overflow(page: Page) -> None:
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 400, f"the page is {width} px wide in a 400 px viewport"


async def test_create_from_template_invite_chat_status_and_checklist_between_two_users(
        stack: Stack, browser: Browser) -> None:
    title = f"Launch review {uuid.uuid4().hex[:6]}"
    async with httpx.AsyncClient(base_url=stack.a.url, timeout=30) as api:
        ada, grace, librarian = await person(api, "Ada"), await person(api, "Grace"), await person(api, "Lib")
        await make_admin(stack.database_url, librarian)
        r = await api.post("/admin/initialize-library", headers=librarian.headers)
        assert r.status_code == 200, r.text
        library = (await api.get("/market/processes?limit=200", headers=ada.headers)).json()
    release = next(t for t in library if t["title"] == "Release Checklist")
    first, second = release["steps"][0]["title"], release["steps"][1]["title"]
    page_a = await open_console(browser, stack.a, ada)
    page_b = await open_console(browser, stack.b, grace)

    # Ada creates the event from the library template and invites Grace, found by her handle.
    await page_a.get_by_test_id("create-event").click()
    form = page_a.get_by_test_id("new-event-form")
    await form.get_by_test_id("new-title").fill(title)
    option = form.locator("[data-testid=new-template] option", has_text="Release Checklist")
    await expect(option).to_have_count(1, timeout=TIMEOUT)
    await form.get_by_test_id("new-template").select_option(await option.get_attribute("value"))
    await form.get_by_test_id("new-invite-search").fill(f"@{grace.handle}")
    await form.get_by_test_id("new-invite-pick").click(timeout=TIMEOUT)
    await expect(form.get_by_test_id("new-invitees").locator(f"li[data-user-id='{grace.id}']")).to_contain_text("Grace")
    await page_a.set_viewport_size({"width": 400, "height": 900})
    await shot(page_a, "new-event-400")
    await no_horizontal_overflow(page_a)
    await page_a.set_viewport_size({"width": 1400, "height": 900})
    await form.get_by_test_id("new-create").click()
    # Her room opens on the copied checklist.
    await expect(page_a.get_by_test_id("room-title")).to_have_text(title, timeout=TIMEOUT)
    await expect(step(page_a, first)).to_be_visible(timeout=TIMEOUT)
    await expect(page_a.get_by_test_id("participants")).to_contain_text("Grace")
    await expect(page_a.get_by_test_id("participants").locator("[data-status=invited]")).to_have_count(1)

    # Grace's list shows the invitation without a reload (her user topic), on the other instance.
    invited = page_b.locator("[data-testid=event]", has_text=title)
    await expect(invited).to_be_visible(timeout=TIMEOUT)
    await expect(page_b.locator("#flash")).to_contain_text(f"invited you to {title}")
    await invited.click()
    await expect(step(page_b, first)).to_be_visible(timeout=TIMEOUT)
    for page in (page_a, page_b):
        presence = page.get_by_test_id("presence").locator("li")
        await expect(presence).to_have_count(2, timeout=TIMEOUT)
        await expect(presence).to_contain_text(["Ada", "Grace"])  # names, not ids
    await expect(page_b.get_by_test_id("presence")).to_contain_text("Grace (you)")
    # Grace accepts the invitation; Ada's list of people shows it.
    await page_b.get_by_test_id("accept").click()
    grace_row = page_a.get_by_test_id("participants").locator(f"li[data-user-id='{grace.id}']")
    await expect(grace_row).to_have_attribute("data-status", "confirmed", timeout=TIMEOUT)

    # Chat both ways.
    await page_a.get_by_test_id("chat-input").fill("Branch is cut, changelog next")
    await page_a.get_by_test_id("chat-send").click()
    await expect(page_b.get_by_test_id("chat-line").last).to_contain_text("Ada", timeout=TIMEOUT)
    await expect(page_b.get_by_test_id("chat-line").last).to_contain_text("Branch is cut, changelog next")
    await page_b.get_by_test_id("chat-input").fill("I'll write the changelog")
    await page_b.keyboard.press("Enter")
    await expect(page_a.get_by_test_id("chat-line").last).to_contain_text("I'll write the changelog",
                                                                          timeout=TIMEOUT)
    await expect(page_a.get_by_test_id("chat-line")).to_have_count(2)

    # The status, changed by Ada, reaches Grace's room and list live.
    await page_a.get_by_test_id("room-status-select").select_option("Execution")
    await expect(page_b.get_by_test_id("room-status")).to_have_text("Execution", timeout=TIMEOUT)
    await expect(page_b.get_by_test_id("room-status-select")).to_have_value("Execution")
    await expect(invited).to_have_attribute("data-status", "Execution")
    await expect(page_b.get_by_test_id("activity")).to_contain_text("Ada changed the status Pending → Execution")

    # Both tick the checklist, each seeing the other's tick.
    await step(page_a, first).locator("> label input").check()
    await expect(step(page_b, first)).to_have_attribute("data-completed", "true", timeout=TIMEOUT)
    await step(page_b, second).locator("> label input").check()
    await expect(step(page_a, second)).to_have_attribute("data-completed", "true", timeout=TIMEOUT)
    await expect(page_a.get_by_test_id("progress")).to_have_text(f"2/{len(release['steps'])}")
    await shot(page_a, "tool-ada")

    # A reload (a new connection): the chat history comes back over REST, in order.
    await page_b.reload()
    await expect(page_b.get_by_test_id("status")).to_have_attribute("data-state", "online", timeout=TIMEOUT)
    await page_b.locator("[data-testid=event]", has_text=title).click()
    lines = page_b.get_by_test_id("chat-line")
    await expect(lines).to_have_count(2, timeout=TIMEOUT)
    await expect(lines.first).to_contain_text("Branch is cut")
    await expect(lines.last).to_contain_text("You")

    # 400 px wide: one column, nothing wider than the screen.
    await page_b.set_viewport_size({"width": 400, "height": 900})
    await expect(step(page_b, first)).to_be_visible()
    await shot(page_b, "room-400")
    await no_horizontal_overflow(page_b)
    no_js_errors(page_a, page_b)
    await page_a.context.close()
    await page_b.context.close()


async def test_live_ai_says_whether_the_ai_is_on_before_a_prompt(stack: Stack, browser: Browser) -> None:
    # A third instance on the same database and Redis, without any OPENAI_* setting.
    plain = ServerProcess(server_env(stack.database_url, REDIS_URL, stack.tmp / "no-ai")).start()
    try:
        async with httpx.AsyncClient(base_url=plain.url, timeout=30) as api:
            ada = await person(api, "Ada")
            event = await event_with(api, ada)
        page = await open_console(browser, plain, ada)
        state = page.get_by_test_id("live-ai-state")
        await expect(state).to_have_attribute("data-state", "off", timeout=TIMEOUT)
        await expect(state).to_contain_text("AI is off")
        await open_room(page, event["id"])
        await expect(page.get_by_test_id("live-open")).to_be_disabled()
        await shot(page, "live-ai-off")
        # The configured instance says it is on, with its model.
        on = await open_console(browser, stack.a, ada)
        await expect(on.get_by_test_id("live-ai-state")).to_have_attribute("data-state", "on", timeout=TIMEOUT)
        await expect(on.get_by_test_id("live-ai-state")).to_contain_text("fake-model")
        # The server going away shows in words, not as a close code: a graceful stop closes with 1012, and
        # the reconnects that follow find nobody (1006); the badge cycles through these and "connecting…".
        plain.stop()
        await expect(page.get_by_test_id("status")).to_have_text(
            re.compile(r"^(Server restarting — reconnecting|Connection lost)$"), timeout=TIMEOUT)
        no_js_errors(page, on)
        await page.context.close()
        await on.context.close()
    finally:
        plain.stop()
