"""Checklist operations on a process's steps and substeps.

Each change returns an `Outcome` whose messages go to every event room linked to the process
(`step.created|updated|deleted`, `substep.created|updated|deleted`, data = the camelCase Step/SubStep),
so a REST route, a live operation or a WebSocket push can call the very same function.
Rows being changed are locked (`FOR UPDATE` on PostgreSQL): the parent when appending, so two
concurrent "append" requests cannot take the same order.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, TypeVar

from pydantic import Field, RootModel

from channels import topics
from handlers import access, catalogue
from handlers.context import Context, Message, Outcome, Recorded
from handlers.processes import checklist
from handlers.processes.checklist import StepChange, StepIn, SubStepChange, SubStepIn
from handlers.processes.manage import load_steps, process_for_reader
from handlers.processes.shapes import StepOut, SubStepOut, step_out, substep_out
from handlers.recording import frame_parts, wire_time
from handlers.schema import Out
from persistence import processes, step_writes
from persistence.database import on_postgresql, straight_connection
from persistence.errors import NotFound
from persistence.models import Process, Step, SubStep
from persistence.types import utcnow

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


async def _process_for_work(ctx: Context, process_id: uuid.UUID) -> tuple[Process, list[uuid.UUID]]:
    """The process, locked, with the events to announce to, after checking the caller may work on it."""
    found = await processes.process_for_work(ctx.db, process_id,
                                             workable=access.process_workable_clause(ctx.user_id))
    if found is None or not found[1]:
        raise NotFound("process", process_id)
    return found[0], await processes.linked_event_ids(ctx.db, process_id)


async def _step_for_work(ctx: Context, step_id: uuid.UUID) -> tuple[Step, list[uuid.UUID]]:
    """The step, locked, with the events to announce to; the access check in the same statement."""
    found = await processes.step_for_work(ctx.db, step_id, workable=access.process_workable_clause(ctx.user_id))
    if found is None or not found[1]:
        raise NotFound("step", step_id)
    return found[0], found[2]


async def _substep_for_work(ctx: Context, substep_id: uuid.UUID) -> tuple[SubStep, list[uuid.UUID]]:
    """As _step_for_work, for a substep."""
    found = await processes.substep_for_work(ctx.db, substep_id,
                                             workable=access.process_workable_clause(ctx.user_id))
    if found is None or not found[1]:
        raise NotFound("substep", substep_id)
    return found[0], found[2]


# --- steps ------------------------------------------------------------------------------------------


async def list_steps(ctx: Context, process_id: uuid.UUID) -> list[StepOut]:
    await process_for_reader(ctx, process_id)
    return (await load_steps(ctx, [process_id])).get(process_id, [])


async def create_step(ctx: Context, process_id: uuid.UUID, data: StepIn) -> Outcome[StepOut]:
    """Order 0 or absent appends after the last step; inline substeps are created with it."""
    process, events = await _process_for_work(ctx, process_id)
    top = await processes.top_step_order(ctx.db, process.id)
    step = checklist.new_steps([data], ctx.now, top)[0]
    step.process_id = process.id
    await processes.add_flushed(ctx.db, step)
    out = step_out(step, step.sub_steps)
    return Outcome(out, publish=_messages(events, catalogue.STEP_CREATED, out))


async def update_step(ctx: Context, step_id: uuid.UUID, change: StepChange, *,
                      alone: bool = False) -> Outcome[StepOut]:
    """Completing a step completes its substeps; un-completing clears the step's own timestamp only.

    `alone`: this change is the caller's whole unit of work (a REST request), so on PostgreSQL it may commit on its
    own, outside the unit's transaction (persistence.database.straight_connection)."""
    if on_postgresql(ctx.db) and not _holds_checklist_rows(ctx):
        done = await _update_step_checked(ctx, step_id, change, alone)
        return done if done is not None else await _update_step_locked(ctx, step_id, change)
    step, events = await _step_for_work(ctx, step_id)
    subs = await processes.substeps_of(ctx.db, step.id)
    checklist.apply_step_change(step, subs, change.given(), ctx.now)
    await ctx.db.flush()
    out = step_out(step, subs)
    return Outcome(out, publish=_messages(events, catalogue.STEP_UPDATED, out))


