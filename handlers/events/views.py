"""How events look on the wire, built in batches: one query per related table for a whole page of events."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers import access
from handlers.accounts.users import UserBrief, UserOut, brief, user_out
from handlers.context import Context
from handlers.events.tags import TopicOut, topic_out
from handlers.events.times import derive
from handlers.links import ServedLink
from handlers.schema import UTC, Out
from persistence.enums import EventStatus, ParticipantStatus
from persistence.models import Event, EventParticipant, EventTopic, StatusLog, Topic, User

# Keeps IN lists well under every driver's bind-parameter limit.
CHUNK = 1000
DETAIL_STATUS_LOGS = 50
MAX_RELATED = 50
AVATARS = 5


class ParticipantOut(Out):
    event_id: uuid.UUID
    user_id: uuid.UUID
    role: str
    status: ParticipantStatus
    joined_at: UTC
    user: UserBrief


class EventOut(Out):
    id: uuid.UUID
    title: str
    description: str | None
    start_time: UTC
    end_time: UTC
    date: str
    time: str
    duration: str
    status: EventStatus
    complexity: int | None
    color: str | None
    location: str | None
    event_metadata: dict[str, Any]
    created_by_id: uuid.UUID | None
    process_id: uuid.UUID | None
    recording_url: ServedLink
    created_at: UTC
    updated_at: UTC | None
    topics: list[TopicOut]
    participants: list[ParticipantOut]


class EventListItem(Out):
    id: uuid.UUID
    title: str
    start_time: UTC
    end_time: UTC
    date: str
    time: str
    duration: str
    color: str | None
    status: EventStatus
    process_id: uuid.UUID | None
    participant_count: int
    topics: list[str]


class ParticipantsGroup(Out):
    name: str
    count: int
    avatars: list[UserBrief]


class RelatedEvent(Out):
    id: uuid.UUID
    title: str
    start_time: UTC
    date: str
    color: str | None


class StatusLogOut(Out):
    id: uuid.UUID
    previous_status: EventStatus | None
    new_status: EventStatus
    event_id: uuid.UUID
    user_id: uuid.UUID | None
    user: UserOut | None
    created_at: UTC
    updated_at: UTC | None


class EventDetail(EventOut):
    tags: list[str]
    participants_group: ParticipantsGroup
    related_events: list[RelatedEvent]
    status_logs: list[StatusLogOut]


def _chunks(ids: Sequence[uuid.UUID]) -> Iterator[Sequence[uuid.UUID]]:
    for i in range(0, len(ids), CHUNK):
        yield ids[i:i + CHUNK]


def participant_out(p: EventParticipant, user: User) -> ParticipantOut:
    return ParticipantOut(event_id=p.event_id, user_id=p.user_id, role=p.role or "participant", status=p.status,
                          joined_at=p.joined_at, user=brief(user))


async def participants_by_event(db: AsyncSession, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[ParticipantOut]]:
    out: dict[uuid.UUID, list[ParticipantOut]] = {i: [] for i in ids}
    rows: list[Row[uuid.UUID, uuid.UUID, str, ParticipantStatus, datetime]] = []
    for chunk in _chunks(ids):
        rows.extend(await db.execute(
            select(EventParticipant.event_id, EventParticipant.user_id, EventParticipant.role,
                   EventParticipant.status, EventParticipant.joined_at)
            .where(EventParticipant.event_id.in_(chunk))
            .order_by(EventParticipant.joined_at, EventParticipant.user_id)
        ))
    # The same few people take part in many events: load each once.
    users = await user_briefs(db, {r.user_id for r in rows})
    for event_id, user_id, role, status, joined_at in rows:
        # Rows straight from the database: constructed without re-validation (a calendar month builds thousands).
        out[event_id].append(ParticipantOut.model_construct(
            event_id=event_id, user_id=user_id, role=role or "participant", status=status, joined_at=joined_at,
            user=users[user_id],
        ))
    return out


async def user_briefs(db: AsyncSession, ids: set[uuid.UUID]) -> dict[uuid.UUID, UserBrief]:
    out: dict[uuid.UUID, UserBrief] = {}
    wanted = list(ids)
    for chunk in _chunks(wanted):
        for user_id, name, handle, image in await db.execute(
                select(User.id, User.name, User.handle, User.profile_image).where(User.id.in_(chunk))):
            out[user_id] = UserBrief(id=user_id, name=name, handle=handle, profile_image=image)
    return out


async def topics_by_event(db: AsyncSession, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[TopicOut]]:
    out: dict[uuid.UUID, list[TopicOut]] = {i: [] for i in ids}
    shapes: dict[uuid.UUID, TopicOut] = {}
    for chunk in _chunks(ids):
        rows = await db.execute(
            select(EventTopic.event_id, Topic).join(Topic, Topic.id == EventTopic.topic_id)
            .where(EventTopic.event_id.in_(chunk)).order_by(Topic.name)
        )
        for event_id, topic in rows:
            shape = shapes.get(topic.id)
            if shape is None:
                shape = shapes[topic.id] = topic_out(topic)
            out[event_id].append(shape)
    return out


async def participant_counts(db: AsyncSession, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, int]:
    """Participants who have not declined, per event."""
    out: dict[uuid.UUID, int] = dict.fromkeys(ids, 0)
    for chunk in _chunks(ids):
        rows = await db.execute(
            select(EventParticipant.event_id, func.count())
            .where(EventParticipant.event_id.in_(chunk), EventParticipant.status != ParticipantStatus.DECLINED)
            .group_by(EventParticipant.event_id)
        )
        for event_id, count in rows:
            out[event_id] = int(count)
    return out


def _creator_first(event: Event, participants: list[ParticipantOut]) -> list[ParticipantOut]:
    return sorted(participants, key=lambda p: p.user_id != event.created_by_id)


def _event_out(event: Event, topics: list[TopicOut], participants: list[ParticipantOut]) -> EventOut:
    legacy = derive(event.start_time, event.end_time)
    return EventOut.model_construct(
        id=event.id, title=event.title, description=event.description, start_time=event.start_time,
        end_time=event.end_time, date=legacy.date, time=legacy.time, duration=legacy.duration, status=event.status,
        complexity=event.complexity, color=event.color, location=event.location,
        event_metadata=dict(event.event_metadata or {}), created_by_id=event.created_by_id,
        process_id=event.process_id, recording_url=event.recording_url, created_at=event.created_at,
        updated_at=event.updated_at, topics=topics, participants=_creator_first(event, participants),
    )


async def event_outs(db: AsyncSession, events: Sequence[Event]) -> list[EventOut]:
    ids = [e.id for e in events]
    topics = await topics_by_event(db, ids)
    participants = await participants_by_event(db, ids)
    return [_event_out(e, topics[e.id], participants[e.id]) for e in events]


async def list_items(db: AsyncSession, events: Sequence[Event]) -> list[EventListItem]:
    ids = [e.id for e in events]
    counts = await participant_counts(db, ids)
    names: dict[uuid.UUID, list[str]] = {i: [] for i in ids}
    for chunk in _chunks(ids):
        rows = await db.execute(
            select(EventTopic.event_id, Topic.name).join(Topic, Topic.id == EventTopic.topic_id)
            .where(EventTopic.event_id.in_(chunk)).order_by(Topic.name)
        )
        for event_id, name in rows:
            names[event_id].append(name)
    items = []
    for e in events:
        legacy = derive(e.start_time, e.end_time)
        items.append(EventListItem(
            id=e.id, title=e.title, start_time=e.start_time, end_time=e.end_time, date=legacy.date,
            time=legacy.time, duration=legacy.duration, color=e.color, status=e.status, process_id=e.process_id,
            participant_count=counts[e.id], topics=names[e.id],
        ))
    return items


def _related_ids(event: Event) -> list[uuid.UUID]:
    raw = (event.event_metadata or {}).get("related_events") or []
    ids: list[uuid.UUID] = []
    for item in raw if isinstance(raw, list) else []:
        value = item.get("id") if isinstance(item, dict) else item
        try:
            ident = uuid.UUID(str(value))
        except ValueError:
            continue
        if ident != event.id and ident not in ids:
            ids.append(ident)
    return ids[:MAX_RELATED]


async def related_events(ctx: Context, event: Event) -> list[RelatedEvent]:
    """The events named in `event_metadata.related_events`, in that order, limited to those the caller may see."""
    ids = _related_ids(event)
    if not ids:
        return []
    rows = await ctx.db.execute(
        select(Event.id, Event.title, Event.start_time, Event.color)
        .where(Event.id.in_(ids), access.member_clause(ctx.user_id))
    )
    found = {r.id: r for r in rows}
    return [RelatedEvent(id=r.id, title=r.title, start_time=r.start_time, date=derive(r.start_time, r.start_time).date,
                         color=r.color) for r in (found[i] for i in ids if i in found)]


def status_log_out(log: StatusLog, user: User | None, viewer: User | None) -> StatusLogOut:
    """`viewer=None` for messages broadcast to a room: then nobody's email is included."""
    shown = None
    if user is not None:
        shown = user_out(user, viewer=viewer) if viewer is not None else user_out(user).model_copy(
            update={"email": None})
    return StatusLogOut(id=log.id, previous_status=log.previous_status, new_status=log.new_status,
                        event_id=log.event_id, user_id=log.user_id, user=shown, created_at=log.created_at,
                        updated_at=log.updated_at)


async def status_logs(ctx: Context, event_id: uuid.UUID, offset: int, limit: int) -> list[StatusLogOut]:
    rows = await ctx.db.execute(
        select(StatusLog, User).outerjoin(User, User.id == StatusLog.user_id).where(StatusLog.event_id == event_id)
        .order_by(StatusLog.created_at.desc(), StatusLog.id.desc()).offset(offset).limit(limit)
    )
    return [status_log_out(log, user, ctx.user) for log, user in rows]


def active(participants: Iterable[ParticipantOut]) -> list[ParticipantOut]:
    return [p for p in participants if p.status != ParticipantStatus.DECLINED]


async def event_detail(ctx: Context, event: Event) -> EventDetail:
    base = (await event_outs(ctx.db, [event]))[0]
    going = active(base.participants)
    return EventDetail(
        **dict(base),
        tags=[t.name for t in base.topics],
        participants_group=ParticipantsGroup(name="Participants", count=len(going),
                                             avatars=[p.user for p in going[:AVATARS]]),
        related_events=await related_events(ctx, event),
        status_logs=await status_logs(ctx, event.id, 0, DETAIL_STATUS_LOGS),
    )
