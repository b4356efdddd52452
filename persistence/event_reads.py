"""What `GET /events/{id}` reads: the event, its topics, participants (with their users) and newest status changes,
as plain rows. On PostgreSQL that is one statement, the related rows folded into arrays of records, run straight
on the session's asyncpg connection; elsewhere one statement per table (the same rows, the same order). And the
compact calendar's cells, on PostgreSQL read on the driver too."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import BigInteger, ColumnElement, DateTime, Uuid, func, literal_column, select
from sqlalchemy.dialects.postgresql.base import PGDialect
from sqlalchemy.ext.asyncio import AsyncSession

from persistence.database import on_postgresql as on_postgresql  # the read path's switch, here beside it
from persistence.database import straight_connection
from persistence.enums import EventStatus, ParticipantStatus
from persistence.models import Event, EventParticipant, EventTopic, StatusLog, Topic, User

DETAIL_EVENT = (Event.id, Event.title, Event.description, Event.start_time, Event.end_time, Event.status,
                Event.complexity, Event.color, Event.location, Event.event_metadata, Event.created_by_id,
                Event.process_id, Event.recording_url, Event.created_at, Event.updated_at)
# The user columns of a status log row, after its seven own columns (id, previous_status, new_status, user_id,
# created_at, updated_at, event_id).
LOG_USER = (User.id, User.email, User.name, User.handle, User.profile_image, User.bio, User.user_metadata,
            User.is_guest, User.guest_role, User.is_admin, User.created_at, User.updated_at)

# The viewer in the one statement's access rule (its $2; $1 is the event): the rule is compiled into the text
# once, by the caller, so the statement stays one prepared text.
DETAIL_VIEWER: ColumnElement[uuid.UUID] = literal_column("$2::uuid", Uuid)


class DetailRows(NamedTuple):
    """The event's DETAIL_EVENT columns; its topics (id, name, category, color, created_at, updated_at) by name;
    its participants (user_id, role, status, joined_at, name, handle, profile_image) by join time; its newest
    status changes (seven columns of the change, then LOG_USER, all None without a user)."""

    event: Sequence[Any]
    topics: Sequence[Sequence[Any]]
    participants: Sequence[Sequence[Any]]
    logs: Sequence[Sequence[Any]]


def detail_statement(visible: ColumnElement[bool], log_limit: int) -> str:
    """The one statement of `detail_in_one` (PostgreSQL), gated by `visible`, a condition on Event built with
    DETAIL_VIEWER as the caller. Its columns: DETAIL_EVENT, then the topics, participants and status changes as
    arrays of records, each in the order (and of the columns) DetailRows gives."""
    topics = """ARRAY(SELECT ROW(topics.id, topics.name, topics.category, topics.color, topics.created_at,
        topics.updated_at) FROM topics JOIN event_topics ON event_topics.topic_id = topics.id
        WHERE event_topics.event_id = events.id ORDER BY topics.name)"""
    participants = """ARRAY(SELECT ROW(p.user_id, p.role, p.status, p.joined_at, u.name, u.handle, u.profile_image)
        FROM event_participants AS p JOIN users AS u ON u.id = p.user_id
        WHERE p.event_id = events.id ORDER BY p.joined_at, p.user_id)"""
    logs = f"""ARRAY(SELECT ROW(s.id, s.previous_status, s.new_status, s.user_id, s.created_at, s.updated_at,
        s.event_id, u.id, u.email, u.name, u.handle, u.profile_image, u.bio, u.user_metadata, u.is_guest,
        u.guest_role, u.is_admin, u.created_at, u.updated_at)
        FROM status_logs AS s LEFT OUTER JOIN users AS u ON u.id = s.user_id
        WHERE s.event_id = events.id ORDER BY s.created_at DESC, s.id DESC LIMIT {int(log_limit)})"""
    stmt = (select(*DETAIL_EVENT, literal_column(topics), literal_column(participants), literal_column(logs))
            .where(Event.id == literal_column("$1::uuid", Uuid), visible))
    # SQLAlchemy leaves the dialect constructor unannotated.
    dialect = PGDialect()  # type: ignore[no-untyped-call]
    return str(stmt.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


def _json(value: Any) -> Any:
    # The driver hands jsonb over as text here (SQLAlchemy's JSON type decodes it with json.loads elsewhere).
    return json.loads(value) if isinstance(value, str) else value


async def detail_in_one(db: AsyncSession, statement: str, event_id: uuid.UUID,
                        viewer_id: uuid.UUID) -> DetailRows | None:
    """PostgreSQL: the rows in one round trip by `statement` (from `detail_statement`); None when the event does
    not exist or the rule does not admit the viewer. Values typed as the ORM's columns would give them."""
    # A read is a unit of its own unless the session already did something (then its connection serves, so the
    # read sees the unit's own writes): straight_connection's pooled connection costs less than the session's.
    async with straight_connection(db, alone=True) as (conn, _):
        row = await conn.fetchrow(statement, event_id, viewer_id)
    if row is None:
        return None
    event = list(row[:15])
    event[5] = EventStatus(event[5])
    event[9] = _json(event[9])
    participants = [(r[0], r[1], ParticipantStatus(r[2]), *r[3:]) for r in row[16]]
    logs = [(r[0], None if r[1] is None else EventStatus(r[1]), EventStatus(r[2]), *r[3:13], _json(r[13]), *r[14:])
            for r in row[17]]
    return DetailRows(event, row[15], participants, logs)