# Built once: the caller's rule compiled into the statements (persistence.step_writes).
_STEP_LOCK = step_writes.lock_statement(access.process_workable_clause(step_writes.STEP_WORKER))
_STEP_READ = step_writes.read_statement(access.process_workable_clause)
_STEP_WRITE_CHECKED = step_writes.checked_write_statement(access.process_workable_clause, frame=False)
_STEP_WRITE_CHECKED_FRAME = step_writes.checked_write_statement(access.process_workable_clause, frame=True)
# Reads and checked writes tried before the locking path takes over: each retry means another writer changed
# the step or its substeps in the ~1 ms between the two statements.
CHECKED_TRIES = 3


@dataclass(slots=True)
class _DetachedStep:
    """A step's columns, for the rules to change outside any session (ORM instances cost ~15 µs apiece)."""

    id: uuid.UUID
    content: str
    completed: bool
    completed_at: datetime | None
    order: int
    due_date: str | None
    process_id: uuid.UUID
    created_at: datetime
    updated_at: datetime | None


@dataclass(slots=True)
class _DetachedSubStep:
    id: uuid.UUID
    content: str
    completed: bool
    completed_at: datetime | None
    order: int
    step_id: uuid.UUID
    created_at: datetime
    updated_at: datetime | None


def _holds_checklist_rows(ctx: Context) -> bool:
    """Whether the session holds changes or loaded steps and substeps: statements run straight on the driver
    would bypass its flush and leave those objects stale, so the ORM's path serves such a caller (a live
    operation loads the step first)."""
    db = ctx.db
    return bool(db.new or db.dirty or db.deleted) or any(isinstance(o, Step | SubStep)
                                                         for o in db.identity_map.values())


@dataclass(slots=True)
class _Applied:
    """A change applied to detached rows: the answer, and what to write (only rows whose values changed, each with
    a new updated_at, as the ORM's flush does)."""

    out: StepOut
    step: tuple[object, ...] | None
    subs: list[tuple[uuid.UUID, bool, datetime | None]]
    updated_at: datetime


def _apply(ctx: Context, row: tuple[object, ...], sub_rows: list[tuple[object, ...]],
           change: StepChange) -> _Applied:
    step = _DetachedStep(*row)  # type: ignore[arg-type]
    subs = [_DetachedSubStep(*r) for r in sub_rows]  # type: ignore[arg-type]
    checklist.apply_step_change(step, subs, change.given(), ctx.now)
    updated_at = utcnow()
    new = (step.content, step.completed, step.completed_at, step.order, step.due_date)
    step_changed = new != tuple(row[1:6])
    if step_changed:
        step.updated_at = updated_at
    changed = []
    for sub, r in zip(subs, sub_rows, strict=True):
        if (sub.completed, sub.completed_at) != (r[2], r[3]):
            sub.updated_at = updated_at
            changed.append((sub.id, sub.completed, sub.completed_at))
    return _Applied(step_out(step, subs), new if step_changed else None, changed, updated_at)


def _frame(ctx: Context, message: Message) -> tuple[str, tuple[str, str], datetime]:
    return message.topic, frame_parts(message.topic, message, wire_time(ctx.now)), ctx.now


async def _update_step_checked(ctx: Context, step_id: uuid.UUID, change: StepChange,
                               alone: bool) -> Outcome[StepOut] | None:
    """update_step on PostgreSQL in two statements on the driver, no lock held between them: read the step and
    its substeps with their row versions, apply the rules, then write the changed rows together with the room's
    frame in one statement that writes only if those versions still stand (persistence.step_writes). Alone, on a
    pooled connection in autocommit: no BEGIN and no COMMIT. None when other writers kept changing the step, or
    when several rooms' frames must commit with the change in the unit's transaction: the locking path then."""
    async with straight_connection(ctx.db, alone=alone) as (conn, autocommit):
        for _ in range(CHECKED_TRIES):
            read = await step_writes.read_step(conn, _STEP_READ, step_id, ctx.user_id)
            if read is None or not read.workable:
                raise NotFound("step", step_id)
            if autocommit and len(read.events) > 1:
                return None
            applied = _apply(ctx, read.row, read.subs, change)
            messages = _messages(read.events, catalogue.STEP_UPDATED, applied.out)
            if len(messages) == 1:
                [message] = messages
                stored = await step_writes.write_checked(conn, _STEP_WRITE_CHECKED_FRAME, read, ctx.user_id,
                                                         applied.step, applied.subs, applied.updated_at,
                                                         frame=_frame(ctx, message))
                if stored is not None:
                    return Outcome(applied.out, recorded=[Recorded(message.topic, stored[0], tuple(stored[1]))])
            elif await step_writes.write_checked(conn, _STEP_WRITE_CHECKED, read, ctx.user_id, applied.step,
                                                 applied.subs, applied.updated_at, frame=None) is not None:
                return Outcome(applied.out, publish=messages)  # none, or several recorded by the unit of work
    return None


