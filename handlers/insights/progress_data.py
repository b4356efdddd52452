"""The caller's work as plain values for the progress figures: events, processes with their work items.

Loaded once per request (a handful of queries), then every figure is computed in `handlers.insights.progress` from
these values alone, so each number traces back to rows the caller can see.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import ColumnElement, exists, func, select
from sqlalchemy.orm import selectinload

from handlers import access
from handlers.clock import add_days
from handlers.context import Context
from persistence.enums import EventStatus
from persistence.models import Event, EventTopic, Process, Step, Topic

MAX_PROCESSES = 500  # the most recently touched processes; older ones cannot move this period's figures much


@dataclass(frozen=True)
class Window:
    """[start, end) in the caller's zone."""

    start: datetime
    end: datetime

    def __contains__(self, moment: object) -> bool:
        return isinstance(moment, datetime) and self.start <= moment < self.end

    def days(self) -> list[Window]:
        out, day = [], self.start
        while day < self.end:
            nxt = add_days(day, 1)
            out.append(Window(day, min(nxt, self.end)))
            day = nxt
        return out

    def weeks(self) -> list[Window]:
        """Monday-started weeks overlapping the window, clipped to it."""
        out, day = [], add_days(self.start, -self.start.weekday())
        while day < self.end:
            nxt = add_days(day, 7)
            out.append(Window(max(day, self.start), min(nxt, self.end)))
            day = nxt
        return out


@dataclass(frozen=True)
class EventFact:
    id: uuid.UUID
    start: datetime
    end: datetime
    status: EventStatus
    process_id: uuid.UUID | None
    complexity: int | None
    tags: tuple[tuple[str, str | None], ...]  # (topic name, colour)

    @property
    def done(self) -> bool:
        return self.status == EventStatus.DONE

    @property
    def minutes(self) -> int:
        return max(0, int((self.end - self.start).total_seconds() // 60))


@dataclass(frozen=True)
class Item:
    """A step or a substep: the unit of work that completes."""

    is_step: bool
    completed: bool
    completed_at: datetime | None

    def done_by(self, moment: datetime) -> bool:
        return self.completed and self.completed_at is not None and self.completed_at < moment


@dataclass
class ProcessFact:
    id: uuid.UUID
    title: str
    created_at: datetime
    updated_at: datetime | None
    items: list[Item] = field(default_factory=list)
    events: list[EventFact] = field(default_factory=list)

    @property
    def steps(self) -> list[Item]:
        return [i for i in self.items if i.is_step]


@dataclass
class Facts:
    events: list[EventFact]  # the caller's events starting inside the loaded span
    processes: list[ProcessFact]


def _tag_clause(tag: str) -> ColumnElement[bool]:
    return exists().where(EventTopic.event_id == Event.id, EventTopic.topic_id == Topic.id,
                          func.lower(Topic.name) == tag.lower())


async def _tags(ctx: Context, event_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[tuple[str, str | None]]]:
    out: dict[uuid.UUID, list[tuple[str, str | None]]] = defaultdict(list)
    if event_ids:
        rows = await ctx.db.execute(
            select(EventTopic.event_id, Topic.name, Topic.color).join(Topic, Topic.id == EventTopic.topic_id)
            .where(EventTopic.event_id.in_(event_ids)).order_by(Topic.name))
        for event_id, name, color in rows.all():
            out[event_id].append((name, color))
    return out


def _fact(e: Event, tags: dict[uuid.UUID, list[tuple[str, str | None]]]) -> EventFact:
    return EventFact(id=e.id, start=e.start_time, end=e.end_time, status=EventStatus(e.status),
                     process_id=e.process_id, complexity=e.complexity, tags=tuple(tags.get(e.id, ())))


async def load(ctx: Context, span: Window, tag: str | None) -> Facts:
    """The caller's events (created or joined, not declined) starting in `span`, and the caller's live
    (non-template) processes with their steps, substeps and linked events. With `tag`, only events with
    that topic count, and only processes linked to such events."""
    visible = access.visible_events(ctx.user_id)
    if tag:
        visible = visible.where(_tag_clause(tag))
    rows = (await ctx.db.scalars(visible.where(Event.start_time >= span.start, Event.start_time < span.end)
                                 .order_by(Event.start_time, Event.id))).all()
    tags = await _tags(ctx, [e.id for e in rows])
    events = [_fact(e, tags) for e in rows]

    procs = select(Process).where(access.process_visible_clause(ctx.user_id), Process.is_template.is_(False))
    if tag:
        procs = procs.where(exists().where(Event.process_id == Process.id, access.member_clause(ctx.user_id),
                                           _tag_clause(tag)))
    loaded = (await ctx.db.scalars(
        procs.options(selectinload(Process.steps).selectinload(Step.sub_steps))
        .order_by(func.coalesce(Process.updated_at, Process.created_at).desc(), Process.id).limit(MAX_PROCESSES)
    )).all()
    facts = {p.id: ProcessFact(id=p.id, title=p.title, created_at=p.created_at, updated_at=p.updated_at,
                               items=[item for s in p.steps for item in (
                                   Item(True, s.completed, s.completed_at),
                                   *(Item(False, ss.completed, ss.completed_at) for ss in s.sub_steps))])
             for p in loaded}
    if facts:
        linked = (await ctx.db.scalars(access.visible_events(ctx.user_id).where(Event.process_id.in_(facts))
                                       .order_by(Event.start_time))).all()
        linked_tags = await _tags(ctx, [e.id for e in linked])
        for e in linked:
            facts[e.process_id].events.append(_fact(e, linked_tags))  # type: ignore[index]
    return Facts(events=events, processes=list(facts.values()))
