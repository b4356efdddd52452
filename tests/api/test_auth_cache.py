"""Signed-in callers served from the instance's memory (handlers.accounts.auth_cache): no query for a remembered
session, and nothing served from memory once the session ended or the user changed."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx

from handlers.accounts.auth_cache import AuthCache
from persistence.models import User
from tests.conftest import Backend, MakeUser
from tests.statements import recorded

NOW = datetime(2026, 12, 6, tzinfo=UTC)


def _user(**fields: object) -> User:
    return User(id=uuid.uuid4(), name="A", handle="a", email="a@example.com", is_admin=False, is_guest=False,
                user_metadata={"k": [1]}, **fields)


def test_remembered_for_its_lifetime_and_within_the_session() -> None:
    clock = [0.0]
    cache = AuthCache(10.0, clock=lambda: clock[0])
    sid, user = uuid.uuid4(), _user()
    assert cache.user(sid, user.id, NOW) is None
    cache.remember(sid, user, NOW + timedelta(hours=1))
    copy = cache.user(sid, user.id, NOW)
    assert copy is not None and copy is not user and copy.id == user.id and copy.name == "A"
    assert cache.user(sid, uuid.uuid4(), NOW) is None  # a token of another user naming this session
    copy2 = cache.user(sid, user.id, NOW)
    assert copy2 is not None
    copy2.user_metadata["k"].append(2)  # a handler changing its copy changes nothing remembered
    copy3 = cache.user(sid, user.id, NOW)
    assert copy3 is not None and copy3.user_metadata == {"k": [1]}
    clock[0] = 10.0
    assert cache.user(sid, user.id, NOW) is None and len(cache) == 0
    cache.remember(sid, user, NOW + timedelta(minutes=1))
    assert cache.user(sid, user.id, NOW + timedelta(minutes=1)) is None  # the session itself expired


def test_forgets_what_an_announcement_names_and_keeps_to_its_capacity() -> None:
    cache = AuthCache(10.0, capacity=3)
    a, b = _user(), _user()
    sessions = {uuid.uuid4(): a, uuid.uuid4(): a, uuid.uuid4(): b}
    for sid, user in sessions.items():
        cache.remember(sid, user, NOW + timedelta(hours=1))
    first, second, third = sessions
    cache.forget({"sessionId": str(first)})
    assert cache.user(first, a.id, NOW) is None and cache.user(second, a.id, NOW) is not None
    cache.forget({"userId": str(a.id)})
    assert cache.user(second, a.id, NOW) is None and cache.user(third, b.id, NOW) is not None
    for _ in range(5):
        cache.remember(uuid.uuid4(), b, NOW + timedelta(hours=1))
    assert len(cache) == 3
    off = AuthCache(0)
    off.remember(first, a, NOW + timedelta(hours=1))
    assert len(off) == 0


async def test_a_remembered_caller_costs_no_query_and_changes_apply_at_once(
        client: httpx.AsyncClient, make_user: MakeUser, backend: Backend) -> None:
    a = await make_user("a")
    engine = backend.state.engine
    async with recorded(engine) as first:
        assert (await client.get("/notifications", headers=a.headers)).status_code == 200
    async with recorded(engine) as second:
        assert (await client.get("/notifications", headers=a.headers)).status_code == 200
    assert sum("auth_sessions" in s for s in first) == 1  # one query for the user and the session
    assert not any("auth_sessions" in s or "FROM users" in s for s in second), second
    # A change through the API is applied before the answer: the next request sees it.
    r = await client.put("/users/me", headers=a.headers, json={"name": "Renamed"})
    assert r.status_code == 200
    assert (await client.get("/users/me", headers=a.headers)).json()["name"] == "Renamed"
    assert (await client.post("/auth/logout", headers=a.headers)).status_code == 200
    assert (await client.get("/notifications", headers=a.headers)).status_code == 401
