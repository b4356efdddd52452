"""The caller's work as plain values for the progress figures: events, processes with their work items.

Loaded once per request (a handful of queries), then every figure is computed in `handlers.insights.progress` from
these values alone, so each number traces back to rows the caller can see.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from handlers import access
from handlers.clock import add_days
from handlers.context import Context
from persistence import insights as insight_rows
from persistence.enums import EventStatus
from persistence.models import Event

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


async def _tags(ctx: Context, event_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[tuple[str, str | None]]]:
    out: dict[uuid.UUID, list[tuple[str, str | None]]] = defaultdict(list)
    for event_id, name, color in await insight_rows.tags_of(ctx.db, event_ids):
        out[event_id].append((name, color))
    return out


def _fact(e: Event, tags: dict[uuid.UUID, list[tuple[str, str | None]]]) -> EventFact:
    return EventFact(id=e.id, start=e.start_time, end=e.end_time, status=EventStatus(e.status),
                     process_id=e.process_id, complexity=e.complexity, tags=tuple(tags.get(e.id, ())))


async def load(ctx: Context, span: Window, tag: str | None) -> Facts:
    """The caller's events (created or joined, not declined) starting in `span`, and the caller's live
    (non-template) processes with their steps, substeps and linked events. With `tag`, only events with
    that topic count, and only processes linked to such events."""
    rows = await insight_rows.events_starting(ctx.db, access.visible_events(ctx.user_id), start=span.start,
                                              end=span.end, tag=tag)
    tags = await _tags(ctx, [e.id for e in rows])
    events = [_fact(e, tags) for e in rows]

    loaded = await insight_rows.processes_with_work(ctx.db, access.process_visible_clause(ctx.user_id), tag=tag,
                                                    member=access.member_clause(ctx.user_id), limit=MAX_PROCESSES)
    facts = {p.id: ProcessFact(id=p.id, title=p.title, created_at=p.created_at, updated_at=p.updated_at,
                               items=[item for s in p.steps for item in (
                                   Item(True, s.completed, s.completed_at),
                                   *(Item(False, ss.completed, ss.completed_at) for ss in s.sub_steps))])
             for p in loaded}
    if facts:
        linked = await insight_rows.events_of_processes(ctx.db, access.visible_events(ctx.user_id), list(facts))
        linked_tags = await _tags(ctx, [e.id for e in linked])
        for e in linked:
            facts[e.process_id].events.append(_fact(e, linked_tags))  # type: ignore[index]
    return Facts(events=events, processes=list(facts.values()))
