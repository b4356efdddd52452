"""How events look on the wire, built in batches: one query per related table for a whole page of events.

Every event shape lives here except `CalendarCell` (calendar.py, the compact calendar view), `TimelineEvent`
(insights/timeline.py) and `ConnectedEvent` (processes/shapes.py), which belong to their screens; `PlanEventOut`
(planning/week.py) is a proposal, not an event. docs/api.md ("Output shapes") lists them all with the reason
each variant exists: the response JSON of every route is what the original frontend (or the original API) reads."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession

from handlers import access
from handlers.accounts.users import UserBrief, UserOut, brief, user_out
from handlers.context import Context
from handlers.events.tags import TopicOut, topic_out
from handlers.events.times import derive
from handlers.links import ServedLink
from handlers.schema import UTC, Out
from persistence import event_reads, events
from persistence.enums import EventStatus, ParticipantStatus
from persistence.errors import NotFound
from persistence.models import Event, EventParticipant, StatusLog, User

DETAIL_STATUS_LOGS = 50
MAX_RELATED = 50
AVATARS = 5


class ParticipantOut(Out):
    """A participant as the original frontend's `Participant` type reads it (`/events/{id}/participants`)."""

    event_id: uuid.UUID
    user_id: uuid.UUID
    role: str
    status: ParticipantStatus
    joined_at: UTC
    user: UserBrief


class EventOut(Out):
    """The event: the canonical shape (the original frontend's calendar, every `event.*` message)."""

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
    """The original frontend's event lists (`/events`, `/events/me`): legacy strings, a count and topic names."""

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
    """`EventDetail.participantsGroup`: the avatar row of the original frontend's event page."""

    name: str
    count: int
    avatars: list[UserBrief]


class RelatedEvent(Out):
    """`EventDetail.relatedEvents` as the original frontend reads it: a link to another event, not the event."""

    id: uuid.UUID
    title: str
    start_time: UTC
    date: str
    color: str | None


class StatusLogOut(Out):
    """A status change, the original's `StatusLog` (`/events/{id}/status-logs`, `status.changed`)."""

    id: uuid.UUID
    previous_status: EventStatus | None
    new_status: EventStatus
    event_id: uuid.UUID
    user_id: uuid.UUID | None
    user: UserOut | None
    created_at: UTC
    updated_at: UTC | None


class EventDetail(EventOut):
    """The original frontend's `/events/{id}` reads tags, participantsGroup, relatedEvents and statusLogs too."""

    tags: list[str]
    participants_group: ParticipantsGroup
    related_events: list[RelatedEvent]
    status_logs: list[StatusLogOut]



class ContextEvent(Out):
    """An event without people, topics or legacy strings: `relatedEvents` of the original `/live/process-context`."""

    id: uuid.UUID
    title: str
    description: str | None
    start_time: UTC
    end_time: UTC
    status: EventStatus
    color: str | None


class EventHit(ContextEvent):
    """A hit of the original `/search/events`: `ContextEvent` plus the event's process and creator."""

    process_id: uuid.UUID | None
    created_by_id: uuid.UUID | None


def participant_out(p: EventParticipant, user: User) -> ParticipantOut:
    return ParticipantOut(event_id=p.event_id, user_id=p.user_id, role=p.role or "participant", status=p.status,
                          joined_at=p.joined_at, user=brief(user))


async def participants_by_event(db: AsyncSession, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[ParticipantOut]]:
    out: dict[uuid.UUID, list[ParticipantOut]] = {i: [] for i in ids}
    rows = await events.participant_rows(db, ids)
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
    return {user_id: UserBrief(id=user_id, name=name, handle=handle, profile_image=image)
            for user_id, name, handle, image in await events.user_brief_rows(db, ids)}


async def topics_by_event(db: AsyncSession, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[TopicOut]]:
    out: dict[uuid.UUID, list[TopicOut]] = {i: [] for i in ids}
    shapes: dict[uuid.UUID, TopicOut] = {}
    for event_id, topic in await events.topics_of_events(db, ids):
        shape = shapes.get(topic.id)
        if shape is None:
            shape = shapes[topic.id] = topic_out(topic)
        out[event_id].append(shape)
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


async def list_page(db: AsyncSession, stmt: Select[Event]) -> list[EventListItem]:
    """A page of `stmt`'s events as list items, in two statements of plain rows: the page with each event's
    count of participants who have not declined, then the page's topic names."""
    rows = await events.list_rows(db, stmt)
    names = await events.topic_names(db, [r[0] for r in rows])
    items = []
    for event_id, title, start, end, color, status, process_id, count in rows:
        legacy = derive(start, end)
        items.append(EventListItem.model_construct(
            id=event_id, title=title, start_time=start, end_time=end, date=legacy.date, time=legacy.time,
            duration=legacy.duration, color=color, status=status, process_id=process_id,
            participant_count=int(count), topics=names[event_id],
        ))
    return items


