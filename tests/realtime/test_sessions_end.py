"""A socket ends with its sign-in session, on every instance: logout, revoking one or all others, a password
change (by the user or an administrator), an account deleted (by the user or an administrator), a refresh
token replayed. Sockets of the user's other, still valid sessions stay open."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx
import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.realtime.conftest import Cluster
from tests.realtime.harness import ServerProcess, person
from tests.waiting import LIVENESS, eventually

pytestmark = pytest.mark.slow

PASSWORD = "correct horse battery"


@dataclass
class SignIn:
    access: str
    refresh: str
    session_id: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access}"}


async def sign_in(api: httpx.AsyncClient, email: str, password: str = PASSWORD) -> SignIn:
    r = await api.post("/auth/token", data={"username": email, "password": password})
    assert r.status_code == 200, r.text
    access = r.json()["accessToken"]
    sessions = await api.get("/auth/sessions", headers={"Authorization": f"Bearer {access}"})
    [current] = [s for s in sessions.json() if s["current"]]
    return SignIn(access, r.json()["refreshToken"], current["id"])


async def socket(server: ServerProcess, token: str) -> ClientConnection:
    ws = await connect(server.ws_url, open_timeout=LIVENESS)
    await ws.send(orjson.dumps({"op": "auth", "ref": "a", "token": token}).decode())
    reply = orjson.loads(await asyncio.wait_for(ws.recv(), LIVENESS))
    assert reply["ok"] is True, reply
    return ws


async def closed_with(ws: ClientConnection) -> tuple[int | None, str]:
    try:
        while True:
            await asyncio.wait_for(ws.recv(), LIVENESS)
    except ConnectionClosed as exc:
        return (exc.rcvd.code, exc.rcvd.reason) if exc.rcvd else (None, "")


async def still_open(ws: ClientConnection) -> bool:
    """A ping answered after everything else: the socket outlived the announcement (the sentinel)."""
    await ws.send('{"op":"ping","ref":"still"}')
    while True:
        frame = orjson.loads(await asyncio.wait_for(ws.recv(), LIVENESS))
        if frame.get("op") == "pong" and frame.get("ref") == "still":
            return True


async def make_admin(cluster: Cluster, user_id: str) -> None:
    conn = await asyncpg.connect(cluster.env["DATABASE_URL"].replace("postgresql+asyncpg", "postgresql"))
    try:
        await conn.execute("UPDATE users SET is_admin = true WHERE id = $1", uuid.UUID(user_id))
    finally:
        await conn.close()


Ending = Callable[[httpx.AsyncClient, SignIn, SignIn, dict[str, Any]], Awaitable[None]]


async def _logout(api: httpx.AsyncClient, ended: SignIn, other: SignIn, who: dict[str, Any]) -> None:
    assert (await api.post("/auth/logout", headers=ended.headers)).status_code == 200


async def _revoke_one(api: httpx.AsyncClient, ended: SignIn, other: SignIn, who: dict[str, Any]) -> None:
    r = await api.post("/settings/sessions/revoke", headers=other.headers, json={"sessionId": ended.session_id})
    assert r.status_code == 200, r.text


async def _revoke_others(api: httpx.AsyncClient, ended: SignIn, other: SignIn, who: dict[str, Any]) -> None:
    r = await api.post("/auth/revoke-sessions", headers=other.headers, json={})
    assert r.status_code == 200, r.text


async def _change_password(api: httpx.AsyncClient, ended: SignIn, other: SignIn, who: dict[str, Any]) -> None:
    r = await api.post("/settings/change-password", headers=other.headers,
                       json={"currentPassword": PASSWORD, "newPassword": "another horse battery"})
    assert r.status_code == 200, r.text


async def _replayed_refresh(api: httpx.AsyncClient, ended: SignIn, other: SignIn, who: dict[str, Any]) -> None:
    assert (await api.post("/auth/refresh", json={"refreshToken": ended.refresh})).status_code == 200
    assert (await api.post("/auth/refresh", json={"refreshToken": ended.refresh})).status_code == 401


async def _admin_password(api: httpx.AsyncClient, ended: SignIn, other: SignIn, who: dict[str, Any]) -> None:
    r = await api.put(f"/admin/users/{who['id']}", headers=who["admin"].headers, json={"password": "reset by admin 1"})
    assert r.status_code == 200, r.text


async def _delete_account(api: httpx.AsyncClient, ended: SignIn, other: SignIn, who: dict[str, Any]) -> None:
    assert (await api.delete("/settings/account", headers=ended.headers)).status_code == 204


async def _admin_delete(api: httpx.AsyncClient, ended: SignIn, other: SignIn, who: dict[str, Any]) -> None:
    r = await api.delete(f"/admin/users/{who['id']}", headers=who["admin"].headers)
    assert r.status_code == 204, r.text


# (name, how it ends, whether the user's other session survives)
ENDINGS: list[tuple[str, Ending, bool]] = [
    ("logout", _logout, True),
    ("revoke one", _revoke_one, True),
    ("revoke all others", _revoke_others, True),
    ("password change", _change_password, True),
    ("refresh token replayed", _replayed_refresh, True),
    ("password reset by an admin", _admin_password, False),
    ("account deleted", _delete_account, False),
    ("account deleted by an admin", _admin_delete, False),
]


@pytest.mark.parametrize(("name", "end", "other_survives"), ENDINGS, ids=[n for n, _, _ in ENDINGS])
async def test_a_session_ends_on_every_instance(cluster: Cluster, name: str, end: Ending,
                                                other_survives: bool) -> None:
    async with cluster.api() as api:
        user = await person(api, "leaver")
        admin = await person(api, "admin")
        await make_admin(cluster, admin.id)
        ended, other = await sign_in(api, user.email), await sign_in(api, user.email)
        for server in (cluster.a, cluster.b):  # both instances now remember the session
            assert (await api.get(f"{server.url}/users/me", headers=ended.headers)).status_code == 200
        # The ended session's sockets on both instances (one authenticated by header), the other session's on B.
        on_a = await socket(cluster.a, ended.access)
        on_b = await connect(cluster.b.ws_url, additional_headers=ended.headers, open_timeout=LIVENESS)
        assert await still_open(on_b)
        other_b = await socket(cluster.b, other.access)
        bystander = await socket(cluster.b, admin.token)
        started = time.monotonic()
        await end(api, ended, other, {"id": user.id, "admin": admin})
        closes = await asyncio.gather(closed_with(on_a), closed_with(on_b))
        took = time.monotonic() - started
        assert list(closes) == [(4001, "session ended")] * 2, closes
        # The same announcement made both instances forget the session (they remember callers for an hour here).
        for server in (cluster.a, cluster.b):
            r = await api.get(f"{server.url}/users/me", headers=ended.headers)
            assert r.status_code == 401, (server.url, r.text)
        if other_survives:
            assert await still_open(other_b)
        else:
            assert await closed_with(other_b) == (4001, "session ended")
        assert await still_open(bystander)
        print(f"\nFIGURE session end ({name}): both instances' sockets closed {took * 1000:.0f} ms after the request")
        for ws in (other_b, bystander):
            await ws.close()


async def test_the_embedded_default_ends_sockets_too(embedded: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=embedded.url, timeout=30) as api:
        user = await person(api, "solo")
        ended, other = await sign_in(api, user.email), await sign_in(api, user.email)
        ws, kept = await socket(embedded, ended.access), await socket(embedded, other.access)
        assert (await api.post("/auth/logout", headers=ended.headers)).status_code == 200
        assert await closed_with(ws) == (4001, "session ended")
        assert await still_open(kept)
        await kept.close()


async def test_a_changed_user_is_seen_at_once_by_every_instance(cluster: Cluster) -> None:
    """Instances remember signed-in callers (handlers.accounts.auth_cache); a change made on one is announced, and the
    other serves the new row on its next request — admin rights taken away included."""
    async with cluster.api(cluster.a) as on_a, cluster.api(cluster.b) as on_b:
        boss, deputy = await person(on_a, "boss"), await person(on_a, "deputy")
        await make_admin(cluster, boss.id)
        await make_admin(cluster, deputy.id)
        assert (await on_a.get("/admin/users", headers=deputy.headers)).status_code == 200  # remembered on A
        assert (await on_a.get("/users/me", headers=deputy.headers)).json()["name"] == "deputy"
        r = await on_b.put(f"/admin/users/{deputy.id}", headers=boss.headers, json={"isAdmin": False, "name": "Dep"})
        assert r.status_code == 200, r.text

        async def demoted() -> bool:
            return (await on_a.get("/admin/users", headers=deputy.headers)).status_code == 403

        await eventually(demoted, what="instance A to hear that the deputy is no longer an administrator")
        assert (await on_a.get("/users/me", headers=deputy.headers)).json()["name"] == "Dep"
