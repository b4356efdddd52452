"""Events and what hangs off them (participants, topics, status log, chat, reminders): their queries and reads."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    Executable,
    Row,
    Select,
    Uuid,
    and_,
    delete,
    exists,
    func,
    literal,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql.base import PGDialect
from sqlalchemy.ext.asyncio import AsyncSession

from persistence import topic_log
from persistence.enums import EventStatus, ParticipantStatus
from persistence.models import (
    ChatMessage,
    Event,
    EventParticipant,
    EventTopic,
    Process,
    Reminder,
    StatusLog,
    Topic,
    User,
    UserPreferences,
)


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


# Several lines at once (group commit: the lines that arrived while the previous batch was being written), in one
# statement: each line's member check, the lines the check admits, each room's head moved once by its admitted
# lines and their frames, in the order given (per room: offset order = the order given). A refused line stores
# nothing and moves no head; the others are not held back by it. Parameters are arrays, one element per line.
CHAT_LINE_EVENT: ColumnElement[uuid.UUID] = literal_column("s.event_id", Uuid)
CHAT_LINE_SENDER: ColumnElement[uuid.UUID] = literal_column("s.author_id", Uuid)


def chat_lines_statement(member: ColumnElement[bool]) -> str:
    """The statement for `add_chat_lines`, each line gated by `member` (built with CHAT_LINE_SENDER as the user), a
    condition on Event."""
    gate = select(literal(1)).select_from(Event).where(Event.id == CHAT_LINE_EVENT, member)
    dialect = PGDialect()  # type: ignore[no-untyped-call]
    gate_sql = gate.compile(dialect=dialect, compile_kwargs={"literal_binds": True})
    return f"""WITH s AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $6::uuid[], $7::uuid[], $8::uuid[],
                         $9::text[], $10::timestamptz[])
        WITH ORDINALITY AS s(topic, epoch, pre, suf, event_id, author_id, id, text, created_at, i)
), ok AS MATERIALIZED (
    SELECT s.*, row_number() OVER (PARTITION BY s.topic ORDER BY s.i) AS k FROM s WHERE EXISTS ({gate_sql})
), line AS (
    INSERT INTO chat_messages (id, event_id, author_id, text, created_at)
    SELECT id, event_id, author_id, text, created_at FROM ok ORDER BY i
    RETURNING id
), t AS (
    SELECT topic, min(epoch) AS epoch, count(*) AS n FROM ok GROUP BY topic
), h AS (
    INSERT INTO topic_heads (topic, epoch, head, updated_at)
    SELECT topic, epoch, n, $5::timestamptz FROM t ORDER BY topic
    ON CONFLICT (topic) DO UPDATE SET head = topic_heads.head + EXCLUDED.head, updated_at = EXCLUDED.updated_at
    RETURNING topic, epoch, head
), e AS MATERIALIZED (
    SELECT ok.i, h.epoch, h.head - t.n + ok.k AS seq,
           ok.pre || (h.head - t.n + ok.k) || ',"epoch":"' || h.epoch || '"' || ok.suf AS frame, ok.topic
    FROM ok JOIN t ON t.topic = ok.topic JOIN h ON h.topic = ok.topic
), logged AS (
    INSERT INTO topic_log (topic, seq, frame, created_at) SELECT topic, seq, frame, $5::timestamptz FROM e
)
SELECT i, epoch, seq, frame FROM e
"""


class ChatLine(NamedTuple):
    """One line of `add_chat_lines`: its room's topic, its frame around the offset and epoch (prefix, suffix) and
    the row."""

    topic: str
    frame: tuple[str, str]
    event_id: uuid.UUID
    author_id: uuid.UUID
    line_id: uuid.UUID
    text: str
    created_at: datetime


async def add_chat_lines(db: AsyncSession, lines: Sequence[ChatLine], now: datetime, *,
                         statement: str) -> list[tuple[str, int, str] | None] | None:
    """Store `lines` by `statement` (from `chat_lines_statement`) in one round trip on the session's asyncpg
    connection (a transaction of its own unless the session began one): per line, in the order given, its room's
    epoch, its offset and its stored frame, or None for a line whose sender is not a member (nothing of it stored).
    None where this is not PostgreSQL. A line that breaks a constraint (its event deleted meanwhile) fails the
    statement and with it every line: the caller then stores them one by one (`add_chat_line`)."""
    if db.get_bind().dialect.name != "postgresql":
        return None
    raw = await (await db.connection()).get_raw_connection()
    conn: Any = raw.driver_connection
    rows = await conn.fetch(statement, [x.topic for x in lines], [secrets.token_hex(8) for _ in lines],
                            [x.frame[0] for x in lines], [x.frame[1] for x in lines], now,
                            [x.event_id for x in lines], [x.author_id for x in lines], [x.line_id for x in lines],
                            [x.text for x in lines], [x.created_at for x in lines])
    out: list[tuple[str, int, str] | None] = [None] * len(lines)
    for r in rows:
        out[int(r["i"]) - 1] = (str(r["epoch"]), int(r["seq"]), str(r["frame"]))
    return out


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


# --- handlers/events (manage, calendar, participants, chat, reminders) ---------------------------------------------


async def existing_ids(db: AsyncSession, model: type[User] | type[Topic], ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    """Which of `ids` are rows of `model` (users or topics)."""
    return set((await db.scalars(select(model.id).where(model.id.in_(ids)))).all())


async def clear_topics(db: AsyncSession, event_id: uuid.UUID) -> None:
    """Unlink every topic from the event."""
    await db.execute(delete(EventTopic).where(EventTopic.event_id == event_id))


async def active_member_ids(db: AsyncSession, event_id: uuid.UUID) -> list[uuid.UUID]:
    """The event's participants who have not declined (the creator only if a participant row says so)."""
    return list((await db.scalars(select(EventParticipant.user_id).where(
        EventParticipant.event_id == event_id, EventParticipant.status != ParticipantStatus.DECLINED))).all())


