"""The questions every connecting socket asks the database, batched across sockets (channels.batching): is the
token's sign-in session still standing (and its user's row), and may this user join this event room.

Each answers exactly what the one-at-a-time path answers (handlers.accounts.sessions.authenticate,
handlers.access.event_for_member); whatever is not a plain yes here — an unknown session, a guest past its
expiry — goes the one-at-a-time way, so every refusal keeps its precise reason. Revocation still stops a
socket at once: that is the `sessions` topic's job (server.session_watch), not a lookup's."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from channels.batching import Batcher
from persistence.enums import ParticipantStatus
from persistence.models import AuthSession, Event, EventParticipant, User

SessionKey = tuple[uuid.UUID, uuid.UUID]  # (user id, session id)
MemberKey = tuple[uuid.UUID, uuid.UUID]  # (event id, user id)


class ConnectChecks:
    def __init__(self, engine: AsyncEngine) -> None:
        # Each batch is one read-only statement: in autocommit it needs no BEGIN and no ROLLBACK around it (two of
        # its four round trips, with the pool's ping), and no connection is held past the statement.
        self._sessionmaker = async_sessionmaker(engine.execution_options(isolation_level="AUTOCOMMIT"),
                                                expire_on_commit=False)
        self.sessions: Batcher[SessionKey, tuple[User, datetime]] = Batcher(self._sessions)
        self.members: Batcher[MemberKey, bool] = Batcher(self._members)

    async def _sessions(self, keys: list[SessionKey]) -> dict[SessionKey, tuple[User, datetime]]:
        """The standing sessions among `keys`, each with its user (loaded, then detached) and its expiry."""
        async with self._sessionmaker() as db:
            rows = (await db.execute(
                select(User, AuthSession.id, AuthSession.expires_at)
                .join(AuthSession, AuthSession.user_id == User.id)
                .where(AuthSession.id.in_([sid for _, sid in keys]), AuthSession.revoked_at.is_(None))
            )).all()
        return {(user.id, sid): (user, expires_at) for user, sid, expires_at in rows}

    async def _members(self, keys: list[MemberKey]) -> dict[MemberKey, bool]:
        """Which of `keys` are members: the event's creator, or a participant who has not declined."""
        async with self._sessionmaker() as db:
            rows = (await db.execute(
                select(Event.id, Event.created_by_id, EventParticipant.user_id)
                .outerjoin(EventParticipant, and_(
                    EventParticipant.event_id == Event.id,
                    EventParticipant.user_id.in_({user for _, user in keys}),
                    EventParticipant.status != ParticipantStatus.DECLINED))
                .where(Event.id.in_({event for event, _ in keys}))
            )).all()
        members = {(event, creator) for event, creator, _ in rows} | {(event, user) for event, _, user in rows}
        return {key: True for key in keys if key in members}
