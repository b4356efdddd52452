"""Checklist operations on a process's steps and substeps.

Each change returns an `Outcome` whose messages go to every event room linked to the process
(`step.created|updated|deleted`, `substep.created|updated|deleted`, data = the camelCase Step/SubStep),
so a REST route, a live operation or a WebSocket push can call the very same function.
Rows being changed are locked (`FOR UPDATE` on PostgreSQL): the parent when appending, so two
concurrent "append" requests cannot take the same order.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Annotated, TypeVar

from pydantic import Field, RootModel
from sqlalchemy import func, select

from channels import topics
from handlers import access, catalogue
from handlers.context import Context, Message, Outcome
from handlers.processes import checklist
from handlers.processes.checklist import StepChange, StepIn, SubStepChange, SubStepIn
from handlers.processes.manage import load_steps, process_for_reader
from handlers.processes.shapes import StepOut, SubStepOut, step_out, substep_out
from handlers.schema import Out
from persistence.errors import NotFound
from persistence.models import Event, Process, Step, SubStep

P = TypeVar("P")

BATCH_MAX = 500


class SubStepPatch(SubStepChange):
    """One item of a batch update. Only these fields are settable; `step_id` is ignored (never moves a row)."""

    id: uuid.UUID
    """the substep to change"""


class SubStepBatch(RootModel[Annotated[list[SubStepPatch], Field(max_length=BATCH_MAX)]]):
    pass


class FixOut(Out):
    success: bool
    process_id: uuid.UUID
    updated_substeps: int
    message: str


def _messages(event_ids: list[uuid.UUID], event: catalogue.Event[P], out: P) -> list[Message]:
    return event.messages([topics.for_event(eid) for eid in event_ids], out)


async def _linked_events(ctx: Context, process: Process, resource: str, ident: uuid.UUID) -> list[uuid.UUID]:
    """The events using `process` (where changes are announced), after checking the caller may work on it:
    its creator, or a member of one of those events. One query for both."""
    rows = (await ctx.db.execute(
        select(Event.id, access.member_clause(ctx.user_id)).where(Event.process_id == process.id)
    )).all()
    if process.created_by_id != ctx.user_id and not any(bool(member) for _, member in rows):
        raise NotFound(resource, ident)
    return [eid for eid, _ in rows]


async def _process_for_work(ctx: Context, process_id: uuid.UUID) -> tuple[Process, list[uuid.UUID]]:
    process = await ctx.db.get(Process, process_id, with_for_update=True)
    if process is None:
        raise NotFound("process", process_id)
    return process, await _linked_events(ctx, process, "process", process_id)


def _events_for_worker(ctx: Context, creator: uuid.UUID | None, linked: list[tuple[uuid.UUID | None, bool | None]],
                       resource: str, ident: uuid.UUID) -> list[uuid.UUID]:
    """The linked events of rows (event id, caller is a member) from an outer join on `Event.process_id`,
    after checking the caller may work on the process: its creator, or a member of one of those events."""
    if creator != ctx.user_id and not any(bool(member) for _, member in linked):
        raise NotFound(resource, ident)
    return [eid for eid, _ in linked if eid is not None]


async def _step_for_work(ctx: Context, step_id: uuid.UUID) -> tuple[Step, list[uuid.UUID]]:
    """The step, locked, with the events to announce to; the access check in the same statement (one row per
    linked event; the process itself is not loaded)."""
    rows = (await ctx.db.execute(
        select(Step, Process.created_by_id, Event.id, access.member_clause(ctx.user_id))
        .join(Process, Step.process_id == Process.id).outerjoin(Event, Event.process_id == Process.id)
        .where(Step.id == step_id).order_by(Event.id)
        .with_for_update(of=Step).execution_options(populate_existing=True)
    )).all()
    if not rows:
        raise NotFound("step", step_id)
    return rows[0][0], _events_for_worker(ctx, rows[0][1], [(r[2], r[3]) for r in rows], "step", step_id)


async def _substep_for_work(ctx: Context, substep_id: uuid.UUID) -> tuple[SubStep, list[uuid.UUID]]:
    """As _step_for_work, for a substep."""
    rows = (await ctx.db.execute(
        select(SubStep, Process.created_by_id, Event.id, access.member_clause(ctx.user_id))
        .join(Step, SubStep.step_id == Step.id).join(Process, Step.process_id == Process.id)
        .outerjoin(Event, Event.process_id == Process.id)
        .where(SubStep.id == substep_id).order_by(Event.id)
        .with_for_update(of=SubStep).execution_options(populate_existing=True)
    )).all()
    if not rows:
        raise NotFound("substep", substep_id)
    return rows[0][0], _events_for_worker(ctx, rows[0][1], [(r[2], r[3]) for r in rows], "substep", substep_id)


async def _substeps_of(ctx: Context, step_id: uuid.UUID) -> list[SubStep]:
    return list((await ctx.db.scalars(select(SubStep).where(SubStep.step_id == step_id))).all())


# --- steps ------------------------------------------------------------------------------------------


async def list_steps(ctx: Context, process_id: uuid.UUID) -> list[StepOut]:
    await process_for_reader(ctx, process_id)
    return (await load_steps(ctx, [process_id])).get(process_id, [])


async def create_step(ctx: Context, process_id: uuid.UUID, data: StepIn) -> Outcome[StepOut]:
    """Order 0 or absent appends after the last step; inline substeps are created with it."""
    process, events = await _process_for_work(ctx, process_id)
    top = await ctx.db.scalar(select(func.max(Step.order)).where(Step.process_id == process.id))
    step = checklist.new_steps([data], ctx.now, top)[0]
    step.process_id = process.id
    ctx.db.add(step)
    await ctx.db.flush()
    out = step_out(step, step.sub_steps)
    return Outcome(out, publish=_messages(events, catalogue.STEP_CREATED, out))


async def update_step(ctx: Context, step_id: uuid.UUID, change: StepChange) -> Outcome[StepOut]:
    """Completing a step completes its substeps; un-completing clears the step's own timestamp only."""
    step, events = await _step_for_work(ctx, step_id)
    subs = await _substeps_of(ctx, step.id)
    checklist.apply_step_change(step, subs, change.given(), ctx.now)
    await ctx.db.flush()
    out = step_out(step, subs)
    return Outcome(out, publish=_messages(events, catalogue.STEP_UPDATED, out))