async def delete_event(db: AsyncSession, event: Event) -> None:
    """Delete the event (its participants, topics, reminders and chat go by FK cascade), flushed."""
    await db.delete(event)
    await db.flush()


async def process_in_use(db: AsyncSession, process_id: uuid.UUID) -> tuple[Process | None, bool]:
    """The process and whether any event still uses it."""
    process = await db.get(Process, process_id)
    shared = await db.scalar(select(exists().where(Event.process_id == process_id)))
    return process, bool(shared)


async def delete_process(db: AsyncSession, process: Process) -> None:
    await db.delete(process)


def template_instance_ids(template_id: uuid.UUID) -> Select[uuid.UUID]:
    """The processes cloned from the template (a subquery for the caller's filter)."""
    return select(Process.id).where(Process.template_id == template_id)


def tagged_with(topic_id: uuid.UUID) -> ColumnElement[bool]:
    """Condition on Event: it carries the topic."""
    return exists().where(EventTopic.event_id == Event.id, EventTopic.topic_id == topic_id)


async def events_page(db: AsyncSession, stmt: Select[Event], offset: int, limit: int) -> Sequence[Event]:
    """`stmt`'s events (the caller's scoped select) by start time, one page."""
    return (await db.scalars(stmt.order_by(Event.start_time, Event.id).offset(offset).limit(limit))).all()


async def calendar_cells(db: AsyncSession, *, visible: ColumnElement[bool], offset: int, limit: int,
                         ) -> Sequence[tuple[uuid.UUID, str, datetime, datetime, EventStatus, str | None, int]]:
    """One page of the events `visible` admits, by start time, as plain rows with each event's count of
    participants who have not declined: (id, title, start, end, status, color, count)."""
    participants = (select(func.count()).where(EventParticipant.event_id == Event.id,
                                               EventParticipant.status != ParticipantStatus.DECLINED)
                    .correlate(Event).scalar_subquery())
    stmt = (select(Event.id, Event.title, Event.start_time, Event.end_time, Event.status, Event.color, participants)
            .where(visible).order_by(Event.start_time, Event.id).offset(offset).limit(limit))
    return (await db.execute(stmt)).tuples().all()


async def calendar_counts(db: AsyncSession, *, visible: ColumnElement[bool], user_id: uuid.UUID,
                          sample: int) -> tuple[dict[str, int], int, list[uuid.UUID]]:
    """Of the events `visible` admits: the count per status, how many `user_id` created, and the first `sample`
    ids by start time."""
    by_status = {str(status): int(n) for status, n in (await db.execute(
        select(Event.status, func.count()).where(visible).group_by(Event.status))).tuples()}
    created = await db.scalar(select(func.count()).select_from(Event).where(visible, Event.created_by_id == user_id))
    ids = await db.scalars(select(Event.id).where(visible).order_by(Event.start_time, Event.id).limit(sample))
    return by_status, int(created or 0), list(ids.all())