async def _update_step_locked(ctx: Context, step_id: uuid.UUID, change: StepChange) -> Outcome[StepOut]:
    """update_step on PostgreSQL in the unit's transaction, in three statements on the driver (persistence.
    step_writes): the step locked with the access rule and its events, its substeps read once the lock is held,
    then the changed rows written (with the room's frame when there is one room)."""
    found = await step_writes.step_for_change(ctx.db, _STEP_LOCK, step_id, ctx.user_id)
    if found is None or not found[1]:
        raise NotFound("step", step_id)
    row, _, events, sub_rows = found
    applied = _apply(ctx, tuple(row), [tuple(r) for r in sub_rows], change)
    messages = _messages(events, catalogue.STEP_UPDATED, applied.out)
    if len(messages) != 1:  # no room, or several: the unit of work records their frames
        await step_writes.write_step(ctx.db, step_id, applied.step, applied.subs, applied.updated_at, frame=None)
        return Outcome(applied.out, publish=messages)
    [message] = messages
    stored = await step_writes.write_step(ctx.db, step_id, applied.step, applied.subs, applied.updated_at,
                                          frame=_frame(ctx, message))
    if stored is None or not stored[1]:  # the statement stores the frame unconditionally
        raise RuntimeError(f"step {step_id}: the change's frame was not stored")
    return Outcome(applied.out, recorded=[Recorded(message.topic, stored[0], tuple(stored[1]))])


async def delete_step(ctx: Context, step_id: uuid.UUID) -> Outcome[None]:
    step, events = await _step_for_work(ctx, step_id)
    out = step_out(step, await processes.substeps_of(ctx.db, step.id))
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
    subs = await processes.substeps_of(ctx.db, step.id)
    return sorted((substep_out(s) for s in subs), key=lambda s: (s.order, s.created_at))


async def create_substep(ctx: Context, step_id: uuid.UUID, data: SubStepIn) -> Outcome[SubStepOut]:
    step, events = await _step_for_work(ctx, step_id)  # the step's lock serialises order assignment
    top = await processes.top_substep_order(ctx.db, step.id)
    sub = checklist.new_substeps([data], ctx.now, top)[0]
    sub.step_id = step.id
    await processes.add_substep(ctx.db, sub)
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
    found = await processes.substeps_for_work(ctx.db, ids, workable=access.process_workable_clause(ctx.user_id))
    for sid in ids:
        if sid not in found or not found[sid][2]:
            raise NotFound("substep", sid)
    linked = await processes.events_by_process(ctx.db, list(dict.fromkeys(pid for _, pid, _ in found.values())))
    for patch in patches:
        fields = patch.given()
        fields.pop("id", None)
        checklist.apply_substep_change(found[patch.id][0], fields, ctx.now)
    await ctx.db.flush()
    outs = [substep_out(found[sid][0]) for sid in ids]
    publish = [m for out, sid in zip(outs, ids, strict=True)
               for m in _messages(linked.get(found[sid][1], []), catalogue.SUBSTEP_UPDATED, out)]
    return Outcome(outs, publish=publish)


async def fix_completion(ctx: Context, process_id: uuid.UUID) -> Outcome[FixOut]:
    """Repair data from before the cascade rule: complete the unfinished substeps of completed steps."""
    process, events = await _process_for_work(ctx, process_id)
    rows = await processes.unfinished_substeps_of_completed_steps(ctx.db, process.id)
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
