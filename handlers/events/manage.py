"""Events: create, read, update and delete one event, list the caller's events, and their status history."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from pydantic import Field, field_validator
from sqlalchemy import ColumnElement, Select, and_, or_, true

from channels import topics as channel_topics
from handlers import access, catalogue
from handlers.context import Context, Message, Outcome, Removal
from handlers.events import reminders
from handlers.events.times import DateInput, EventTime, combine, invalid, resolve_change, resolve_new
from handlers.events.views import (
    EventDetail,
    EventListItem,
    EventOut,
    StatusLogOut,
    active,
    event_detail,
    list_page,
    read_event_detail,
    status_log_out,
    status_logs,
)
from handlers.links import OptionalLink
from handlers.live import contexts as live_contexts
from handlers.media import records as media
from handlers.media.records import FileCleanup
from handlers.notifications.send import notify
from handlers.processes import instances
from handlers.schema import In, PageQuery, metadata_field
from persistence import events
from persistence.enums import EventStatus, NotificationType, ParticipantStatus
from persistence.errors import Forbidden
from persistence.models import Event, EventParticipant, EventTopic, StatusLog, Topic, User

MAX_TOPICS = 50
MAX_INVITEES = 500


def event_link(event_id: uuid.UUID) -> str:
    return f"/room?id={event_id}"


class EventFields(In):
    """Fields shared by create and update; every one may arrive snake_case or camelCase."""

    description: str | None = Field(default=None, max_length=20_000)
    """what the event is about"""
    start_time: EventTime | None = None
    """when it starts (ISO 8601 with an offset; stored in UTC)"""
    end_time: EventTime | None = None
    """when it ends (ISO 8601 with an offset); required on create unless `duration` is given"""
    date: str | None = Field(default=None, max_length=40)
    """legacy: the start day, YYYY-MM-DD (UTC), used with `time` when `startTime` is absent"""
    time: str | None = Field(default=None, max_length=20)
    """legacy: the start time, HH:MM (UTC), used with `date`"""
    duration: str | int | None = Field(default=None)
    """legacy: length such as `60min`, `1h` or minutes as a number; sets the end when `endTime` is absent"""
    complexity: int | None = Field(default=None, ge=1, le=5)
    """1 (simple) to 5 (complex)"""
    color: str | None = Field(default=None, max_length=32)
    """a display colour, e.g. `#3b82f6`"""
    location: str | None = Field(default=None, max_length=300)
    """where it takes place"""
    recording_url: OptionalLink = None
    """an http(s) or /uploads/ link to a recording of the event"""
    process_id: uuid.UUID | None = None
    """an existing process (checklist) the event works through"""
    topics: list[uuid.UUID] | None = Field(default=None, max_length=MAX_TOPICS)
    """ids of topics to tag the event with (replaces the list)"""
    metadata: dict[str, Any] | None = metadata_field("event")
    """free-form JSON kept as sent (also accepted as `eventMetadata`)"""


class EventCreate(EventFields):
    title: str = Field(min_length=1, max_length=300)
    """the event's title"""
    status: EventStatus = EventStatus.PENDING
    """Pending, Planning, Execution, Review, Administrative or Done"""
    template_process_id: uuid.UUID | None = None
    """a template (mine or from the library, see GET /market/processes) whose steps are copied into a new checklist
    for this event"""
    participant_ids: list[uuid.UUID] = Field(default_factory=list, max_length=MAX_INVITEES)
    """users to invite; each becomes a participant with status `invited`"""


class EventUpdate(EventFields):
    title: str | None = Field(default=None, min_length=1, max_length=300)
    """the event's title"""
    status: EventStatus | None = None
    """Pending, Planning, Execution, Review, Administrative or Done (participants may change it too)"""


class _Filters(PageQuery):
    @field_validator("*", mode="before")
    @classmethod
    def _blank_is_absent(cls, value: Any) -> Any:
        return None if value == "" else value


