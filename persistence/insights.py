"""What the progress figures and the profile timeline read: a caller's events, processes, steps and tags."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, Select, case, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from persistence.models import Event, EventTopic, Process, Step, Topic


def tagged(tag: str) -> ColumnElement[bool]:
    """SQL condition: the event carries the topic named `tag` (any case)."""
    return exists().where(EventTopic.event_id == Event.id, EventTopic.topic_id == Topic.id,
                          func.lower(Topic.name) == tag.lower())


async def tags_of(db: AsyncSession, event_ids: Collection[uuid.UUID]) -> list[tuple[uuid.UUID, str, str | None]]:
    """(event id, topic name, topic colour) of every topic on these events, by topic name."""
    if not event_ids:
        return []
    rows = await db.execute(
        select(EventTopic.event_id, Topic.name, Topic.color).join(Topic, Topic.id == EventTopic.topic_id)
        .where(EventTopic.event_id.in_(event_ids)).order_by(Topic.name))
    return [(event_id, name, color) for event_id, name, color in rows]


# ---- events (`visible` is the caller's events, from the access rule) ----------------------------------------

async def events_starting(db: AsyncSession, visible: Select[Event], *, start: datetime, end: datetime,
                          tag: str | None) -> Sequence[Event]:
    """The events `visible` selects that start in [start, end) (with `tag`, only those tagged so), by start."""
    if tag:
        visible = visible.where(tagged(tag))
    return (await db.scalars(visible.where(Event.start_time >= start, Event.start_time < end)
                             .order_by(Event.start_time, Event.id))).all()


async def events_of_processes(db: AsyncSession, visible: Select[Event],
                              process_ids: Collection[uuid.UUID]) -> Sequence[Event]:
    return (await db.scalars(visible.where(Event.process_id.in_(process_ids)).order_by(Event.start_time))).all()


async def newest_events(db: AsyncSession, visible: Select[Event], limit: int) -> Sequence[Event]:
    return (await db.scalars(visible.order_by(Event.start_time.desc(), Event.id.desc()).limit(limit))).all()


async def event_starts(db: AsyncSession, visible: Select[Event]) -> Sequence[datetime]:
    """The start time of every event `visible` selects."""
    return (await db.scalars(visible.with_only_columns(Event.start_time))).all()


# ---- processes ----------------------------------------------------------------------------------------------

async def processes_with_work(db: AsyncSession, visible: ColumnElement[bool], *, tag: str | None,
                              member: ColumnElement[bool], limit: int) -> Sequence[Process]:
    """Live (non-template) processes `visible` lets through, with their steps and substeps, the most recently
    touched first. With `tag`, only processes linked to an event that `member` lets through and carries it."""
    stmt = select(Process).where(visible, Process.is_template.is_(False))
    if tag:
        stmt = stmt.where(exists().where(Event.process_id == Process.id, member, tagged(tag)))
    return (await db.scalars(
        stmt.options(selectinload(Process.steps).selectinload(Step.sub_steps))
        .order_by(func.coalesce(Process.updated_at, Process.created_at).desc(), Process.id).limit(limit)
    )).all()


async def newest_processes_of(db: AsyncSession, user_id: uuid.UUID, limit: int) -> Sequence[Process]:
    """The processes the user created (templates included), newest first."""
    return (await db.scalars(select(Process).where(Process.created_by_id == user_id)
                             .order_by(Process.created_at.desc(), Process.id.desc()).limit(limit))).all()


async def step_counts(db: AsyncSession, process_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, tuple[int, int]]:
    """(steps, completed steps) per process that has any steps."""
    if not process_ids:
        return {}
    done = func.sum(case((Step.completed.is_(True), 1), else_=0))
    rows = await db.execute(select(Step.process_id, func.count(), done).where(Step.process_id.in_(process_ids))
                            .group_by(Step.process_id))
    return {pid: (int(total), int(completed or 0)) for pid, total, completed in rows}
