"""Events, their participants, topics and status log: the reads and inserts of events and their wire shapes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Executable, Row, Select, Uuid, func, literal, literal_column, select
from sqlalchemy.dialects.postgresql.base import PGDialect
from sqlalchemy.ext.asyncio import AsyncSession

from persistence import topic_log
from persistence.enums import ParticipantStatus
from persistence.models import Event, EventParticipant, EventTopic, StatusLog, Topic, User


async def upcoming_for_participant(db: AsyncSession, user_id: uuid.UUID, now: datetime) -> Sequence[Event]:
    """The events the user takes part in that start after `now`."""
    return (await db.scalars(
        select(Event).join(EventParticipant, EventParticipant.event_id == Event.id)
        .where(EventParticipant.user_id == user_id, Event.start_time > now))).all()


async def add_event(db: AsyncSession, event: Event, participant: EventParticipant, log: StatusLog) -> None:
    """Insert the event (flushed, so it has its id), then stage its first participant and status log entry on
    it: they are written with the session's next flush."""
    db.add(event)
    await db.flush()
    participant.event_id = event.id
    log.event_id = event.id
    db.add(participant)
    db.add(log)


# PostgreSQL: the member check, the line and its frame in the room's log are one statement — one round trip,
# and no BEGIN/COMMIT when it is the only statement of its transaction (a push). The head moves only if the line
# was stored, the line only if `member` (the handler's access rule, built with CHAT_SENDER as the user) admits the
# sender. The rule is compiled into the text once, by the caller, so the statement stays one prepared text.
CHAT_EVENT: ColumnElement[uuid.UUID] = literal_column("$7::uuid", Uuid)
CHAT_SENDER: ColumnElement[uuid.UUID] = literal_column("$8::uuid", Uuid)


def chat_line_statement(member: ColumnElement[bool]) -> str:
    """The statement for `add_chat_line`, gated by `member`, a condition on Event."""
    gate = select(literal(1)).select_from(Event).where(Event.id == CHAT_EVENT, member)
    # SQLAlchemy leaves the dialect constructor unannotated.
    dialect = PGDialect()  # type: ignore[no-untyped-call]
    gate_sql = gate.compile(dialect=dialect, compile_kwargs={"literal_binds": True})
    return topic_log.gated_append(f"""member AS (
    {gate_sql}
), line AS (
    INSERT INTO chat_messages (id, event_id, author_id, text, created_at)
    SELECT $9::uuid, $7::uuid, $8::uuid, $10::text, $4::timestamptz FROM member
    RETURNING id
), """, "line")


async def add_chat_line(db: AsyncSession, topic: str, frame: tuple[str, str], now: datetime, event_id: uuid.UUID,
                        user_id: uuid.UUID, line_id: uuid.UUID, text: str, *,
                        statement: str) -> tuple[str, list[tuple[int, str]]] | None:
    """A member's chat line and its frame in the room's log (`topic_log.append_frames`) by `statement` (from
    `chat_line_statement`): the epoch and the stored (offset, frame), an empty epoch when the user is not a member
    (nothing stored), None where this is not PostgreSQL (the caller adds the row and lets the unit of work record
    the frame)."""
    return await topic_log.append_frames(db, topic, [frame], now, statement=statement,
                                         args=(event_id, user_id, line_id, text))


async def room_item(db: AsyncSession, event_id: uuid.UUID, *, member: ColumnElement[bool],
                    item_process: Select[uuid.UUID]) -> tuple[bool, uuid.UUID | None, uuid.UUID | None] | None:
    """In one statement: whether `member` (the caller's rule on Event) admits the caller to the event, the event's
    process and the process of a checklist item (`item_process` selects it); None if there is no such event."""
    row = (await db.execute(select(member, Event.process_id, item_process.scalar_subquery())
                            .where(Event.id == event_id))).tuples().one_or_none()
    return None if row is None else (bool(row[0]), row[1], row[2])


# --- what the event's wire shapes read (handlers/events/views.py): plain rows, a page of events at a time -------

# Keeps IN lists well under every driver's bind-parameter limit.
CHUNK = 1000

AnyRow = Row[*tuple[Any, ...]]


def _chunks(ids: Sequence[uuid.UUID]) -> Iterator[Sequence[uuid.UUID]]:
    for i in range(0, len(ids), CHUNK):
        yield ids[i:i + CHUNK]


async def _rows(db: AsyncSession, stmt: Executable) -> Sequence[AnyRow]:
    # Straight on the session's connection: plain rows, without the ORM's per-statement loading machinery.
    conn = await db.connection()
    return (await conn.execute(stmt)).all()


async def participant_rows(db: AsyncSession, ids: Sequence[uuid.UUID]) -> list[AnyRow]:
    """(event_id, user_id, role, status, joined_at) of the events' participants, by join time within an event."""
    rows: list[AnyRow] = []
    for chunk in _chunks(ids):
        rows.extend(await db.execute(
            select(EventParticipant.event_id, EventParticipant.user_id, EventParticipant.role,
                   EventParticipant.status, EventParticipant.joined_at)
            .where(EventParticipant.event_id.in_(chunk))
            .order_by(EventParticipant.joined_at, EventParticipant.user_id)
        ))
    return rows


async def user_brief_rows(db: AsyncSession, ids: set[uuid.UUID]) -> list[AnyRow]:
    """(id, name, handle, profile_image) of the users."""
    rows: list[AnyRow] = []
    for chunk in _chunks(list(ids)):
        rows.extend(await db.execute(
            select(User.id, User.name, User.handle, User.profile_image).where(User.id.in_(chunk))))
    return rows


