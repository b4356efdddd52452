"""Notifications: own-only access, list filters and counts, read state, mark-all-read under concurrency."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from handlers.context import Message
from persistence.models import Notification
from tests.api.postkit import record_published
from tests.conftest import Account, Backend, MakeUser

KEYS = {"id", "type", "title", "message", "link", "read", "metadata", "userId", "senderId", "sender",
        "referenceId", "referenceType", "createdAt", "updatedAt"}


@pytest.fixture
def published(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> list[Message]:
    return record_published(backend, monkeypatch)


async def create(client: httpx.AsyncClient, who: Account, **body: Any) -> dict[str, Any]:
    body.setdefault("title", "Hello")
    body.setdefault("message", "World")
    r = await client.post("/notifications", json=body, headers=who.headers)
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    return created


async def unread(client: httpx.AsyncClient, who: Account) -> int:
    r = await client.get("/notifications/unread-count", headers=who.headers)
    assert r.status_code == 200
    value = r.json()
    assert isinstance(value, int)
    return value


async def rows(backend: Backend) -> int:
    async with backend.state.sessionmaker() as db:
        return int(await db.scalar(select(func.count()).select_from(Notification)) or 0)


async def test_create_for_self_snake_and_camel(client: httpx.AsyncClient, make_user: MakeUser,
                                               published: list[Message]) -> None:
    a, b = await make_user("ann"), await make_user("bob")
    ref = str(uuid.uuid4())
    n = await create(client, a, type="task", link="/events/1", reference_id=ref, reference_type="event",
                     notification_metadata={"some_key": 1}, sender_id=b.id)
    assert set(n) == KEYS
    assert n["type"] == "task" and n["read"] is False and n["userId"] == a.id and n["link"] == "/events/1"
    # The sender is always the caller, whatever the body says.
    assert n["senderId"] == a.id and n["sender"]["id"] == a.id
    assert n["referenceId"] == ref and n["referenceType"] == "event" and n["metadata"] == {"some_key": 1}
    m = await create(client, a, type="mention", userId=a.id, referenceType="post", metadata={"k": "v"}, read=True)
    assert m["read"] is True and m["referenceType"] == "post" and m["metadata"] == {"k": "v"}
    plain = await create(client, a)
    assert plain["type"] == "system" and plain["metadata"] == {}
    assert [(x.topic, x.event) for x in published] == [(f"user:{a.id}", "notification.created")] * 3


async def test_only_admins_create_for_others(client: httpx.AsyncClient, make_user: MakeUser,
                                             backend: Backend) -> None:
    a, b = await make_user("ann"), await make_user("bob")
    admin = await make_user("root", admin=True)
    r = await client.post("/notifications", json={"title": "t", "message": "m", "user_id": b.id}, headers=a.headers)
    assert r.status_code == 403
    assert await rows(backend) == 0
    n = await create(client, admin, userId=b.id, type="system")
    assert n["userId"] == b.id and n["senderId"] == admin.id
    assert await unread(client, b) == 1 and await unread(client, admin) == 0
    r = await client.post("/notifications", json={"title": "t", "message": "m", "user_id": str(uuid.uuid4())},
                          headers=admin.headers)
    assert r.status_code == 404


@pytest.mark.parametrize("body", [
    {}, {"title": "", "message": "m"}, {"title": "t"}, {"title": "t", "message": "m", "type": "spam"},
    {"title": "t", "message": "m", "user_id": "nope"}, {"title": "t" * 301, "message": "m"},
    {"title": "t", "message": "m", "metadata": [1, 2]}, {"title": "t", "message": "m", "link": "javascript:alert(1)"},
])
async def test_create_rejects_bad_input(client: httpx.AsyncClient, make_user: MakeUser, backend: Backend,
                                        body: dict[str, Any]) -> None:
    a = await make_user()
    r = await client.post("/notifications", json=body, headers=a.headers)
    assert r.status_code == 422, r.text
    assert await rows(backend) == 0


async def test_list_filters_and_counts(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    a, b = await make_user("ann"), await make_user("bob")
    made = [await create(client, a, type="mention" if i % 2 else "system", title=f"n{i}") for i in range(5)]
    await create(client, b, title="bob's")
    r = await client.put(f"/notifications/{made[0]['id']}", json={"read": True}, headers=a.headers)
    assert r.status_code == 200
    r = await client.get("/notifications", headers=a.headers)
    body = r.json()
    assert set(body) == {"items", "total", "unread"}
    assert [n["title"] for n in body["items"]] == ["n4", "n3", "n2", "n1", "n0"]
    assert body["total"] == 5 and body["unread"] == 4 and set(body["items"][0]) == KEYS
    for params, titles, total in (({"unread_only": "true"}, ["n4", "n3", "n2", "n1"], 4),
                                  ({"unreadOnly": "true", "type": "system"}, ["n4", "n2"], 2),
                                  ({"type": "mention"}, ["n3", "n1"], 2),
                                  ({"limit": 2, "offset": 1}, ["n3", "n2"], 5),
                                  ({"limit": 2, "skip": 4}, ["n0"], 5)):
        body = (await client.get("/notifications", params=params, headers=a.headers)).json()
        assert [n["title"] for n in body["items"]] == titles, params
        assert body["total"] == total and body["unread"] == 4
    for bad in ({"type": "nope"}, {"limit": 0}, {"offset": -1}, {"unread_only": "maybe"}):
        assert (await client.get("/notifications", params=bad, headers=a.headers)).status_code == 422


async def test_read_state_and_own_only(client: httpx.AsyncClient, make_user: MakeUser,
                                       published: list[Message]) -> None:
    a, b = await make_user("ann"), await make_user("bob")
    n = await create(client, a)
    assert await unread(client, a) == 1
    r = await client.get(f"/notifications/{n['id']}", headers=a.headers)
    assert r.status_code == 200 and r.json() == n
    # Another user: 404 for every operation, and nothing changes.
    assert (await client.get(f"/notifications/{n['id']}", headers=b.headers)).status_code == 404
    assert (await client.put(f"/notifications/{n['id']}", json={"read": True}, headers=b.headers)).status_code == 404
    assert (await client.delete(f"/notifications/{n['id']}", headers=b.headers)).status_code == 404
    assert await unread(client, a) == 1
    # Malformed change: nothing changes.
    for bad in ({}, {"read": "maybe"}):
        r = await client.put(f"/notifications/{n['id']}", json=bad, headers=a.headers)
        assert r.status_code == 422
    assert await unread(client, a) == 1

    published.clear()
    r = await client.put(f"/notifications/{n['id']}", json={"read": True}, headers=a.headers)
    assert r.status_code == 200 and r.json()["read"] is True and r.json()["updatedAt"] is not None
    assert await unread(client, a) == 0
    assert [(m.topic, m.event) for m in published] == [(f"user:{a.id}", "notification.updated")]
    assert published[0].data["read"] is True
    r = await client.put(f"/notifications/{n['id']}", json={"read": False}, headers=a.headers)
    assert r.json()["read"] is False and await unread(client, a) == 1

    published.clear()
    assert (await client.delete(f"/notifications/{n['id']}", headers=a.headers)).status_code == 204
    assert (await client.get(f"/notifications/{n['id']}", headers=a.headers)).status_code == 404
    assert published[0].event == "notification.deleted" and published[0].data == {"id": n["id"]}
    assert await unread(client, a) == 0


async def test_mark_all_read_both_methods(client: httpx.AsyncClient, make_user: MakeUser,
                                          published: list[Message]) -> None:
    a, b = await make_user("ann"), await make_user("bob")
    mine = [await create(client, a) for _ in range(3)]
    await create(client, b)
    await client.put(f"/notifications/{mine[0]['id']}", json={"read": True}, headers=a.headers)
    published.clear()
    r = await client.post("/notifications/mark-all-read", headers=a.headers)
    assert r.status_code == 200 and r.json() == 2
    assert await unread(client, a) == 0 and await unread(client, b) == 1
    assert published[0].event == "notification.updated"
    assert sorted(published[0].data["ids"]) == sorted([mine[1]["id"], mine[2]["id"]])
    r = await client.put("/notifications/mark-all-read", json={}, headers=a.headers)
    assert r.status_code == 200 and r.json() == 0
    r = await client.put("/notifications/mark-all-read", json={}, headers=b.headers)
    assert r.json() == 1 and await unread(client, b) == 0
    body = (await client.get("/notifications", headers=a.headers)).json()
    assert body["unread"] == 0 and all(n["read"] for n in body["items"])


async def test_mark_all_read_is_consistent_under_concurrency(client: httpx.AsyncClient, make_user: MakeUser,
                                                             backend: Backend) -> None:
    a = await make_user()
    async with backend.state.sessionmaker.begin() as db:
        db.add_all([Notification(type="system", title=f"n{i}", message="m", user_id=uuid.UUID(a.id))
                    for i in range(40)])
    assert await unread(client, a) == 40
    results = await asyncio.gather(*(client.post("/notifications/mark-all-read", headers=a.headers)
                                     for _ in range(6)))
    assert all(r.status_code == 200 for r in results), [r.text for r in results]
    # Every notification is counted by exactly one call.
    assert sum(r.json() for r in results) == 40
    assert await unread(client, a) == 0


async def test_unknown_and_malformed_ids(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    a = await make_user()
    missing = str(uuid.uuid4())
    assert (await client.get(f"/notifications/{missing}", headers=a.headers)).status_code == 404
    assert (await client.delete(f"/notifications/{missing}", headers=a.headers)).status_code == 404
    assert (await client.get("/notifications/not-an-id", headers=a.headers)).status_code == 422
    assert await unread(client, a) == 0
