"""The backstop for a `session.ended` announcement that never arrived: the sweep asks the database which of an
instance's sockets still stand on a live session and account, and closes the others with 4001."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import httpx
from sqlalchemy import delete, update

from channels.protocol import Close
from persistence.models import AuthSession, User
from server.session_watch import SessionWatch, ended
from tests.conftest import Backend, MakeUser


@dataclass(eq=False)
class Socket:
    """What the watch sees of a connection (server.ws_connection.Connection has the same three members)."""

    user_id: str
    session_id: str | None
    closed: list[tuple[int, str]] = field(default_factory=list)

    def request_close(self, code: int, reason: str = "") -> None:
        self.closed.append((code, reason))


async def _session_of(client: httpx.AsyncClient, token: str) -> str:
    r = await client.get("/auth/sessions", headers={"Authorization": f"Bearer {token}"})
    return str(next(s["id"] for s in r.json() if s["current"]))


async def test_sweep_closes_what_the_database_says_has_ended(client: httpx.AsyncClient, make_user: MakeUser,
                                                             backend: Backend) -> None:
    a, b, c = await make_user("a"), await make_user("b"), await make_user("c")
    r = await client.post("/auth/token", data={"username": a.email, "password": a.password})
    a2 = r.json()["accessToken"]
    revoked = Socket(a.id, await _session_of(client, a.token))
    kept = Socket(a.id, await _session_of(client, a2))
    deleted = Socket(b.id, await _session_of(client, b.token))
    expired = Socket(c.id, await _session_of(client, c.token))
    async with backend.state.sessionmaker.begin() as db:  # ended without any announcement
        await db.execute(update(AuthSession).where(AuthSession.id == uuid.UUID(revoked.session_id or ""))
                         .values(revoked_at=backend.state.clock()))
        await db.execute(update(AuthSession).where(AuthSession.id == uuid.UUID(expired.session_id or ""))
                         .values(expires_at=backend.state.clock()))
        await db.execute(delete(User).where(User.id == uuid.UUID(b.id)))
    sockets = {revoked, kept, deleted, expired, Socket("", None)}
    watch = SessionWatch(backend.state.hub, sockets)
    assert await watch.sweep(backend.state.sessionmaker, backend.state.clock()) == 3
    assert revoked.closed == deleted.closed == expired.closed == [(Close.UNAUTHENTICATED, "session ended")]
    assert kept.closed == []


def test_which_sockets_an_announcement_names() -> None:
    mine, other, elsewhere = Socket("u1", "s1"), Socket("u1", "s2"), Socket("u2", "s3")
    assert [ended({"sessionId": "s1"}, s) for s in (mine, other, elsewhere)] == [True, False, False]
    assert [ended({"userId": "u1", "keep": "s2"}, s) for s in (mine, other, elsewhere)] == [True, False, False]
    assert [ended({"userId": "u1"}, s) for s in (mine, other, elsewhere)] == [True, True, False]
    assert ended({}, mine) is False
