"""Every URL-ish field: only site paths and http(s) URLs go in (anything else is a 422 that writes nothing), and
a stored value that fails the rule (a row older than the rule, a seed, an admin script) is served as null."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import select, update

from handlers.context import Message
from persistence.enums import MediaType, NotificationType, ParticipantStatus
from persistence.models import Collection, Event, Media, Notification, Post, User
from tests.api.eventkit import T0, create_event, insert_event
from tests.api.postkit import record_published
from tests.conftest import Account, Backend, MakeUser

BAD = [
    "javascript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "JaVaScRiPt:alert(1)",
    "//evil.example/a.png",
    " javascript:alert(1)",
    "vbscript:msgbox(1)",
    "java\tscript:alert(1)",
    "\x01javascript:alert(1)",
    "/\\evil.example/a.png",
    "https:/\\evil.example",
    "/" + "a" * 1000,
]
GOOD = ["https://cdn.example/a.png", "/uploads/profile/a.png", "http://example.com/rec?id=1"]


@dataclass
class World:
    client: httpx.AsyncClient
    backend: Backend
    admin: Account
    bob: Account
    event_id: str
    post_id: str
    collection_id: str


@dataclass(frozen=True)
class LinkField:
    """One URL-ish request field: how to send a value under a key, and which stored column it lands in."""

    name: str
    keys: tuple[str, str]  # camelCase, snake_case
    send: Callable[[World, str, str], Awaitable[httpx.Response]]
    column: Any
    nested: bool = False  # the value sits in collection_metadata.author.avatar


def _fresh() -> str:
    return uuid.uuid4().hex[:8]


async def _signup(w: World, key: str, value: str) -> httpx.Response:
    handle = f"u_{_fresh()}"
    return await w.client.post("/users", json={"email": f"{handle}@example.com", "password": "correct horse battery",
                                               "name": "New", "handle": handle, key: value})


async def _admin_create(w: World, key: str, value: str) -> httpx.Response:
    handle = f"a_{_fresh()}"
    return await w.client.post("/admin/users", headers=w.admin.headers, json={
        "email": f"{handle}@example.com", "password": "correct horse battery", "name": "New", "handle": handle,
        key: value})


FIELDS = [
    LinkField("sign-up", ("profileImage", "profile_image"), _signup, User.profile_image),
    LinkField("profile", ("profileImage", "profile_image"),
              lambda w, k, v: w.client.put("/users/me", headers=w.bob.headers, json={k: v}), User.profile_image),
    LinkField("settings profile", ("profileImage", "profile_image"),
              lambda w, k, v: w.client.patch("/settings/profile", headers=w.bob.headers, json={k: v}),
              User.profile_image),
    LinkField("admin create", ("profileImage", "profile_image"), _admin_create, User.profile_image),
    LinkField("admin update", ("profileImage", "profile_image"),
              lambda w, k, v: w.client.put(f"/admin/users/{w.bob.id}", headers=w.admin.headers, json={k: v}),
              User.profile_image),
    LinkField("event create", ("recordingUrl", "recording_url"),
              lambda w, k, v: w.client.post("/events", headers=w.admin.headers, json={
                  "title": "Rec", "startTime": "2026-03-02T09:00:00Z", "endTime": "2026-03-02T10:00:00Z", k: v}),
              Event.recording_url),
    LinkField("event update", ("recordingUrl", "recording_url"),
              lambda w, k, v: w.client.put(f"/events/{w.event_id}", headers=w.admin.headers, json={k: v}),
              Event.recording_url),
    LinkField("notification", ("link", "link"),
              lambda w, k, v: w.client.post("/notifications", headers=w.bob.headers,
                                            json={"title": "t", "message": "m", k: v}),
              Notification.link),
    LinkField("post media", ("url", "url"),
              lambda w, k, v: w.client.post(f"/posts/{w.post_id}/media", headers=w.admin.headers,
                                            json={"type": "image", k: v}),
              Media.url),
    LinkField("collection author", ("avatar", "avatar"),
              lambda w, k, v: w.client.put(f"/market/collections/{w.collection_id}", headers=w.admin.headers,
                                           json={"author": {"name": "Team", k: v}}),
              Collection.collection_metadata, nested=True),
]


async def _stored(w: World, field: LinkField) -> list[str]:
    async with w.backend.state.sessionmaker() as db:
        values = list(await db.scalars(select(field.column)))
    if field.nested:
        values = [(v or {}).get("author", {}).get("avatar") for v in values]
    return sorted(repr(v) for v in values)


@pytest.fixture
async def world(client: httpx.AsyncClient, backend: Backend, make_user: MakeUser) -> World:
    admin, bob = await make_user("admin", admin=True), await make_user("bob")
    event = await create_event(client, admin)
    r = await client.post("/posts", headers=admin.headers, json={"content": "hello"})
    assert r.status_code == 201, r.text
    post_id = r.json()["id"]
    r = await client.post("/market/collections", headers=admin.headers, json={"title": "Mine"})
    assert r.status_code == 201, r.text
    return World(client, backend, admin, bob, event["id"], post_id, r.json()["id"])


@pytest.mark.parametrize("field", FIELDS, ids=[f.name for f in FIELDS])
async def test_only_site_paths_and_http_urls_are_accepted(world: World, field: LinkField) -> None:
    before = await _stored(world, field)
    for i, value in enumerate(BAD):
        key = field.keys[i % 2]
        r = await field.send(world, key, value)
        assert r.status_code == 422, (value, r.status_code, r.text)
        error = r.json()["errors"][0]
        assert error["field"].endswith(key), error
        assert "link" in error["message"] or "at most 1000" in error["message"], error
        assert await _stored(world, field) == before, value
    for i, value in enumerate(GOOD):
        r = await field.send(world, field.keys[i % 2], value)
        assert r.status_code in (200, 201), (value, r.text)
        assert repr(value) in await _stored(world, field), value


async def test_an_empty_optional_link_means_none(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    """Forms send "" for an empty URL input: it clears the link instead of storing "" or failing."""
    a = await make_user("ann")
    r = await client.put("/users/me", headers=a.headers, json={"profileImage": "/uploads/profile/a.png"})
    assert r.status_code == 200 and r.json()["profileImage"] == "/uploads/profile/a.png"
    r = await client.put("/users/me", headers=a.headers, json={"profile_image": ""})
    assert r.status_code == 200 and r.json()["profileImage"] is None
    event = await create_event(client, a, recordingUrl="")
    assert event["recordingUrl"] is None


@pytest.fixture
def published(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> list[Message]:
    return record_published(backend, monkeypatch)


async def test_stored_bad_links_are_served_as_null(client: httpx.AsyncClient, backend: Backend,
                                                   make_user: MakeUser, published: list[Message]) -> None:
    alice, bob = await make_user("alice"), await make_user("bob")
    bad = "javascript:alert(document.cookie)"
    event_id = await insert_event(backend, alice, T0, guests=((bob, ParticipantStatus.CONFIRMED),))
    async with backend.state.sessionmaker.begin() as db:
        await db.execute(update(User).where(User.id == uuid.UUID(alice.id)).values(profile_image=bad))
        await db.execute(update(Event).where(Event.id == uuid.UUID(event_id)).values(recording_url=bad))
        post = Post(content="look", visibility="public", author_id=uuid.UUID(alice.id), event_id=uuid.UUID(event_id))
        db.add(post)
        await db.flush()
        db.add(Media(type=MediaType.IMAGE, url="data:text/html,<script>alert(1)</script>", thumbnail_url=bad,
                     post_id=post.id, created_by_id=uuid.UUID(alice.id), created_at=datetime.now(UTC)))
        db.add(Notification(type=NotificationType.SYSTEM, title="t", message="m", link="//evil.example",
                            user_id=uuid.UUID(bob.id), sender_id=uuid.UUID(alice.id)))
        collection = Collection(title="Lib", is_library=True, collection_metadata={
            "author": {"name": "Alice", "avatar": bad}, "categories": []})
        db.add(collection)
        await db.flush()
        post_id, collection_id = str(post.id), str(collection.id)

    async def get(path: str, **params: Any) -> Any:
        r = await client.get(path, headers=bob.headers, params=params)
        assert r.status_code == 200, (path, r.text)
        assert "javascript" not in r.text.lower() and "data:" not in r.text and "evil" not in r.text, path
        return r.json()

    assert (await get(f"/users/{alice.id}"))["profileImage"] is None
    assert (await get(f"/users/handle/{alice.handle}"))["profileImage"] is None
    assert [u["profileImage"] for u in await get("/users", query="alice")] == [None]
    assert [u["profileImage"] for u in await get("/search/users", q="alice")] == [None]
    detail = await get(f"/events/{event_id}")
    assert detail["recordingUrl"] is None
    assert {p["user"]["profileImage"] for p in detail["participants"]} == {None}
    month = await get("/calendar/events", start_date="2026-03-01", end_date="2026-03-31")
    assert [e["recordingUrl"] for e in month] == [None]
    assert all(p["user"]["profileImage"] is None for e in month for p in e["participants"])
    (item,) = (await get("/notifications"))["items"]
    assert item["link"] is None and item["sender"]["profileImage"] is None
    post_out = await get(f"/posts/{post_id}")
    assert post_out["author"]["profileImage"] is None
    assert [(m["url"], m["thumbnailUrl"]) for m in post_out["media"]] == [(None, None)]
    assert [m["url"] for m in await get(f"/posts/{post_id}/media")] == [None]
    assert (await get(f"/market/collections/{collection_id}"))["author"]["avatar"] is None
    # The room broadcast of a change carries the same view.
    r = await client.put(f"/events/{event_id}", headers=alice.headers, json={"title": "Renamed"})
    assert r.status_code == 200 and r.json()["recordingUrl"] is None
    sent = [m for m in published if m.event == "event.updated"]
    assert sent and all(b"javascript" not in orjson.dumps(m.data) for m in sent)


async def test_good_stored_links_are_served_unchanged(client: httpx.AsyncClient, backend: Backend,
                                                      make_user: MakeUser) -> None:
    alice, bob = await make_user("alice"), await make_user("bob")
    async with backend.state.sessionmaker.begin() as db:
        await db.execute(update(User).where(User.id == uuid.UUID(alice.id))
                         .values(profile_image="https://cdn.example/alice.png"))
    r = await client.get(f"/users/{alice.id}", headers=bob.headers)
    assert r.json()["profileImage"] == "https://cdn.example/alice.png"