async def topics_of_events(db: AsyncSession, ids: Sequence[uuid.UUID]) -> list[tuple[uuid.UUID, Topic]]:
    """(event_id, topic) pairs of the events, by topic name."""
    pairs: list[tuple[uuid.UUID, Topic]] = []
    for chunk in _chunks(ids):
        pairs.extend((event_id, topic) for event_id, topic in await db.execute(
            select(EventTopic.event_id, Topic).join(Topic, Topic.id == EventTopic.topic_id)
            .where(EventTopic.event_id.in_(chunk)).order_by(Topic.name)
        ))
    return pairs


async def list_rows(db: AsyncSession, stmt: Select[Event]) -> Sequence[AnyRow]:
    """`stmt`'s events as (id, title, start_time, end_time, color, status, process_id, count of participants who
    have not declined), the count a correlated subquery: one statement for the page."""
    going = (select(func.count()).where(EventParticipant.event_id == Event.id,
                                        EventParticipant.status != ParticipantStatus.DECLINED)
             .correlate(Event).scalar_subquery())
    return await _rows(db, stmt.with_only_columns(
        Event.id, Event.title, Event.start_time, Event.end_time, Event.color, Event.status, Event.process_id, going,
    ))


async def topic_names(db: AsyncSession, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[str]]:
    """Each event's topic names, sorted."""
    names: dict[uuid.UUID, list[str]] = {i: [] for i in ids}
    for chunk in _chunks(ids):
        for event_id, name in await _rows(db, select(EventTopic.event_id, Topic.name)
                                          .join(Topic, Topic.id == EventTopic.topic_id)
                                          .where(EventTopic.event_id.in_(chunk)).order_by(Topic.name)):
            names[event_id].append(name)
    return names


async def related_rows(db: AsyncSession, ids: Sequence[uuid.UUID],
                       visible: ColumnElement[bool]) -> dict[uuid.UUID, AnyRow]:
    """(id, title, start_time, color) of the events among `ids` that `visible` (the caller's access rule) admits."""
    return {r.id: r for r in await _rows(db, select(Event.id, Event.title, Event.start_time, Event.color)
                                         .where(Event.id.in_(ids), visible))}


async def status_log_page(db: AsyncSession, event_id: uuid.UUID, offset: int,
                          limit: int) -> list[tuple[StatusLog, User | None]]:
    """The event's status changes, newest first, each with the user who made it (None once they are gone)."""
    rows = await db.execute(
        select(StatusLog, User).outerjoin(User, User.id == StatusLog.user_id).where(StatusLog.event_id == event_id)
        .order_by(StatusLog.created_at.desc(), StatusLog.id.desc()).offset(offset).limit(limit)
    )
    return [(log, user) for log, user in rows]


DETAIL_EVENT = (Event.id, Event.title, Event.description, Event.start_time, Event.end_time, Event.status,
                Event.complexity, Event.color, Event.location, Event.event_metadata, Event.created_by_id,
                Event.process_id, Event.recording_url, Event.created_at, Event.updated_at)
# The user columns of a status log row, after its seven own columns (id, previous_status, new_status, user_id,
# created_at, updated_at, event_id).
LOG_USER = (User.id, User.email, User.name, User.handle, User.profile_image, User.bio, User.user_metadata,
            User.is_guest, User.guest_role, User.is_admin, User.created_at, User.updated_at)


async def detail_row(db: AsyncSession, event_id: uuid.UUID, visible: ColumnElement[bool]) -> AnyRow | None:
    """The event's DETAIL_EVENT columns, None when it does not exist or `visible` does not admit it."""
    found = await _rows(db, select(*DETAIL_EVENT).where(Event.id == event_id, visible))
    return found[0] if found else None


async def detail_topic_rows(db: AsyncSession, event_id: uuid.UUID) -> Sequence[AnyRow]:
    """(id, name, category, color, created_at, updated_at) of the event's topics, by name."""
    return await _rows(db, select(Topic.id, Topic.name, Topic.category, Topic.color, Topic.created_at,
                                  Topic.updated_at)
                       .join(EventTopic, EventTopic.topic_id == Topic.id)
                       .where(EventTopic.event_id == event_id).order_by(Topic.name))


async def detail_participant_rows(db: AsyncSession, event_id: uuid.UUID) -> Sequence[AnyRow]:
    """(user_id, role, status, joined_at, name, handle, profile_image) of the event's participants, by join time."""
    return await _rows(db, select(EventParticipant.user_id, EventParticipant.role, EventParticipant.status,
                                  EventParticipant.joined_at, User.name, User.handle, User.profile_image)
                       .join(User, User.id == EventParticipant.user_id)
                       .where(EventParticipant.event_id == event_id)
                       .order_by(EventParticipant.joined_at, EventParticipant.user_id))


async def detail_log_rows(db: AsyncSession, event_id: uuid.UUID, limit: int) -> Sequence[AnyRow]:
    """The event's newest status changes: seven columns of the change, then LOG_USER (all None without a user)."""
    return await _rows(db, select(StatusLog.id, StatusLog.previous_status, StatusLog.new_status,
                                  StatusLog.user_id, StatusLog.created_at, StatusLog.updated_at,
                                  StatusLog.event_id, *LOG_USER)
                       .outerjoin(User, User.id == StatusLog.user_id).where(StatusLog.event_id == event_id)
                       .order_by(StatusLog.created_at.desc(), StatusLog.id.desc()).limit(limit))