async def detail_rows(db: AsyncSession, event_id: uuid.UUID, visible: ColumnElement[bool],
                      log_limit: int) -> DetailRows | None:
    """The same rows as `detail_in_one`, one statement per table (any database); `visible` is the caller's rule."""
    conn = await db.connection()
    found = (await conn.execute(select(*DETAIL_EVENT).where(Event.id == event_id, visible))).all()
    if not found:
        return None
    topics = (await conn.execute(
        select(Topic.id, Topic.name, Topic.category, Topic.color, Topic.created_at, Topic.updated_at)
        .join(EventTopic, EventTopic.topic_id == Topic.id)
        .where(EventTopic.event_id == event_id).order_by(Topic.name))).all()
    participants = (await conn.execute(
        select(EventParticipant.user_id, EventParticipant.role, EventParticipant.status,
               EventParticipant.joined_at, User.name, User.handle, User.profile_image)
        .join(User, User.id == EventParticipant.user_id)
        .where(EventParticipant.event_id == event_id)
        .order_by(EventParticipant.joined_at, EventParticipant.user_id))).all()
    logs = (await conn.execute(
        select(StatusLog.id, StatusLog.previous_status, StatusLog.new_status, StatusLog.user_id,
               StatusLog.created_at, StatusLog.updated_at, StatusLog.event_id, *LOG_USER)
        .outerjoin(User, User.id == StatusLog.user_id).where(StatusLog.event_id == event_id)
        .order_by(StatusLog.created_at.desc(), StatusLog.id.desc()).limit(log_limit))).all()
    return DetailRows(found[0], topics, participants, logs)


# The month view's statement on the driver: the viewer, the range and the page are its parameters, so the text
# (the member rule compiled in) is built once.
CELL_VIEWER: ColumnElement[uuid.UUID] = literal_column("$1::uuid", Uuid)
CELL_FROM: ColumnElement[datetime] = literal_column("$2::timestamptz", DateTime(timezone=True))
CELL_TO: ColumnElement[datetime] = literal_column("$3::timestamptz", DateTime(timezone=True))


def cells_statement(visible: ColumnElement[bool]) -> str:
    """`persistence.events.calendar_cells`' statement for PostgreSQL, gated by `visible` (a condition on Event
    built with CELL_VIEWER, CELL_FROM and CELL_TO); $4 and $5 are the page's offset and limit."""
    participants = (select(func.count()).where(EventParticipant.event_id == Event.id,
                                               EventParticipant.status != ParticipantStatus.DECLINED)
                    .correlate(Event).scalar_subquery())
    stmt = (select(Event.id, Event.title, Event.start_time, Event.end_time, Event.status, Event.color, participants)
            .where(visible).order_by(Event.start_time, Event.id)
            .offset(literal_column("$4::bigint", BigInteger)).limit(literal_column("$5::bigint", BigInteger)))
    dialect = PGDialect()  # type: ignore[no-untyped-call]
    return str(stmt.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


async def cells_on_driver(db: AsyncSession, statement: str, viewer_id: uuid.UUID, lo: datetime, hi: datetime,
                          offset: int, limit: int) -> Sequence[Sequence[Any]]:
    """The rows of `calendar_cells` by `statement` (from `cells_statement`), without SQLAlchemy's result
    machinery: a month can hold a thousand events. (id, title, start, end, status as text, color, count)."""
    async with straight_connection(db, alone=True) as (conn, _):  # as in detail_in_one
        rows: Sequence[Sequence[Any]] = await conn.fetch(statement, viewer_id, lo, hi, offset, limit)
    return rows
