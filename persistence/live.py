"""Live AI sessions: context rows, their messages in `seq` order, and what a turn reads around them."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence

from sqlalchemy import Select, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from persistence.enums import LiveRole, ParticipantStatus
from persistence.models import Event, EventParticipant, LiveContext, LiveMessage, Process, Step, User

# ---- contexts -----------------------------------------------------------------------------------------------


async def context(db: AsyncSession, context_id: uuid.UUID, *, for_update: bool = False) -> LiveContext | None:
    return await db.get(LiveContext, context_id, with_for_update=for_update)


async def contexts_of(db: AsyncSession, user_id: uuid.UUID, *, process_id: uuid.UUID | None = None,
                      event_id: uuid.UUID | None = None, template_id: uuid.UUID | None = None,
                      limit: int) -> Sequence[LiveContext]:
    """The user's own sessions, newest first, optionally only those linked to a process, event or template."""
    stmt = select(LiveContext).where(LiveContext.user_id == user_id)
    if process_id is not None:
        stmt = stmt.where(LiveContext.process_id == process_id)
    if event_id is not None:
        stmt = stmt.where(LiveContext.event_id == event_id)
    if template_id is not None:
        stmt = stmt.where(LiveContext.template_id == template_id)
    stmt = stmt.order_by(LiveContext.created_at.desc(), LiveContext.id.desc())
    return (await db.scalars(stmt.limit(limit))).all()


async def sessions_of_event(db: AsyncSession, event_id: uuid.UUID) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """(context id, owner id) of every session linked to the event."""
    rows = await db.execute(select(LiveContext.id, LiveContext.user_id).where(LiveContext.event_id == event_id))
    return [(context_id, owner) for context_id, owner in rows]


async def save(db: AsyncSession, row: LiveContext | LiveMessage) -> None:
    """Write a new or changed context or message now, so its id and defaults are known."""
    db.add(row)
    await db.flush()


async def remove(db: AsyncSession, row: LiveContext) -> None:
    """Its messages go with it (ON DELETE CASCADE)."""
    await db.delete(row)
    await db.flush()


# ---- messages -----------------------------------------------------------------------------------------------

async def add_messages(db: AsyncSession, rows: Sequence[LiveMessage]) -> None:
    db.add_all(rows)
    await db.flush()


async def clear_messages(db: AsyncSession, context_id: uuid.UUID) -> None:
    await db.execute(delete(LiveMessage).where(LiveMessage.context_id == context_id))


async def messages_of(db: AsyncSession, context_ids: Collection[uuid.UUID], cap: int | None) -> Sequence[LiveMessage]:
    """The contexts' messages by context, then `seq`; with `cap`, only each context's most recent `cap`
    (one statement either way)."""
    stmt = select(LiveMessage).where(LiveMessage.context_id.in_(context_ids))
    if cap is not None:
        rank = func.row_number().over(partition_by=LiveMessage.context_id,
                                      order_by=LiveMessage.seq.desc()).label("rank")
        tail = select(LiveMessage.id, rank).where(LiveMessage.context_id.in_(context_ids)).subquery()
        stmt = select(LiveMessage).join(tail, tail.c.id == LiveMessage.id).where(tail.c.rank <= cap)
    return (await db.scalars(stmt.order_by(LiveMessage.context_id, LiveMessage.seq))).all()


async def last_seq(db: AsyncSession, context_id: uuid.UUID) -> int:
    """The context's highest `seq` (0 with no messages); lock the context first when appending."""
    top = await db.scalar(select(func.max(LiveMessage.seq)).where(LiveMessage.context_id == context_id))
    return top or 0


async def newest_prompts(db: AsyncSession, context_id: uuid.UUID, limit: int) -> Sequence[LiveMessage]:
    """The context's most recent `limit` user messages, newest first."""
    return (await db.scalars(
        select(LiveMessage).where(LiveMessage.context_id == context_id, LiveMessage.role == LiveRole.USER)
        .order_by(LiveMessage.seq.desc()).limit(limit))).all()


async def newest_talk(db: AsyncSession, context_id: uuid.UUID, limit: int) -> Sequence[LiveMessage]:
    """The context's most recent `limit` messages other than system prompts, newest first."""
    return (await db.scalars(
        select(LiveMessage).where(LiveMessage.context_id == context_id, LiveMessage.role != LiveRole.SYSTEM)
        .order_by(LiveMessage.seq.desc()).limit(limit))).all()


async def newest_talk_on_process(db: AsyncSession, user_id: uuid.UUID, process_id: uuid.UUID,
                                 limit: int) -> Sequence[LiveMessage]:
    """The most recent `limit` messages (system prompts left out) of the user's own sessions on a process,
    newest first."""
    return (await db.scalars(
        select(LiveMessage).join(LiveContext, LiveContext.id == LiveMessage.context_id)
        .where(LiveContext.user_id == user_id, LiveContext.process_id == process_id,
               LiveMessage.role != LiveRole.SYSTEM)
        .order_by(LiveMessage.created_at.desc(), LiveMessage.seq.desc()).limit(limit))).all()


# ---- what a turn reads around the session -------------------------------------------------------------------

async def checklist(db: AsyncSession, process_id: uuid.UUID) -> Process | None:
    """The process with its steps and their substeps, re-read (fresh completion states)."""
    return await db.scalar(
        select(Process).where(Process.id == process_id).execution_options(populate_existing=True)
        .options(selectinload(Process.steps).selectinload(Step.sub_steps)))


async def events_of_process(db: AsyncSession, visible: Select[Event], process_id: uuid.UUID,
                            limit: int) -> Sequence[Event]:
    """Up to `limit` of the events `visible` selects that are linked to the process, latest start first."""
    return (await db.scalars(visible.where(Event.process_id == process_id)
                             .order_by(Event.start_time.desc(), Event.id.desc()).limit(limit))).all()


async def participant_names(db: AsyncSession, event_id: uuid.UUID, limit: int) -> list[tuple[str, str]]:
    """(name, handle) of up to `limit` of the event's participants who have not declined, by name."""
    rows = await db.execute(
        select(User.name, User.handle).join(EventParticipant, EventParticipant.user_id == User.id)
        .where(EventParticipant.event_id == event_id, EventParticipant.status != ParticipantStatus.DECLINED)
        .order_by(User.name).limit(limit))
    return [(name, handle) for name, handle in rows]


async def author_names(db: AsyncSession, user_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, tuple[str, str]]:
    """(name, handle) per user id."""
    if not user_ids:
        return {}
    rows = await db.execute(select(User.id, User.name, User.handle).where(User.id.in_(user_ids)))
    return {uid: (name, handle) for uid, name, handle in rows}