class MyEventsQuery(_Filters):
    status: EventStatus | None = None
    """only events with this status"""
    start_date: DateInput | None = None
    """only events running on or after this day (YYYY-MM-DD, UTC)"""
    end_date: DateInput | None = None
    """only events running on or before this day (YYYY-MM-DD, UTC)"""


class EventQuery(MyEventsQuery):
    template_process_id: uuid.UUID | None = None
    """only events whose checklist came from this template"""
    process_id: uuid.UUID | None = None
    """only events working through this process"""
    topic_id: uuid.UUID | None = None
    """only events tagged with this topic"""


# Changes to these fields are announced to the other participants (event_update notifications).
NOTIFIED_FIELDS = {"title": "title", "start_time": "time", "end_time": "time", "location": "location",
                   "status": "status"}


async def _existing_ids(ctx: Context, model: type[User] | type[Topic], ids: list[uuid.UUID],
                        field: str) -> list[uuid.UUID]:
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return []
    found = await events.existing_ids(ctx.db, model, wanted)
    missing = [str(i) for i in wanted if i not in found]
    if missing:
        raise invalid(field, f"unknown id(s): {', '.join(missing[:10])}")
    return wanted


def _members(detail: EventDetail) -> list[uuid.UUID]:
    ids = [p.user_id for p in active(detail.participants)]
    return list(dict.fromkeys([detail.created_by_id, *ids] if detail.created_by_id else ids))


def _room_view(detail: EventDetail) -> EventOut:
    """The event as broadcast to its room: without status logs, whose user carries the caller's own email."""
    return EventOut(**dict(detail))


def log_status(ctx: Context, event: Event, previous: EventStatus | None) -> StatusLog:
    row = StatusLog(previous_status=previous, new_status=event.status, event_id=event.id, user_id=ctx.user_id,
                    created_at=ctx.now)
    ctx.db.add(row)
    return row


async def create_event(ctx: Context, body: EventCreate) -> Outcome[EventDetail]:
    start, end = resolve_new(body.start_time, body.end_time, body.date, body.time, body.duration)
    invitees = [i for i in await _existing_ids(ctx, User, body.participant_ids, "participantIds") if i != ctx.user_id]
    topic_ids = await _existing_ids(ctx, Topic, body.topics or [], "topics")
    metadata = dict(body.metadata or {})
    process_id = body.process_id
    if process_id is not None:
        # Linking shares the process with the event's members: its creator's call (as in /plan/save).
        await access.process_for_owner(ctx, process_id)
    elif body.template_process_id is not None:
        process_id = (await instances.instantiate(ctx, body.template_process_id)).id
    if body.template_process_id is not None:
        metadata["template_process_id"] = str(body.template_process_id)
    event = Event(
        title=body.title, description=body.description, start_time=start, end_time=end, status=body.status,
        complexity=body.complexity, color=body.color, location=body.location, recording_url=body.recording_url,
        event_metadata=metadata, created_by_id=ctx.user_id, process_id=process_id, created_at=ctx.now,
    )
    ctx.db.add(event)
    await ctx.db.flush()
    ctx.db.add(EventParticipant(event_id=event.id, user_id=ctx.user_id, role="organizer",
                                status=ParticipantStatus.CONFIRMED, joined_at=ctx.now))
    ctx.db.add_all([EventParticipant(event_id=event.id, user_id=i, role="participant",
                                     status=ParticipantStatus.INVITED, joined_at=ctx.now) for i in invitees])
    ctx.db.add_all([EventTopic(event_id=event.id, topic_id=t) for t in topic_ids])
    log_status(ctx, event, None)
    await ctx.db.flush()
    await reminders.sync_event(ctx.db, event, ctx.now)
    out = await event_detail(ctx, event)
    messages = [catalogue.EVENT_CREATED.message(channel_topics.for_event(event.id), _room_view(out))]
    messages += await notify(ctx, invitees, NotificationType.EVENT_INVITE, "Event invitation",
                             f"{ctx.user.name} invited you to {event.title}", link=event_link(event.id),
                             reference_id=event.id, reference_type="event", metadata={"eventId": str(event.id)})
    return Outcome(out, publish=messages)


