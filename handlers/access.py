"""Who may see and change what. Every query that loads a resource for a caller goes through here.

Rules (decided for the rebuild; the original had almost no checks):
- an event is visible to its creator and to participants who have not declined;
- members (creator and non-declined participants) may work through the event: change its status, its
  process's steps and substeps, post and chat in it;
- organizers (the creator, or a participant with role organizer/host) may edit the event itself, manage
  its participants and delete it;
- a process is visible to its creator and to members of any event it is linked to; members may change
  its steps, only the creator may edit or delete the process itself, or link an event to it (which shares it).
Things that exist but may not be seen answer 404, so ids do not leak.
"""

from __future__ import annotations

import uuid

from sqlalchemy import ColumnElement, Select, exists, or_, select
from sqlalchemy.orm import aliased
from sqlalchemy.orm.util import AliasedClass

from handlers.context import Context
from persistence import processes
from persistence.enums import ParticipantStatus
from persistence.errors import Forbidden, NotFound
from persistence.models import Event, EventParticipant, Process

ORGANIZER_ROLES = frozenset({"organizer", "host", "owner"})


def member_clause(user_id: uuid.UUID | ColumnElement[uuid.UUID],
                  event: type[Event] | AliasedClass[Event] = Event) -> ColumnElement[bool]:
    """SQL condition: the user is the event's creator or a participant who has not declined.
    `user_id` may be a statement's own parameter; `event` an alias when the statement joins events itself."""
    return or_(
        event.created_by_id == user_id,
        exists().where(
            EventParticipant.event_id == event.id,
            EventParticipant.user_id == user_id,
            EventParticipant.status != ParticipantStatus.DECLINED,
        ),
    )


def visible_events(user_id: uuid.UUID) -> Select[Event]:
    return select(Event).where(member_clause(user_id))


async def participation(ctx: Context, event_id: uuid.UUID) -> EventParticipant | None:
    return await ctx.db.get(EventParticipant, (event_id, ctx.user_id))


async def is_member(ctx: Context, event: Event) -> bool:
    if event.created_by_id == ctx.user_id:
        return True
    p = await participation(ctx, event.id)
    return p is not None and p.status != ParticipantStatus.DECLINED


async def is_organizer(ctx: Context, event: Event) -> bool:
    if event.created_by_id == ctx.user_id:
        return True
    p = await participation(ctx, event.id)
    return p is not None and p.status != ParticipantStatus.DECLINED and (p.role or "").lower() in ORGANIZER_ROLES


async def event_for_member(ctx: Context, event_id: uuid.UUID, *, for_update: bool = False) -> Event:
    event = await ctx.db.get(Event, event_id, with_for_update=for_update)
    if event is None or not await is_member(ctx, event):
        raise NotFound("event", event_id)
    return event


async def event_for_organizer(ctx: Context, event_id: uuid.UUID, *, for_update: bool = False) -> Event:
    event = await event_for_member(ctx, event_id, for_update=for_update)
    if not await is_organizer(ctx, event):
        raise Forbidden("only the event's organizers may do this")
    return event


# An alias, so the rule also holds inside statements that join events themselves (a step with the events to
# announce to): a plain `Event` in the EXISTS would be correlated to the outer row's event.
_LINKED = aliased(Event, name="linked_event")


def process_visible_clause(user_id: uuid.UUID | ColumnElement[uuid.UUID]) -> ColumnElement[bool]:
    """SQL condition on Process: the user created it or is a member of an event using it (`user_id` may be a
    statement's own parameter, as in member_clause)."""
    linked = exists().where(_LINKED.process_id == Process.id, member_clause(user_id, _LINKED))
    return or_(Process.created_by_id == user_id, linked)


def process_workable_clause(user_id: uuid.UUID | ColumnElement[uuid.UUID]) -> ColumnElement[bool]:
    """SQL condition on Process: the user may change its steps and substeps — the very people who see it."""
    return process_visible_clause(user_id)


async def can_work_on_process(ctx: Context, process: Process) -> bool:
    if process.created_by_id == ctx.user_id:
        return True
    return await processes.any_linked_event(ctx.db, process.id, where=member_clause(ctx.user_id))


async def process_for_member(ctx: Context, process_id: uuid.UUID, *, for_update: bool = False) -> Process:
    """A process the caller may see and whose steps they may change."""
    process = await ctx.db.get(Process, process_id, with_for_update=for_update)
    if process is None or not await can_work_on_process(ctx, process):
        raise NotFound("process", process_id)
    return process


async def process_for_owner(ctx: Context, process_id: uuid.UUID, *, for_update: bool = False) -> Process:
    process = await process_for_member(ctx, process_id, for_update=for_update)
    if process.created_by_id != ctx.user_id:
        raise Forbidden("only the process's creator may do this")
    return process


async def events_linked_to_process(ctx: Context, process_id: uuid.UUID) -> list[uuid.UUID]:
    return await processes.linked_event_ids(ctx.db, process_id)