def _related_ids(event: Event) -> list[uuid.UUID]:
    return _related_ids_of(event.id, event.event_metadata)


def _related_ids_of(event_id: uuid.UUID, metadata: dict[str, Any] | None) -> list[uuid.UUID]:
    raw = (metadata or {}).get("related_events") or []
    ids: list[uuid.UUID] = []
    for item in raw if isinstance(raw, list) else []:
        value = item.get("id") if isinstance(item, dict) else item
        try:
            ident = uuid.UUID(str(value))
        except ValueError:
            continue
        if ident != event_id and ident not in ids:
            ids.append(ident)
    return ids[:MAX_RELATED]


async def related_events(ctx: Context, event: Event) -> list[RelatedEvent]:
    """The events named in `event_metadata.related_events`, in that order, limited to those the caller may see."""
    ids = _related_ids(event)
    if not ids:
        return []
    found = await events.related_rows(ctx.db, ids, access.member_clause(ctx.user_id))
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
    return [status_log_out(log, user, ctx.user)
            for log, user in await events.status_log_page(ctx.db, event_id, offset, limit)]


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


# --- one event for a reader: rows, not ORM objects -----------------------------------------------------------

# Built once: the member rule compiled into the event's one statement on PostgreSQL (persistence.event_reads).
_DETAIL = event_reads.detail_statement(access.member_clause(event_reads.DETAIL_VIEWER), DETAIL_STATUS_LOGS)


def _log_user(row: Sequence[Any], viewer: User) -> UserOut | None:
    (uid, email, name, handle, image, bio, meta, is_guest, guest_role, is_admin, created_at, updated_at) = row[7:]
    if uid is None:
        return None
    show_email = viewer.id == uid or viewer.is_admin
    return UserOut.model_construct(
        id=uid, email=email if show_email else None, name=name, handle=handle, profile_image=image, bio=bio,
        user_metadata=dict(meta or {}), is_guest=is_guest, guest_role=guest_role, is_admin=is_admin,
        created_at=created_at, updated_at=updated_at)


async def read_event_detail(ctx: Context, event_id: uuid.UUID) -> EventDetail:
    """GET /events/{id}: the event, its topics, participants (with their users), status history and related events;
    on PostgreSQL in one statement of plain rows (two with related events). The access rule is part of the
    event's own statement: an event the caller may not see is not found, exactly as one that does not exist."""
    if event_reads.on_postgresql(ctx.db):
        found = await event_reads.detail_in_one(ctx.db, _DETAIL, event_id, ctx.user_id)
    else:
        found = await event_reads.detail_rows(ctx.db, event_id, access.member_clause(ctx.user_id),
                                               DETAIL_STATUS_LOGS)
    if found is None:
        raise NotFound("event", event_id)
    (eid, title, description, start_time, end_time, status, complexity, color, location, metadata, created_by_id,
     process_id, recording_url, created_at, updated_at) = found.event
    topics = [TopicOut.model_construct(id=r[0], name=r[1], category=r[2], color=r[3], created_at=r[4],
                                       updated_at=r[5])
              for r in found.topics]
    participants = [
        ParticipantOut.model_construct(
            event_id=event_id, user_id=r[0], role=r[1] or "participant", status=r[2], joined_at=r[3],
            user=UserBrief.model_construct(id=r[0], name=r[4], handle=r[5], profile_image=r[6]))
        for r in found.participants
    ]
    participants.sort(key=lambda p: p.user_id != created_by_id)  # the creator first
    logs = [
        StatusLogOut.model_construct(id=r[0], previous_status=r[1], new_status=r[2], event_id=event_id,
                                     user_id=r[3], user=_log_user(r, ctx.user), created_at=r[4], updated_at=r[5])
        for r in found.logs
    ]
    related: list[RelatedEvent] = []
    if ids := _related_ids_of(eid, metadata):
        rows = await events.related_rows(ctx.db, ids, access.member_clause(ctx.user_id))
        related = [RelatedEvent(id=r.id, title=r.title, start_time=r.start_time,
                                date=derive(r.start_time, r.start_time).date, color=r.color)
                   for r in (rows[i] for i in ids if i in rows)]
    going = active(participants)
    legacy = derive(start_time, end_time)
    return EventDetail.model_construct(
        id=eid, title=title, description=description, start_time=start_time, end_time=end_time,
        date=legacy.date, time=legacy.time, duration=legacy.duration, status=status, complexity=complexity,
        color=color, location=location, event_metadata=dict(metadata or {}),
        created_by_id=created_by_id, process_id=process_id, recording_url=recording_url,
        created_at=created_at, updated_at=updated_at, topics=topics, participants=participants,
        tags=[t.name for t in topics],
        participants_group=ParticipantsGroup.model_construct(name="Participants", count=len(going),
                                                             avatars=[p.user for p in going[:AVATARS]]),
        related_events=related, status_logs=logs,
    )