async def get_event(ctx: Context, event_id: uuid.UUID) -> EventDetail:
    return await read_event_detail(ctx, event_id)


def _apply_simple(event: Event, changes: dict[str, Any]) -> None:
    for key in ("description", "complexity", "color", "location", "recording_url"):
        if key in changes:
            setattr(event, key, changes[key])
    if "title" in changes:
        if changes["title"] is None:
            raise invalid("title", "cannot be null")
        event.title = changes["title"]
    if "metadata" in changes:
        event.event_metadata = dict(changes["metadata"] or {})


async def _set_topics(ctx: Context, event: Event, wanted: list[uuid.UUID]) -> None:
    topic_ids = await _existing_ids(ctx, Topic, wanted, "topics")
    await events.clear_topics(ctx.db, event.id)
    ctx.db.add_all([EventTopic(event_id=event.id, topic_id=t) for t in topic_ids])


async def update_event(ctx: Context, event_id: uuid.UUID, body: EventUpdate) -> Outcome[EventDetail]:
    """Members may change only the status; anything else needs an organizer."""
    changes = body.given()
    event = await access.event_for_member(ctx, event_id, for_update=True)
    if set(changes) - {"status"} and not await access.is_organizer(ctx, event):
        raise Forbidden("only the event's organizers may edit it; members may change only its status")
    if "status" in changes and changes["status"] is None:
        raise invalid("status", "cannot be null")
    before = {k: getattr(event, k) for k in ("title", "start_time", "end_time", "location", "status")}
    previous_status = event.status
    touched: set[str] = set()
    if changes.keys() & {"start_time", "end_time", "date", "time", "duration"}:
        event.start_time, event.end_time = resolve_change(event.start_time, event.end_time, changes)
        touched |= {"start_time", "end_time"}
    if "process_id" in changes:
        if changes["process_id"] is not None and changes["process_id"] != event.process_id:
            await access.process_for_owner(ctx, changes["process_id"])  # sharing it: its creator's call
        event.process_id = changes["process_id"]
        touched.add("process_id")
    if "topics" in changes:
        await _set_topics(ctx, event, changes["topics"] or [])
        touched.add("topics")
    _apply_simple(event, changes)
    touched |= changes.keys() & {"title", "description", "complexity", "color", "location", "recording_url",
                                 "metadata"}
    status_log = None
    if changes.get("status") is not None and changes["status"] != previous_status:
        event.status = changes["status"]
        status_log = log_status(ctx, event, previous_status)
        touched.add("status")  # the event as members hold it changed too: docs/realtime.md §9 promises both
    await ctx.db.flush()
    if event.start_time != before["start_time"]:
        await reminders.sync_event(ctx.db, event, ctx.now)  # the reminders move with the event
    out = await event_detail(ctx, event)
    messages: list[Message] = []
    topic = channel_topics.for_event(event.id)
    if status_log is not None:
        messages.append(catalogue.STATUS_CHANGED.message(topic, status_log_out(status_log, ctx.user, None)))
    if touched:
        messages.append(catalogue.EVENT_UPDATED.message(topic, _room_view(out)))
    noticed = sorted({label for key, label in NOTIFIED_FIELDS.items() if getattr(event, key) != before[key]})
    if noticed:
        recipients = _members(out)
        what = f"status to {event.status}" if noticed == ["status"] else ", ".join(noticed)
        messages += await notify(ctx, recipients, NotificationType.EVENT_UPDATE, "Event updated",
                                 f"{ctx.user.name} changed the {what} of {event.title}", link=event_link(event.id),
                                 reference_id=event.id, reference_type="event",
                                 metadata={"eventId": str(event.id), "changed": noticed})
    return Outcome(out, publish=messages)


