"""The questions every connecting socket asks the database, batched across sockets (channels.batching): is the
token's sign-in session still standing (and its user's row), and may this user join this event room.

Each answers exactly what the one-at-a-time path answers (handlers.accounts.sessions.authenticate,
handlers.access.event_for_member); whatever is not a plain yes here — an unknown session, a guest past its
expiry — goes the one-at-a-time way, so every refusal keeps its precise reason. Revocation still stops a
socket at once: that is the `sessions` topic's job (server.session_watch), not a lookup's.

On PostgreSQL each batch is one statement run straight on a pooled asyncpg connection: a storm asks these
thousands of times a second, and SQLAlchemy's ORM session and result machinery cost more CPU than the statement
(bench/ws_storm.py). The statements are compiled once from the same SQLAlchemy expressions the other databases
run, so the two paths cannot drift apart; tests/api/test_connect_checks.py holds them to the same answers."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ClauseElement, ColumnElement, Select, and_, any_, literal_column, select
from sqlalchemy.dialects.postgresql.base import PGDialect
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.sqltypes import JSON

from channels.batching import Batcher
from handlers.accounts.auth_cache import USER_COLUMNS
from persistence.database import asyncpg_engine, pooled_driver
from persistence.enums import ParticipantStatus
from persistence.models import AuthSession, Event, EventParticipant, User

SessionKey = tuple[uuid.UUID, uuid.UUID]  # (user id, session id)
MemberKey = tuple[uuid.UUID, uuid.UUID]  # (event id, user id)
Standing = tuple[dict[str, Any], datetime]  # the user's row (USER_COLUMNS), the session's expiry

_USER = tuple(User.__mapper__.get_property(key).columns[0] for key in USER_COLUMNS)
_JSON = frozenset(i for i, column in enumerate(_USER) if isinstance(column.type, JSON))
_ID = USER_COLUMNS.index("id")


def _sessions_query(session_ids: ColumnElement[bool]) -> Select[Any]:  # the user's columns, its session's id, expiry
    return (select(*_USER, AuthSession.id, AuthSession.expires_at)
            .join_from(User, AuthSession, AuthSession.user_id == User.id)
            .where(session_ids, AuthSession.revoked_at.is_(None)))


def _members_query(users: ColumnElement[bool],
                   events: ColumnElement[bool]) -> Select[uuid.UUID, uuid.UUID | None, uuid.UUID]:
    return (select(Event.id, Event.created_by_id, EventParticipant.user_id)
            .outerjoin(EventParticipant, and_(EventParticipant.event_id == Event.id, users,
                                              EventParticipant.status != ParticipantStatus.DECLINED))
            .where(events))


def _on_postgresql(query: ClauseElement) -> str:
    dialect = PGDialect()  # type: ignore[no-untyped-call]  # SQLAlchemy leaves it unannotated
    return str(query.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


SESSIONS_SQL = _on_postgresql(_sessions_query(AuthSession.id == any_(literal_column("$1::uuid[]"))))
MEMBERS_SQL = _on_postgresql(_members_query(EventParticipant.user_id == any_(literal_column("$1::uuid[]")),
                                            Event.id == any_(literal_column("$2::uuid[]"))))


class ConnectChecks:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._on_driver = asyncpg_engine(engine)
        # Elsewhere each batch is one read-only statement in autocommit: no BEGIN and no ROLLBACK around it, and no
        # connection held past the statement.
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        self.sessions: Batcher[SessionKey, Standing] = Batcher(self._sessions)
        self.members: Batcher[MemberKey, bool] = Batcher(self._members)

    async def _sessions(self, keys: list[SessionKey]) -> dict[SessionKey, Standing]:
        """The standing sessions among `keys`, each with its user's row and its expiry."""
        by_session: dict[uuid.UUID, list[SessionKey]] = {}
        for key in keys:
            by_session.setdefault(key[1], []).append(key)
        if self._on_driver:
            async with pooled_driver(self._engine) as driver:
                rows = list(await driver.fetch(SESSIONS_SQL, list(by_session)))
        else:
            async with self._autocommit.connect() as db:
                rows = list(await db.execute(_sessions_query(AuthSession.id.in_(list(by_session)))))
        found: dict[SessionKey, Standing] = {}
        for row in rows:
            # A key whose user is not the session's (a token naming another user) is no plain yes: not answered.
            for key in by_session.get(row[-2], ()):
                if row[_ID] != key[0]:
                    continue
                user = dict(zip(USER_COLUMNS, row, strict=False))
                if self._on_driver:  # the driver hands jsonb over as text; SQLAlchemy's JSON type decodes it
                    for i in _JSON:
                        if isinstance(value := row[i], str):
                            user[USER_COLUMNS[i]] = json.loads(value)
                user["id"] = key[0]  # the token's uuid.UUID, not the driver's kind (orjson writes only the former)
                found[key] = (user, row[-1])
        return found

    async def _members(self, keys: list[MemberKey]) -> dict[MemberKey, bool]:
        """Which of `keys` are members: the event's creator, or a participant who has not declined."""
        users, events = list({user for _, user in keys}), list({event for event, _ in keys})
        if self._on_driver:
            async with pooled_driver(self._engine) as driver:
                rows = list(await driver.fetch(MEMBERS_SQL, users, events))
        else:
            async with self._autocommit.connect() as db:
                rows = list(await db.execute(_members_query(EventParticipant.user_id.in_(users),
                                                            Event.id.in_(events))))
        members = {(event, creator) for event, creator, _ in rows} | {(event, user) for event, _, user in rows}
        return {key: True for key in keys if key in members}
