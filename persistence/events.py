"""Events, their participants and status log: the reads and inserts features outside `handlers/events` need."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, Select, Uuid, literal, literal_column, select
from sqlalchemy.dialects.postgresql.base import PGDialect
from sqlalchemy.ext.asyncio import AsyncSession

from persistence import topic_log
from persistence.models import Event, EventParticipant, StatusLog


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