async def delete_event(ctx: Context, event_id: uuid.UUID) -> Outcome[FileCleanup[None]]:
    """The event, and its own process instance when nothing else uses it. A template (and so its steps) is
    never touched. The files of the media that go with it are removed by the caller after commit."""
    event = await access.event_for_organizer(ctx, event_id, for_update=True)
    files = await media.stored_files_of_event(ctx, event_id)
    process_id, owners = event.process_id, {ctx.user_id, event.created_by_id}
    # Its members leave the live sessions linked to it (the sessions stay, unlinked, with their owners).
    members = await events.active_member_ids(ctx.db, event_id)
    if event.created_by_id is not None:
        members.append(event.created_by_id)
    sessions = await live_contexts.revoke_sessions_of_event(ctx, event_id, members, "deleted")
    await events.delete_event(ctx.db, event)
    if process_id is not None:
        process, shared = await events.process_in_use(ctx.db, process_id)
        if process is not None and not process.is_template and not shared and process.created_by_id in owners:
            await events.delete_process(ctx.db, process)
    topic = channel_topics.for_event(event_id)
    return Outcome(FileCleanup(None, files), publish=[catalogue.EVENT_DELETED.message(topic, {"id": str(event_id)})],
                   remove=[Removal(topic, None, "deleted"), *sessions])


def _in_range(start: datetime | ColumnElement[datetime] | None,
              end: datetime | ColumnElement[datetime] | None) -> list[ColumnElement[bool]]:
    """Events overlapping [start, end): a zero-length event at `start` counts. The bounds may be a statement's
    own parameters (the compact calendar's statement on the driver)."""
    out: list[ColumnElement[bool]] = []
    if end is not None:
        out.append(Event.start_time < end)
    if start is not None:
        out.append(or_(Event.end_time > start, Event.start_time >= start))
    return out


def overlapping(start: datetime | ColumnElement[datetime] | None,
                end: datetime | ColumnElement[datetime] | None) -> ColumnElement[bool]:
    clauses = _in_range(start, end)
    return and_(*clauses) if clauses else true()


def _dates_clause(query: MyEventsQuery) -> ColumnElement[bool]:
    lo = combine(query.start_date, datetime.min.time()) if query.start_date else None
    hi = combine(query.end_date, datetime.min.time()) + timedelta(days=1) if query.end_date else None
    return overlapping(lo, hi)


def _filtered(ctx: Context, query: MyEventsQuery) -> Select[Event]:
    stmt = access.visible_events(ctx.user_id).where(_dates_clause(query))
    if query.status is not None:
        stmt = stmt.where(Event.status == query.status)
    return stmt


async def _page(ctx: Context, stmt: Select[Event], query: PageQuery) -> list[EventListItem]:
    offset, limit = query.window(ctx.limits.max_page_size)
    return await list_page(ctx.db, stmt.order_by(Event.start_time, Event.id).offset(offset).limit(limit))


async def list_events(ctx: Context, query: EventQuery) -> list[EventListItem]:
    stmt = _filtered(ctx, query)
    if query.process_id is not None:
        stmt = stmt.where(Event.process_id == query.process_id)
    if query.template_process_id is not None:
        instances_of = events.template_instance_ids(query.template_process_id)
        legacy = Event.event_metadata["template_process_id"].as_string() == str(query.template_process_id)
        stmt = stmt.where(or_(Event.process_id.in_(instances_of), legacy))
    if query.topic_id is not None:
        stmt = stmt.where(events.tagged_with(query.topic_id))
    return await _page(ctx, stmt, query)


async def my_events(ctx: Context, query: MyEventsQuery) -> list[EventListItem]:
    return await _page(ctx, _filtered(ctx, query), query)


async def list_status_logs(ctx: Context, event_id: uuid.UUID, query: PageQuery) -> list[StatusLogOut]:
    await access.event_for_member(ctx, event_id)
    offset, limit = query.window(ctx.limits.max_page_size)
    return await status_logs(ctx, event_id, offset, limit)

