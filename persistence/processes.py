"""Processes (templates and live checklists): their steps and substeps, and the events each is announced to."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from persistence.models import Event, Process, Step, SubStep

# The `…_for_work` reads lock the row being changed and, in the same statement, evaluate `workable` (the caller's
# access rule on Process, passed in by the handler) and list the events using the process (where the change is
# announced, by id): one row per linked event, or one row with no event.


async def process_for_work(db: AsyncSession, process_id: uuid.UUID, *,
                           workable: ColumnElement[bool]) -> tuple[Process, bool] | None:
    """The process, locked, and whether `workable` admits the caller."""
    row = (await db.execute(
        select(Process, workable).where(Process.id == process_id)
        .with_for_update(of=Process).execution_options(populate_existing=True)
    )).one_or_none()
    return None if row is None else (row[0], bool(row[1]))


async def linked_event_ids(db: AsyncSession, process_id: uuid.UUID) -> list[uuid.UUID]:
    """The events using the process."""
    return list((await db.scalars(select(Event.id).where(Event.process_id == process_id))).all())


async def any_linked_event(db: AsyncSession, process_id: uuid.UUID, *, where: ColumnElement[bool]) -> bool:
    """Whether an event using the process meets `where` (the caller's rule on Event)."""
    found = await db.scalar(select(Event.id).where(Event.process_id == process_id, where).limit(1))
    return found is not None


def _work_rows(rows: Sequence[tuple[object, bool | None, uuid.UUID | None]]) -> tuple[bool, list[uuid.UUID]]:
    return bool(rows[0][1]), [eid for _, _, eid in rows if eid is not None]


async def step_for_work(db: AsyncSession, step_id: uuid.UUID, *,
                        workable: ColumnElement[bool]) -> tuple[Step, bool, list[uuid.UUID]] | None:
    """The step, locked (its process is not loaded), whether `workable` admits the caller, the linked events."""
    rows = (await db.execute(
        select(Step, workable, Event.id)
        .join(Process, Step.process_id == Process.id).outerjoin(Event, Event.process_id == Process.id)
        .where(Step.id == step_id).order_by(Event.id)
        .with_for_update(of=Step).execution_options(populate_existing=True)
    )).tuples().all()
    if not rows:
        return None
    return (rows[0][0], *_work_rows(rows))


async def substep_for_work(db: AsyncSession, substep_id: uuid.UUID, *,
                           workable: ColumnElement[bool]) -> tuple[SubStep, bool, list[uuid.UUID]] | None:
    """As `step_for_work`, for a substep."""
    rows = (await db.execute(
        select(SubStep, workable, Event.id)
        .join(Step, SubStep.step_id == Step.id).join(Process, Step.process_id == Process.id)
        .outerjoin(Event, Event.process_id == Process.id)
        .where(SubStep.id == substep_id).order_by(Event.id)
        .with_for_update(of=SubStep).execution_options(populate_existing=True)
    )).tuples().all()
    if not rows:
        return None
    return (rows[0][0], *_work_rows(rows))


async def substeps_for_work(db: AsyncSession, substep_ids: Sequence[uuid.UUID], *,
                            workable: ColumnElement[bool]) -> dict[uuid.UUID, tuple[SubStep, uuid.UUID, bool]]:
    """These substeps, locked, by id: each with its process's id and whether `workable` admits the caller."""
    rows = (await db.execute(
        select(SubStep, Process.id, workable)
        .join(Step, SubStep.step_id == Step.id).join(Process, Step.process_id == Process.id)
        .where(SubStep.id.in_(substep_ids)).with_for_update(of=SubStep).execution_options(populate_existing=True)
    )).tuples().all()
    return {sub.id: (sub, pid, bool(ok)) for sub, pid, ok in rows}


async def events_by_process(db: AsyncSession, process_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[uuid.UUID]]:
    """The events using each of these processes (processes without events are left out)."""
    linked: dict[uuid.UUID, list[uuid.UUID]] = {}
    for eid, pid in (await db.execute(select(Event.id, Event.process_id)
                                      .where(Event.process_id.in_(process_ids)))).tuples().all():
        if pid is not None:
            linked.setdefault(pid, []).append(eid)
    return linked


def step_process(step_id: uuid.UUID) -> Select[uuid.UUID]:
    """Selects the step's process id (for a statement to compose)."""
    return select(Step.process_id).where(Step.id == step_id)


def substep_process(substep_id: uuid.UUID) -> Select[uuid.UUID]:
    """Selects the substep's process id (for a statement to compose)."""
    return select(Step.process_id).join(SubStep, SubStep.step_id == Step.id).where(SubStep.id == substep_id)


async def substeps_of(db: AsyncSession, step_id: uuid.UUID) -> list[SubStep]:
    return list((await db.scalars(select(SubStep).where(SubStep.step_id == step_id))).all())


async def top_step_order(db: AsyncSession, process_id: uuid.UUID) -> int | None:
    """The highest step order in the process (None without steps)."""
    return await db.scalar(select(func.max(Step.order)).where(Step.process_id == process_id))


async def top_substep_order(db: AsyncSession, step_id: uuid.UUID) -> int | None:
    return await db.scalar(select(func.max(SubStep.order)).where(SubStep.step_id == step_id))


async def unfinished_substeps_of_completed_steps(db: AsyncSession,
                                                 process_id: uuid.UUID) -> Sequence[tuple[SubStep, Step]]:
    """Locked: the substeps not completed under steps that are (data from before the completion cascade)."""
    return (await db.execute(
        select(SubStep, Step).join(Step, SubStep.step_id == Step.id)
        .where(Step.process_id == process_id, Step.completed.is_(True), SubStep.completed.is_not(True))
        .with_for_update(of=SubStep)
    )).tuples().all()


async def add_flushed(db: AsyncSession, row: Step | SubStep) -> None:
    """Insert the row now (its id and defaults are needed in the answer)."""
    db.add(row)
    await db.flush()
