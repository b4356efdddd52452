"""The settings page over REST: combined read, profile and preference updates, account deletion."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import func, select

from persistence.models import AuthSession, Collection, Post, User, UserPreferences
from tests.conftest import Backend, MakeUser


async def test_get_settings_shape(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    a = await make_user("alice")
    await client.put("/users/me", headers=a.headers, json={"user_metadata": {"location": "Oslo"}, "bio": "hi"})
    r = await client.get("/settings", headers=a.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["profile"] == {"id": a.id, "name": "Alice", "email": a.email, "handle": a.handle, "bio": "hi",
                               "profileImage": None, "metadata": {"location": "Oslo"}}
    prefs = body["preferences"]
    assert {"theme", "emailNotifications", "timeZone", "language", "additionalSettings"} <= set(prefs)


async def test_settings_profile_update_is_partial_and_never_leaks_the_hash(client: httpx.AsyncClient,
                                                                          make_user: MakeUser) -> None:
    a = await make_user()
    r = await client.put("/settings/profile", headers=a.headers, json={"bio": "b", "profile_image": "/x.png"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["bio"] == "b" and body["profileImage"] == "/x.png" and body["email"] == a.email
    assert not any("password" in k.lower() for k in body)
    r = await client.put("/settings/profile", headers=a.headers, json={"handle": "!!"})
    assert r.status_code == 422


async def test_settings_preferences_update(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    a = await make_user()
    r = await client.put("/settings/preferences", headers=a.headers, json={"theme": "dark", "pushNotifications": False})
    assert r.status_code == 200 and r.json()["theme"] == "dark" and r.json()["pushNotifications"] is False
    r = await client.get("/settings", headers=a.headers)
    assert r.json()["preferences"]["theme"] == "dark"
    assert (await client.put("/settings/preferences", headers=a.headers, json={"theme": "x"})).status_code == 422


async def test_delete_account_removes_user_and_login_fails(client: httpx.AsyncClient, make_user: MakeUser,
                                                           backend: Backend) -> None:
    a = await make_user("alice")
    b = await make_user("bob")
    uid = uuid.UUID(a.id)
    async with backend.state.sessionmaker.begin() as db:
        db.add(Post(content="mine", author_id=uid))
        db.add(Collection(title="private copy", created_by_id=uid))
    r = await client.delete("/settings/account", headers=a.headers)
    assert r.status_code == 204, r.text
    async with backend.state.sessionmaker() as db:
        assert await db.get(User, uid) is None
        for model, column in ((UserPreferences, UserPreferences.user_id), (AuthSession, AuthSession.user_id),
                              (Post, Post.author_id), (Collection, Collection.created_by_id)):
            assert await db.scalar(select(func.count()).select_from(model).where(column == uid)) == 0
    r = await client.post("/auth/token", data={"username": a.email, "password": a.password})
    assert r.status_code == 401
    assert (await client.get("/users/me", headers=a.headers)).status_code == 401
    # Other accounts are untouched.
    assert (await client.get("/users/me", headers=b.headers)).status_code == 200


async def _sign_in(client: httpx.AsyncClient, email: str, password: str) -> dict[str, str]:
    r = await client.post("/auth/token", data={"username": email, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['accessToken']}"}


async def test_security_page_revokes_like_token_revocation(client: httpx.AsyncClient, make_user: MakeUser,
                                                           backend: Backend) -> None:
    """The original Security page posts `{sessionId}` with ids of its own placeholder list ("1", "2"). As in
    RFC 7009, an id that is not one of the caller's sessions is a success that ends nothing, and never anyone
    else's session; the caller's own session id ends that session."""
    a, b = await make_user("a"), await make_user("b")
    second = await _sign_in(client, a.email, a.password)
    others = await _sign_in(client, b.email, b.password)
    b_session = await client.get("/auth/sessions", headers=others)
    b_id = next(s["id"] for s in b_session.json() if s["current"])

    async def active() -> int:
        async with backend.state.sessionmaker() as db:
            return int(await db.scalar(select(func.count()).select_from(AuthSession)
                                       .where(AuthSession.revoked_at.is_(None))) or 0)

    before = await active()
    for unknown in ("1", "2", str(uuid.uuid4()), b_id, ""):
        r = await client.post("/settings/sessions/revoke", json={"sessionId": unknown}, headers=a.headers)
        assert r.status_code == 200, (unknown, r.text)
        assert r.json() == {"message": "session revoked"}
    assert await active() == before
    assert (await client.get("/users/me", headers=others)).status_code == 200

    mine = next(s["id"] for s in (await client.get("/auth/sessions", headers=second)).json() if s["current"])
    r = await client.post("/settings/sessions/revoke", json={"session_id": mine}, headers=a.headers)
    assert r.status_code == 200 and r.json() == {"message": "session revoked"}
    assert (await client.get("/users/me", headers=second)).status_code == 401
    assert (await client.get("/users/me", headers=a.headers)).status_code == 200
    assert await active() == before - 1

    r = await client.post("/settings/sessions/revoke", json={"sessionId": "x" * 201}, headers=a.headers)
    assert r.status_code == 422 and "sessionId" in r.text
