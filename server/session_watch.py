"""Sockets end with their sign-in session, on every instance.

A handler that ends a session (logout, revocation, a password change, an account deleted) announces
`session.ended` on the `sessions` topic after its commit; each instance listens once and closes its own sockets
of that session, or of that user, with 4001. The announcement goes through the outbox like any other, so a
Redis hiccup delays it; a periodic sweep against the database is the backstop for one that never arrives (an
instance killed between commit and publish, Redis lost with the outbox's backlog)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any, Protocol

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels import topics
from channels.hub import Hub
from channels.messages import LeftReason
from channels.protocol import Close
from handlers.accounts.auth_cache import AuthCache
from persistence.models import AuthSession, User

log = logging.getLogger("conversme.sessions")

REASON = "session ended"


class Socket(Protocol):
    user_id: str
    session_id: str | None

    def request_close(self, code: int, reason: str = "") -> None: ...


def ended(data: dict[str, Any], socket: Socket) -> bool:
    """Whether `socket` belongs to what a `session.ended` announcement names."""
    if data.get("sessionId"):
        return bool(socket.session_id == data["sessionId"])
    if data.get("userId") and socket.user_id == data["userId"]:
        return socket.session_id is None or socket.session_id != data.get("keep")
    return False


class SessionWatch:
    """The instance's one listener on `sessions` (a hub Listener), closing its sockets of ended sessions."""

    user_id = ""  # a Listener of no user: nothing is ever removed from it

    def __init__(self, hub: Hub, sockets: set[Any], auth_cache: AuthCache | None = None) -> None:
        self._hub = hub
        self._sockets = sockets  # AppState.connections: the live set, read when an announcement arrives
        self._auth_cache = auth_cache
        self.closed = 0

    async def start(self) -> asyncio.Task[None] | None:
        """Listen now; if Redis is away, keep trying in a task (returned) rather than fail the startup."""
        try:
            await self._hub.subscribe(topics.SESSIONS, self)
            return None
        except Exception as exc:
            log.warning("cannot listen for ended sessions yet (%s); retrying", exc)
            return asyncio.get_running_loop().create_task(self._subscribe_later(), name="session-watch")

    async def _subscribe_later(self) -> None:
        backoff = 0.2
        while True:
            await asyncio.sleep(backoff)
            try:
                await self._hub.subscribe(topics.SESSIONS, self)
                return
            except Exception:
                backoff = min(backoff * 2, 5.0)

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            await self._hub.unsubscribe(topics.SESSIONS, self)

    def on_msg(self, topic: str, offset: int, frame: str) -> None:
        try:
            obj = orjson.loads(frame)
            name, data = obj["event"], obj["data"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            log.warning("unreadable frame on %s: %.200s", topic, frame)
            return
        if not isinstance(data, dict):
            return
        if self._auth_cache is not None:  # first, so that no request is let in on what just ended
            self._auth_cache.forget(data)
        if name == "session.ended":
            self._close(s for s in list(self._sockets) if ended(data, s))

    def on_presence(self, topic: str, frame: str) -> None:
        pass

    def on_removed(self, topic: str, user_id: str, reason: LeftReason) -> None:
        pass

    def on_resync(self, topic: str) -> None:
        pass  # announcements missed while Redis was away: the sweep finds those sessions

    def _close(self, sockets: Iterable[Socket]) -> None:
        for socket in sockets:
            socket.request_close(Close.UNAUTHENTICATED, REASON)
            self.closed += 1

    async def sweep(self, sessionmaker: async_sessionmaker[AsyncSession], now: datetime) -> int:
        """Close the sockets whose session or account no longer stands, by asking the database."""
        sockets = [s for s in list(self._sockets) if s.user_id]
        if not sockets:
            return 0
        session_ids = sorted({uuid.UUID(s.session_id) for s in sockets if s.session_id})
        user_ids = sorted({uuid.UUID(s.user_id) for s in sockets})
        live_sessions: set[str] = set()
        live_users: set[str] = set()
        async with sessionmaker() as db:
            for chunk in _chunks(session_ids):
                live_sessions.update(str(i) for i in await db.scalars(
                    select(AuthSession.id).where(AuthSession.id.in_(chunk), AuthSession.revoked_at.is_(None),
                                                 AuthSession.expires_at > now)))
            for chunk in _chunks(user_ids):
                live_users.update(str(i) for i in await db.scalars(select(User.id).where(User.id.in_(chunk))))
        gone = [s for s in sockets if s.user_id not in live_users
                or (s.session_id is not None and s.session_id not in live_sessions)]
        self._close(gone)
        return len(gone)


def _chunks(ids: list[uuid.UUID], size: int = 1000) -> Iterator[list[uuid.UUID]]:
    # SQLite takes at most 32,766 bound parameters in one statement; PostgreSQL's planner prefers short lists.
    for start in range(0, len(ids), size):
        yield ids[start:start + size]


async def run_sweeps(watch: SessionWatch, sessionmaker: async_sessionmaker[AsyncSession], clock: Any,
                     interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            if closed := await watch.sweep(sessionmaker, clock()):
                log.info("closed %d socket(s) whose sign-in session had ended", closed)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the database away: the next sweep tries again
            log.warning("session sweep failed (%s: %s)", type(exc).__name__, exc)
