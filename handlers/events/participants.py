"""Who takes part in an event: list, invite, change role or status, remove (or leave)."""

from __future__ import annotations

import uuid

from pydantic import Field
from sqlalchemy import select

from channels import topics
from handlers import access, catalogue
from handlers.context import Context, Outcome, Removal
from handlers.events import reminders
from handlers.events.manage import event_link
from handlers.events.views import ParticipantOut, participant_out
from handlers.live import contexts as live_contexts
from handlers.notifications.send import notify
from handlers.schema import In, PageQuery
from persistence.enums import NotificationType, ParticipantStatus
from persistence.errors import Conflict, Forbidden, NotFound
from persistence.models import Event, EventParticipant, User


class ParticipantCreate(In):
    user_id: uuid.UUID
    """the user to invite"""
    role: str = Field(default="participant", min_length=1, max_length=40)
    """their role in the event, e.g. `participant` or `organizer`"""
    status: ParticipantStatus = ParticipantStatus.INVITED
    """invited, confirmed, declined or attended"""


class ParticipantUpdate(In):
    role: str | None = Field(default=None, min_length=1, max_length=40)
    """their role in the event (organizers only)"""
    status: ParticipantStatus | None = None
    """invited, confirmed, declined or attended (a participant may set their own)"""


async def list_participants(ctx: Context, event_id: uuid.UUID, query: PageQuery) -> list[ParticipantOut]:
    event = await access.event_for_member(ctx, event_id)
    offset, limit = query.window(ctx.limits.max_page_size)
    rows = await ctx.db.execute(
        select(EventParticipant, User).join(User, User.id == EventParticipant.user_id)
        .where(EventParticipant.event_id == event.id)
        # The creator first, then in the order people joined.
        .order_by(EventParticipant.user_id != event.created_by_id, EventParticipant.joined_at,
                  EventParticipant.user_id)
        .offset(offset).limit(limit)
    )
    return [participant_out(p, u) for p, u in rows]


async def add_participant(ctx: Context, event_id: uuid.UUID, body: ParticipantCreate) -> Outcome[ParticipantOut]:
    event = await access.event_for_organizer(ctx, event_id, for_update=True)
    user = await ctx.db.get(User, body.user_id)
    if user is None:
        raise NotFound("user", body.user_id)
    if await ctx.db.get(EventParticipant, (event.id, user.id)) is not None:
        raise Conflict("that user already takes part in this event")
    row = EventParticipant(event_id=event.id, user_id=user.id, role=body.role, status=body.status,
                           joined_at=ctx.now)
    ctx.db.add(row)
    await ctx.db.flush()
    await reminders.sync_event(ctx.db, event, ctx.now)
    out = participant_out(row, user)
    messages = [catalogue.PARTICIPANT_ADDED.message(topics.for_event(event.id), out)]
    messages += await notify(ctx, [user.id], NotificationType.EVENT_INVITE, "Event invitation",
                             f"{ctx.user.name} invited you to {event.title}", link=event_link(event.id),
                             reference_id=event.id, reference_type="event", metadata={"eventId": str(event.id)})
    return Outcome(out, publish=messages)


async def _authorize(ctx: Context, event_id: uuid.UUID, user_id: uuid.UUID) -> tuple[Event, bool]:
    """The event and whether the caller acts as its organizer. A participant may always act on their own row,
    even after declining (to accept again, or to leave)."""
    event = await ctx.db.get(Event, event_id, with_for_update=True)
    if event is None:
        raise NotFound("event", event_id)
    if await access.is_organizer(ctx, event):
        return event, True
    mine = await access.participation(ctx, event.id)
    if mine is None:
        raise NotFound("event", event_id)
    if user_id == ctx.user_id:
        return event, False
    if mine.status == ParticipantStatus.DECLINED:
        raise NotFound("event", event_id)
    raise Forbidden("only the event's organizers may change other participants")


async def _row(ctx: Context, event_id: uuid.UUID, user_id: uuid.UUID) -> EventParticipant:
    row = await ctx.db.get(EventParticipant, (event_id, user_id), with_for_update=True)
    if row is None:
        raise NotFound("participant", user_id)
    return row


async def update_participant(ctx: Context, event_id: uuid.UUID, user_id: uuid.UUID,
                             body: ParticipantUpdate) -> Outcome[ParticipantOut]:
    changes = body.given()
    event, organizer = await _authorize(ctx, event_id, user_id)
    if not organizer and "role" in changes:
        raise Forbidden("you may change only your own status")
    row = await _row(ctx, event.id, user_id)
    if changes.get("role") is not None:
        row.role = changes["role"]
    if changes.get("status") is not None:
        row.status = changes["status"]
    await ctx.db.flush()
    if "status" in changes:
        await reminders.sync_event(ctx.db, event, ctx.now)  # declining drops the reminder, accepting restores it
    user = await ctx.db.get(User, user_id)
    assert user is not None  # the participant row references it (ON DELETE CASCADE)
    out = participant_out(row, user)
    topic = topics.for_event(event.id)
    # Declining ends membership (the creator stays a member regardless): their live connections leave the room.
    gone = row.status == ParticipantStatus.DECLINED and user_id != event.created_by_id
    # ... and the live sessions linked to the event (an AI stream already flowing to them stops too).
    sessions = await live_contexts.revoke_sessions_of_event(ctx, event.id, [user_id]) if gone else []
    return Outcome(out, publish=[catalogue.PARTICIPANT_UPDATED.message(topic, out)],
                   remove=[Removal(topic, user_id, "revoked"), *sessions] if gone else [])


async def remove_participant(ctx: Context, event_id: uuid.UUID, user_id: uuid.UUID) -> Outcome[None]:
    event, _ = await _authorize(ctx, event_id, user_id)
    row = await _row(ctx, event.id, user_id)
    if user_id == event.created_by_id:
        raise Conflict("the event's creator cannot be removed")
    await ctx.db.delete(row)
    await reminders.drop_for_user(ctx.db, event.id, user_id)
    topic = topics.for_event(event.id)
    data: catalogue.ParticipantRef = {"eventId": str(event.id), "userId": str(user_id)}
    sessions = await live_contexts.revoke_sessions_of_event(ctx, event.id, [user_id])
    return Outcome(None, publish=[catalogue.PARTICIPANT_REMOVED.message(topic, data)],
                   remove=[Removal(topic, user_id, "revoked"), *sessions])
