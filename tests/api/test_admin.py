"""Administration over REST: user management, seeding (DEBUG or admin), the DEBUG-only reset."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import func, select

from persistence.models import Collection, Process, Topic, User
from tests.conftest import Backend, MakeUser


@pytest.fixture
def debug(backend: Backend) -> Iterator[None]:
    original = backend.state.settings
    backend.state.settings = dataclasses.replace(original, debug=True)
    try:
        yield
    finally:
        backend.state.settings = original


ADMIN_ROUTES = [("GET", "/admin/users"), ("GET", f"/admin/users/{uuid.UUID(int=1)}"), ("POST", "/admin/users"),
                ("PUT", f"/admin/users/{uuid.UUID(int=2)}"), ("DELETE", f"/admin/users/{uuid.UUID(int=3)}"),
                ("POST", "/admin/reset"), ("POST", "/admin/initialize"), ("POST", "/admin/initialize-library"),
                ("POST", "/market/initialize")]


@pytest.mark.parametrize(("method", "path"), ADMIN_ROUTES)
async def test_non_admin_is_403(client: httpx.AsyncClient, make_user: MakeUser, backend: Backend, method: str,
                                path: str) -> None:
    a = await make_user()
    # A valid body: the machinery validates the body before it checks the admin flag.
    body = {"name": "N", "handle": "nnn", "email": "n@example.com", "password": "long-enough-pw"}
    r = await client.request(method, path, headers=a.headers, json=body)
    assert r.status_code == 403, r.text
    async with backend.state.sessionmaker() as db:
        assert await db.scalar(select(func.count()).select_from(User)) == 1


async def test_seeding_without_token_outside_debug_is_401(client: httpx.AsyncClient) -> None:
    for path in ("/admin/initialize", "/admin/initialize-library", "/market/initialize"):
        assert (await client.post(path)).status_code == 401


async def test_admin_user_crud(client: httpx.AsyncClient, make_user: MakeUser, backend: Backend) -> None:
    admin = await make_user("root", admin=True)
    r = await client.post("/admin/users", headers=admin.headers, json={
        "name": "Carol", "handle": "carol", "email": "Carol@Example.com", "password": "long-enough-pw",
        "profile_image": "/profile/carol.jpg", "bio": "ops", "is_admin": True})
    assert r.status_code == 201, r.text
    carol = r.json()
    assert carol["email"] == "carol@example.com" and carol["profileImage"] == "/profile/carol.jpg"
    assert carol["isAdmin"] is True and carol["bio"] == "ops"
    assert {"id", "name", "handle", "createdAt", "updatedAt"} <= set(carol)
    assert not any("password" in k.lower() for k in carol)
    login = await client.post("/auth/token", data={"username": "carol@example.com", "password": "long-enough-pw"})
    assert login.status_code == 200
    # camelCase input, duplicate → 409
    r = await client.post("/admin/users", headers=admin.headers, json={
        "name": "C2", "handle": "carol", "email": "c2@example.com", "password": "long-enough-pw"})
    assert r.status_code == 409
    r = await client.get("/admin/users", headers=admin.headers, params={"skip": 0, "limit": 100})
    assert r.status_code == 200 and {u["id"] for u in r.json()} >= {admin.id, carol["id"]}
    assert all(u["email"] for u in r.json())
    assert len((await client.get("/admin/users", headers=admin.headers, params={"limit": 1})).json()) == 1
    r = await client.get(f"/admin/users/{carol['id']}", headers=admin.headers)
    assert r.status_code == 200 and r.json()["handle"] == "carol"
    # Partial update: only what is sent changes.
    r = await client.put(f"/admin/users/{carol['id']}", headers=admin.headers,
                         json={"isAdmin": False, "profileImage": "/p2.jpg"})
    assert r.status_code == 200, r.text
    upd = r.json()
    assert upd["isAdmin"] is False and upd["profileImage"] == "/p2.jpg"
    assert upd["email"] == "carol@example.com" and upd["bio"] == "ops" and upd["name"] == "Carol"
    r = await client.put(f"/admin/users/{carol['id']}", headers=admin.headers, json={"email": None})
    assert r.status_code == 422
    r = await client.put(f"/admin/users/{carol['id']}", headers=admin.headers, json={"handle": admin.handle})
    assert r.status_code == 409
    # A new password from the admin signs the user out.
    carol_token = login.json()["accessToken"]
    r = await client.put(f"/admin/users/{carol['id']}", headers=admin.headers, json={"password": "another-pass-1"})
    assert r.status_code == 200
    assert (await client.get("/users/me", headers={"Authorization": f"Bearer {carol_token}"})).status_code == 401
    r = await client.delete(f"/admin/users/{carol['id']}", headers=admin.headers)
    assert r.status_code == 204
    async with backend.state.sessionmaker() as db:
        assert await db.get(User, uuid.UUID(carol["id"])) is None
    assert (await client.get(f"/admin/users/{carol['id']}", headers=admin.headers)).status_code == 404
    assert (await client.delete(f"/admin/users/{carol['id']}", headers=admin.headers)).status_code == 404


async def test_admin_cannot_delete_or_demote_self(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    admin = await make_user("root", admin=True)
    assert (await client.delete(f"/admin/users/{admin.id}", headers=admin.headers)).status_code == 409
    r = await client.put(f"/admin/users/{admin.id}", headers=admin.headers, json={"is_admin": False})
    assert r.status_code == 409
    assert (await client.get("/users/me", headers=admin.headers)).json()["isAdmin"] is True


async def test_initialize_in_debug_without_token_is_idempotent(client: httpx.AsyncClient, backend: Backend,
                                                               debug: None) -> None:
    r = await client.post("/admin/initialize")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["success"] is True and body["errors"] == [] and body["actions"]
    admin_email = backend.state.settings.admin_email
    login = await client.post("/auth/token", data={"username": admin_email, "password": "admin1234"})
    assert login.status_code == 200
    me = await client.get("/users/me", headers={"Authorization": f"Bearer {login.json()['accessToken']}"})
    assert me.json()["isAdmin"] is True

    async def counts() -> tuple[int, int, int, int]:
        async with backend.state.sessionmaker() as db:
            return (await db.scalar(select(func.count()).select_from(User)) or 0,
                    await db.scalar(select(func.count()).select_from(Topic)) or 0,
                    await db.scalar(select(func.count()).select_from(Collection)) or 0,
                    await db.scalar(select(func.count()).select_from(Process)) or 0)

    first = await counts()
    assert first[2] == 3 and first[3] > 0
    r = await client.post("/admin/initialize")
    assert r.status_code == 200 and r.json()["actions"] == []
    assert await counts() == first


async def test_initialize_by_admin_outside_debug(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    admin = await make_user("root", admin=True)
    r = await client.post("/admin/initialize", headers=admin.headers)
    assert r.status_code == 200, r.text
    # Without ADMIN_PASSWORD and outside DEBUG the new admin gets a random password, shown once.
    assert any("shown once" in a for a in r.json()["actions"])
    r = await client.post("/admin/initialize-library", headers=admin.headers)
    assert r.status_code == 200 and r.json()["success"] is True and r.json()["actions"] == []


async def test_reset_requires_debug_and_keeps_the_caller(client: httpx.AsyncClient, make_user: MakeUser,
                                                         backend: Backend) -> None:
    admin = await make_user("root", admin=True)
    other = await make_user("bob")
    assert (await client.post("/admin/reset", headers=admin.headers)).status_code == 403
    assert (await client.post("/admin/initialize-library", headers=admin.headers)).status_code == 200
    original = backend.state.settings
    backend.state.settings = dataclasses.replace(original, debug=True)
    try:
        assert (await client.post("/admin/reset", headers=other.headers)).status_code == 403
        r = await client.post("/admin/reset", headers=admin.headers)
    finally:
        backend.state.settings = original
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] and "collections" in body["tablesCleared"] and "users" in body["tablesFound"]
    async with backend.state.sessionmaker() as db:
        assert await db.scalar(select(func.count()).select_from(Collection)) == 0
        assert [u.id for u in (await db.scalars(select(User))).all()] == [uuid.UUID(admin.id)]
    assert (await client.get("/users/me", headers=admin.headers)).status_code == 200
