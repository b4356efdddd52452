"""Weekly planning: pick templates, schedule them next week with a deterministic heuristic, save as events.

With a model configured the week is laid out by the model (structured output, checked by
`handlers.planning.model`) and says so (`generator: "model"`); otherwise, or when the model fails, by the
deterministic heuristic (`generator: "heuristic"`), whose summary then says why.

Heuristic rules (from the original, kept): the plan week starts next Monday; working days by
effort (low Tue-Thu, medium Mon-Fri, high Mon-Fri and Sunday); `hoursAllocation` split evenly over them;
sessions from 09:00 local time, 30 min per template step clamped to 30-120 min, 15 min apart. Each template
goes to the day with the most time left (earliest on ties), so sessions spread over the week.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC as UTC_ZONE
from datetime import datetime, timedelta
from typing import Literal, Self

from pydantic import Field, model_validator
from sqlalchemy import ColumnElement, and_, or_

from handlers import access
from handlers.clock import UTCInput, add_days, day_start, user_zone
from handlers.context import Context
from handlers.planning import model as plan_model
from handlers.processes.instances import instantiate
from handlers.schema import UTC, In, Out
from persistence import events, processes
from persistence.enums import EventStatus, ParticipantStatus
from persistence.errors import DomainError, NotFound
from persistence.models import Event, EventParticipant, Process, StatusLog

Effort = Literal["low", "medium", "high"]
WORKDAYS: dict[str, tuple[int, ...]] = {"low": (1, 2, 3), "medium": (0, 1, 2, 3, 4), "high": (0, 1, 2, 3, 4, 6)}
DAY_START_HOUR = 9
MINUTES_PER_STEP = 30
MIN_SESSION, MAX_SESSION = 30, 120
GAP = 15
SHORTEST_USEFUL = 15  # a day with less time left than this takes no more sessions
GOAL_SESSION = 60
MAX_GOAL_SESSIONS = 10


class PlanTemplate(Out):
    id: uuid.UUID
    name: str
    template_count: int  # the template's step count (what the session length is sized from)


class PlanDirectory(Out):
    id: uuid.UUID
    name: str
    description: str | None
    color: str | None
    templates: list[PlanTemplate]


class PlanGenerateIn(In):
    description: str | None = Field(default=None, max_length=5000)
    """what the week is for, in words (the model reads it)"""
    goals: str | None = Field(default=None, max_length=5000)
    """goals, one per line (or separated by ';' or ','): each becomes a session"""
    effort: Effort = "medium"
    """low (Tue-Thu), medium (Mon-Fri) or high (Mon-Fri and Sunday)"""
    hours_allocation: int = Field(default=10, ge=1, le=40)
    """hours to plan over the week"""
    directory_ids: list[uuid.UUID] = Field(default_factory=list, max_length=100)
    """directories whose templates are all scheduled"""
    template_ids: list[uuid.UUID] = Field(default_factory=list, max_length=200)
    """templates to schedule (mine or the library's)"""
    auto_generate_process: bool = False
    """accepted for the original client; has no effect"""


class PlanEventOut(Out):
    """A proposed session of `/plan/generate`, not an event yet: the original frontend sends it back to `/plan/save`."""

    id: str  # a temporary client-side id; saving creates the real event
    title: str
    description: str
    process_id: uuid.UUID | None  # a real template id, or null for a goal session
    start_time: UTC
    end_time: UTC
    effort: Effort
    status: EventStatus = EventStatus.PENDING


class PlanOut(Out):
    events: list[PlanEventOut]
    summary: str
    generator: Literal["heuristic", "model"] = "heuristic"


class PlanEventIn(In):
    id: str | None = Field(default=None, max_length=100)
    """the plan's own id for the item (e.g. `plan-0`), echoed back"""
    title: str = Field(min_length=1, max_length=300)
    """the event's title"""
    description: str | None = Field(default=None, max_length=5000)
    """the event's description"""
    process_id: uuid.UUID | None = None
    """a template: the event gets a fresh checklist copied from it"""
    start_time: UTCInput
    """when it starts (ISO 8601)"""
    end_time: UTCInput
    """when it ends (ISO 8601), at most a day after the start"""
    effort: Effort | None = None
    """low, medium or high"""

    @model_validator(mode="after")
    def _times(self) -> Self:
        if self.end_time <= self.start_time:
            raise ValueError("endTime must be after startTime")
        if self.end_time - self.start_time > timedelta(days=1):
            raise ValueError("a planned event may last at most one day")
        return self


class PlanSaveIn(In):
    events: list[PlanEventIn] = Field(min_length=1, max_length=100)
    """the planned items to create as events (from POST /plan/generate)"""


class PlanSaveOut(Out):
    success: bool
    saved_events: list[uuid.UUID]


def _usable_by(user_id: uuid.UUID) -> ColumnElement[bool]:
    """Templates the caller may plan with: their own, or library ones (as instantiation allows)."""
    library = and_(Process.created_by_id.is_(None), Process.process_metadata["source"].as_string() == "library")
    return or_(Process.created_by_id == user_id, library)


async def directories(ctx: Context) -> list[PlanDirectory]:
    """The caller's directories that hold templates, each with those templates."""
    dirs = await processes.directories_of(ctx.db, ctx.user_id)
    if not dirs:
        return []
    templates = await processes.templates_in(ctx.db, [d.id for d in dirs], usable=_usable_by(ctx.user_id))
    steps = await processes.step_counts(ctx.db, [t.id for t in templates])
    by_dir: dict[uuid.UUID, list[PlanTemplate]] = {}
    for t in templates:
        by_dir.setdefault(t.directory_id, []).append(  # type: ignore[arg-type]
            PlanTemplate(id=t.id, name=t.title, template_count=steps.get(t.id, 0)))
    return [PlanDirectory(id=d.id, name=d.name, description=d.description, color=d.color, templates=by_dir[d.id])
            for d in dirs if d.id in by_dir]


async def _chosen_templates(ctx: Context, body: PlanGenerateIn) -> list[Process]:
    """The templates of the chosen directories, then the chosen templates; every id must be the caller's
    (or a library template) — anything else is 404."""
    chosen: dict[uuid.UUID, Process] = {}
    for directory_id in dict.fromkeys(body.directory_ids):
        directory = await processes.directory(ctx.db, directory_id)
        if directory is None or directory.created_by_id != ctx.user_id:
            raise NotFound("directory", directory_id)
        for t in await processes.templates_in(ctx.db, [directory_id], usable=_usable_by(ctx.user_id)):
            chosen.setdefault(t.id, t)
    for template_id in dict.fromkeys(body.template_ids):
        picked = await processes.template(ctx.db, template_id, usable=_usable_by(ctx.user_id))
        if picked is None:
            raise NotFound("template", template_id)
        chosen.setdefault(picked.id, picked)
    return list(chosen.values())


@dataclass
class _Day:
    start: datetime  # 09:00 local
    budget: int  # minutes left
    cursor: datetime


@dataclass
class _Session:
    title: str
    description: str
    process_id: uuid.UUID | None
    minutes: int


def _goal_items(goals: str | None) -> list[str]:
    items = [g.strip(" -*•\t") for g in re.split(r"[\n;,]+", goals or "")]
    return [g[:300] for g in items if g][:MAX_GOAL_SESSIONS]


def _schedule(days: list[_Day], sessions: list[_Session], effort: Effort) -> tuple[list[PlanEventOut], int, int]:
    """Place each session on the day with the most time left; returns (events, sessions left out, days used)."""
    placed: list[tuple[datetime, datetime, _Session]] = []
    unplaced = 0
    for s in sessions:
        day = max(days, key=lambda d: (d.budget, -d.start.timestamp()))
        if day.budget < SHORTEST_USEFUL:
            unplaced += 1
            continue
        minutes = min(s.minutes, day.budget)
        start = day.cursor
        end = start + timedelta(minutes=minutes)
        placed.append((start, end, s))
        day.budget -= minutes
        day.cursor = end + timedelta(minutes=GAP)
    placed.sort(key=lambda p: p[0])
    events = [PlanEventOut(id=f"plan-{i}", title=s.title, description=s.description, process_id=s.process_id,
                           start_time=start.astimezone(UTC_ZONE), end_time=end.astimezone(UTC_ZONE), effort=effort)
              for i, (start, end, s) in enumerate(placed, start=1)]
    return events, unplaced, len({start.date() for start, _, _ in placed})


@dataclass(frozen=True)
class PlanDraft:
    """What the database gave for a plan: the heuristic answer and what a model would need to do better."""

    heuristic: PlanOut
    sessions: list[_Session]
    budgets: list[tuple[datetime, int]]


async def finish_plan(draft: PlanDraft, body: PlanGenerateIn, planner: plan_model.Planner | None) -> PlanOut:
    """Ask the model, if there is one (no database needed: call it after the transaction has ended)."""
    if planner is None or not draft.sessions:
        return draft.heuristic
    return await _with_model(planner, body, draft.sessions, draft.budgets, draft.heuristic)


async def draft_plan(ctx: Context, body: PlanGenerateIn) -> PlanDraft:
    templates = await _chosen_templates(ctx, body)
    steps = await processes.step_counts(ctx.db, [t.id for t in templates])
    zone = await user_zone(ctx)
    today = day_start(ctx.now, zone)
    monday = add_days(today, (7 - today.weekday()) % 7 or 7)
    offsets = WORKDAYS[body.effort]
    total = body.hours_allocation * 60
    share, extra = divmod(total, len(offsets))
    days = []
    for i, offset in enumerate(offsets):
        start = add_days(monday, offset).replace(hour=DAY_START_HOUR)
        days.append(_Day(start=start, budget=share + (1 if i < extra else 0), cursor=start))
    if templates:
        sessions = [_Session(
            title=t.title, process_id=t.id,
            description=t.description or f"Work through the “{t.title}” checklist ({steps.get(t.id, 0)} steps)",
            minutes=max(MIN_SESSION, min(MAX_SESSION, MINUTES_PER_STEP * steps.get(t.id, 0))),
        ) for t in templates]
    else:
        sessions = [_Session(title=g, description=f"Work towards your goal: {g}", process_id=None,
                             minutes=GOAL_SESSION) for g in _goal_items(body.goals)]
    budgets = [(d.start, d.budget) for d in days]
    events, unplaced, day_count = _schedule(days, sessions, body.effort)
    heuristic = PlanOut(events=events, summary=_summary(events, unplaced, day_count, monday, body))
    return PlanDraft(heuristic, sessions, budgets)


async def _with_model(planner: plan_model.Planner, body: PlanGenerateIn, sessions: list[_Session],
                      budgets: list[tuple[datetime, int]], heuristic: PlanOut) -> PlanOut:
    candidates = [plan_model.Candidate(s.title, s.description, s.process_id, s.minutes) for s in sessions]
    try:
        answer = await planner.complete_json(
            plan_model.request(candidates, budgets, effort=body.effort, hours=body.hours_allocation,
                               description=body.description, goals=body.goals),
            name="weekly_plan", schema=plan_model.SCHEMA)
    except DomainError as exc:
        return heuristic.model_copy(update={"summary": f"{heuristic.summary} (The AI model could not plan: "
                                                       f"{exc.message}.)"})
    placed = plan_model.validate(answer, candidates, budgets, body.hours_allocation)
    if not placed:
        return heuristic.model_copy(update={"summary": f"{heuristic.summary} (The AI model's plan did not fit "
                                                       "the chosen templates, days and hours.)"})
    events = [PlanEventOut(id=f"plan-{i}", title=p.title, description=p.description, process_id=p.process_id,
                           start_time=p.start.astimezone(UTC_ZONE), end_time=p.end.astimezone(UTC_ZONE),
                           effort=body.effort) for i, p in enumerate(placed, start=1)]
    summary = str(answer.get("summary") or "").strip()[:2000]
    return PlanOut(events=events, summary=f"{summary} Planned by the AI model.".strip(), generator="model")


def _summary(events: list[PlanEventOut], unplaced: int, day_count: int, monday: datetime,
             body: PlanGenerateIn) -> str:
    if not events:
        return ("Nothing to schedule: choose directories or templates, or list goals "
                "(one per line) to get focus sessions.")
    minutes = sum(int((e.end_time - e.start_time).total_seconds()) // 60 for e in events)
    text = (f"{len(events)} session(s) over {day_count} day(s) in the week of {monday.date().isoformat()}, "
            f"{minutes / 60:g} of {body.hours_allocation} hours allocated ({body.effort} effort).")
    if unplaced:
        text += f" {unplaced} more did not fit in the hours allocated."
    return text + " Scheduled by a deterministic heuristic, not an AI model."


async def save(ctx: Context, body: PlanSaveIn) -> PlanSaveOut:
    """One Pending event per item, the caller its confirmed organizer. A template id gets a fresh instance of
    the template (never the template itself); a non-template id must be the caller's own process. Any bad item
    fails the whole request, and the transaction saves nothing."""
    saved: list[uuid.UUID] = []
    for item in body.events:
        process_id: uuid.UUID | None = None
        metadata: dict[str, object] = {"generated_by_plan": True}
        if item.id:
            metadata["plan_event_id"] = item.id
        if item.effort:
            metadata["effort"] = item.effort
        if item.process_id is not None:
            target = await processes.process(ctx.db, item.process_id)
            if target is None:
                raise NotFound("process", item.process_id)
            if target.is_template:
                process_id = (await instantiate(ctx, target.id)).id
                metadata["template_process_id"] = str(target.id)
            else:
                process_id = (await access.process_for_owner(ctx, target.id)).id
        event = Event(title=item.title, description=item.description, start_time=item.start_time,
                      end_time=item.end_time, status=EventStatus.PENDING, created_by_id=ctx.user_id,
                      process_id=process_id, event_metadata=metadata, created_at=ctx.now)
        # The initial status is logged too (previous_status NULL), as for any other event.
        await events.add_event(
            ctx.db, event,
            EventParticipant(user_id=ctx.user_id, role="organizer", status=ParticipantStatus.CONFIRMED,
                             joined_at=ctx.now),
            StatusLog(user_id=ctx.user_id, previous_status=None, new_status=EventStatus.PENDING,
                      created_at=ctx.now))
        saved.append(event.id)
    await ctx.db.flush()
    return PlanSaveOut(success=True, saved_events=saved)