async def participants_page(db: AsyncSession, event_id: uuid.UUID, creator_id: uuid.UUID | None, offset: int,
                            limit: int) -> Sequence[tuple[EventParticipant, User]]:
    """The event's participants with their users: the creator first, then in the order people joined."""
    return (await db.execute(
        select(EventParticipant, User).join(User, User.id == EventParticipant.user_id)
        .where(EventParticipant.event_id == event_id)
        .order_by(EventParticipant.user_id != creator_id, EventParticipant.joined_at, EventParticipant.user_id)
        .offset(offset).limit(limit)
    )).tuples().all()


async def delete_participant(db: AsyncSession, row: EventParticipant) -> None:
    await db.delete(row)


async def chat_page(db: AsyncSession, event_id: uuid.UUID, before: datetime | None,
                    limit: int) -> Sequence[tuple[ChatMessage, User | None]]:
    """The event's chat lines (sent before `before`, if given) with their authors, newest first."""
    stmt = select(ChatMessage, User).outerjoin(User, User.id == ChatMessage.author_id) \
        .where(ChatMessage.event_id == event_id)
    if before is not None:
        stmt = stmt.where(ChatMessage.created_at < before)
    return (await db.execute(stmt.order_by(ChatMessage.created_at.desc()).limit(limit))).tuples().all()


async def reminder_minutes(db: AsyncSession, event_id: uuid.UUID) -> Sequence[tuple[uuid.UUID, int | None]]:
    """The event's participants who have not declined, with their `reminder_minutes` preference (None: unset)."""
    return (await db.execute(
        select(EventParticipant.user_id, UserPreferences.reminder_minutes)
        .outerjoin(UserPreferences, UserPreferences.user_id == EventParticipant.user_id)
        .where(EventParticipant.event_id == event_id, EventParticipant.status != ParticipantStatus.DECLINED)
    )).tuples().all()


async def reminders_of(db: AsyncSession, event_id: uuid.UUID,
                       ) -> Sequence[tuple[uuid.UUID, uuid.UUID, datetime, datetime | None]]:
    """The event's reminders: (id, user, due at, sent at)."""
    return (await db.execute(
        select(Reminder.id, Reminder.user_id, Reminder.due_at, Reminder.sent_at).where(Reminder.event_id == event_id)
    )).tuples().all()


async def drop_unsent_reminders(db: AsyncSession, ids: Sequence[uuid.UUID]) -> None:
    """Delete those of the reminders that are still unsent."""
    await db.execute(delete(Reminder).where(Reminder.id.in_(ids), Reminder.sent_at.is_(None)))


async def drop_unsent_reminders_of(db: AsyncSession, event_id: uuid.UUID, user_id: uuid.UUID) -> None:
    """Delete the user's unsent reminders of the event."""
    await db.execute(delete(Reminder).where(Reminder.event_id == event_id, Reminder.user_id == user_id,
                                            Reminder.sent_at.is_(None)))


async def claim_reminders(db: AsyncSession, now: datetime, claimer: str, lease: timedelta,
                          limit: int) -> list[uuid.UUID]:
    """Claim up to `limit` due, unsent reminders, earliest first, that nobody holds (or whose claim is older than
    `lease`), skipping rows another transaction has locked; their ids."""
    open_ = and_(Reminder.sent_at.is_(None), Reminder.due_at <= now,
                 or_(Reminder.claimed_at.is_(None), Reminder.claimed_at < now - lease))
    due = (select(Reminder.id).where(open_).order_by(Reminder.due_at).limit(limit)
           .with_for_update(skip_locked=True))
    claimed = await db.scalars(update(Reminder).where(Reminder.id.in_(due.scalar_subquery()), open_)
                               .values(claimed_by=claimer, claimed_at=now).returning(Reminder.id))
    return list(claimed.all())


async def mark_reminder_sent(db: AsyncSession, reminder_id: uuid.UUID,
                             now: datetime) -> tuple[uuid.UUID, uuid.UUID, datetime] | None:
    """Flip the reminder's `sent_at` from NULL to `now`: its (event, user, due at), None if sent or gone."""
    row = (await db.execute(
        update(Reminder).where(Reminder.id == reminder_id, Reminder.sent_at.is_(None)).values(sent_at=now)
        .returning(Reminder.event_id, Reminder.user_id, Reminder.due_at)
    )).tuples().first()
    return None if row is None else (row[0], row[1], row[2])


async def event_and_participant(db: AsyncSession, event_id: uuid.UUID,
                                user_id: uuid.UUID) -> tuple[Event | None, EventParticipant | None]:
    return await db.get(Event, event_id), await db.get(EventParticipant, (event_id, user_id))


async def delete_reminder(db: AsyncSession, reminder_id: uuid.UUID) -> None:
    await db.execute(delete(Reminder).where(Reminder.id == reminder_id))