async def delete_step(ctx: Context, step_id: uuid.UUID) -> Outcome[None]:
    step, events = await _step_for_work(ctx, step_id)
    out = step_out(step, await _substeps_of(ctx, step.id))
    await ctx.db.delete(step)
    await ctx.db.flush()
    return Outcome(None, publish=_messages(events, catalogue.STEP_DELETED, out))


# --- substeps ---------------------------------------------------------------------------------------


async def list_substeps(ctx: Context, step_id: uuid.UUID) -> list[SubStepOut]:
    step = await ctx.db.get(Step, step_id)
    if step is None:
        raise NotFound("step", step_id)
    try:
        await process_for_reader(ctx, step.process_id)
    except NotFound:
        raise NotFound("step", step_id) from None
    subs = await _substeps_of(ctx, step.id)
    return sorted((substep_out(s) for s in subs), key=lambda s: (s.order, s.created_at))


async def create_substep(ctx: Context, step_id: uuid.UUID, data: SubStepIn) -> Outcome[SubStepOut]:
    step, events = await _step_for_work(ctx, step_id)  # the step's lock serialises order assignment
    top = await ctx.db.scalar(select(func.max(SubStep.order)).where(SubStep.step_id == step.id))
    sub = checklist.new_substeps([data], ctx.now, top)[0]
    sub.step_id = step.id
    ctx.db.add(sub)
    await ctx.db.flush()
    out = substep_out(sub)
    return Outcome(out, publish=_messages(events, catalogue.SUBSTEP_CREATED, out))


async def update_substep(ctx: Context, substep_id: uuid.UUID, change: SubStepChange) -> Outcome[SubStepOut]:
    sub, events = await _substep_for_work(ctx, substep_id)
    checklist.apply_substep_change(sub, change.given(), ctx.now)
    await ctx.db.flush()
    out = substep_out(sub)
    return Outcome(out, publish=_messages(events, catalogue.SUBSTEP_UPDATED, out))


async def delete_substep(ctx: Context, substep_id: uuid.UUID) -> Outcome[None]:
    sub, events = await _substep_for_work(ctx, substep_id)
    out = substep_out(sub)
    await ctx.db.delete(sub)
    await ctx.db.flush()
    return Outcome(None, publish=_messages(events, catalogue.SUBSTEP_DELETED, out))


async def batch_update_substeps(ctx: Context, patches: list[SubStepPatch]) -> Outcome[list[SubStepOut]]:
    """All or nothing: any id that is unknown or on a process the caller may not work on → 404, no change."""
    ids = list(dict.fromkeys(p.id for p in patches))
    if not ids:
        return Outcome([])
    rows = (await ctx.db.execute(
        select(SubStep, Process).join(Step, SubStep.step_id == Step.id).join(Process, Step.process_id == Process.id)
        .where(SubStep.id.in_(ids)).with_for_update(of=SubStep).execution_options(populate_existing=True)
    )).all()
    found = {sub.id: (sub, process) for sub, process in rows}
    for sid in ids:
        if sid not in found:
            raise NotFound("substep", sid)
    processes = {process.id: process for _, process in found.values()}
    linked: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
    member_of: set[uuid.UUID] = set()
    for eid, pid, member in (await ctx.db.execute(
        select(Event.id, Event.process_id, access.member_clause(ctx.user_id))
        .where(Event.process_id.in_(list(processes)))
    )).all():
        if pid is not None:
            linked[pid].append(eid)
            if member:
                member_of.add(pid)
    for sid in ids:
        process = found[sid][1]
        if process.created_by_id != ctx.user_id and process.id not in member_of:
            raise NotFound("substep", sid)
    for patch in patches:
        fields = patch.given()
        fields.pop("id", None)
        checklist.apply_substep_change(found[patch.id][0], fields, ctx.now)
    await ctx.db.flush()
    outs = [substep_out(found[sid][0]) for sid in ids]
    publish = [m for out, sid in zip(outs, ids, strict=True)
               for m in _messages(linked[found[sid][1].id], catalogue.SUBSTEP_UPDATED, out)]
    return Outcome(outs, publish=publish)


async def fix_completion(ctx: Context, process_id: uuid.UUID) -> Outcome[FixOut]:
    """Repair data from before the cascade rule: complete the unfinished substeps of completed steps."""
    process, events = await _process_for_work(ctx, process_id)
    rows = (await ctx.db.execute(
        select(SubStep, Step).join(Step, SubStep.step_id == Step.id)
        .where(Step.process_id == process.id, Step.completed.is_(True), SubStep.completed.is_not(True))
        .with_for_update(of=SubStep)
    )).all()
    publish: list[Message] = []
    for sub, step in rows:
        sub.completed = True
        sub.completed_at = step.completed_at or ctx.now
    await ctx.db.flush()
    for sub, _ in rows:
        publish.extend(_messages(events, catalogue.SUBSTEP_UPDATED, substep_out(sub)))
    out = FixOut(success=True, process_id=process.id, updated_substeps=len(rows),
                 message=f"completed {len(rows)} substep(s) of completed steps")
    return Outcome(out, publish=publish)
