"""Processes (templates and live checklists): their steps and substeps, and the events each is announced to."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any, Protocol, cast

from sqlalchemy import ColumnElement, Select, case, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased, selectinload

from persistence.enums import ParticipantStatus
from persistence.models import Directory, Event, EventParticipant, Process, Step, SubStep

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


async def add_substep(db: AsyncSession, sub: SubStep) -> None:
    """Insert a substep under an existing step (locked by the caller), now, and write the step's row with its own
    values: the row's new version tells a step change checked against an earlier read (persistence.step_writes)
    that the step's substeps moved on, which that change's own snapshot may not show. Every substep added to an
    existing step goes through here."""
    await add_flushed(db, sub)
    await db.execute(update(Step).where(Step.id == sub.step_id).values(updated_at=Step.updated_at)
                     .execution_options(synchronize_session=False))


# ---- templates and instances as listed and shown ---------------------------------------------------------


class ListedProcess(Protocol):
    """A row of `process_page`: the process's columns and its template's title."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def title(self) -> str: ...
    @property
    def description(self) -> str | None: ...
    @property
    def color(self) -> str | None: ...
    @property
    def category(self) -> str | None: ...
    @property
    def favorite(self) -> bool: ...
    @property
    def process_metadata(self) -> dict[str, Any] | None: ...
    @property
    def created_by_id(self) -> uuid.UUID | None: ...
    @property
    def directory_id(self) -> uuid.UUID | None: ...
    @property
    def last_updated(self) -> datetime | None: ...
    @property
    def is_template(self) -> bool: ...
    @property
    def template_id(self) -> uuid.UUID | None: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def updated_at(self) -> datetime | None: ...
    @property
    def template_title(self) -> str | None: ...


_TEMPLATE = aliased(Process)
_LISTED = (Process.id, Process.title, Process.description, Process.color, Process.category, Process.favorite,
           Process.process_metadata, Process.created_by_id, Process.directory_id, Process.last_updated,
           Process.is_template, Process.template_id, Process.created_at, Process.updated_at,
           _TEMPLATE.title.label("template_title"))


async def process_page(db: AsyncSession, *, visible: ColumnElement[bool] | None = None,
                       owner_id: uuid.UUID | None = None, is_template: bool | None = None,
                       template_id: uuid.UUID | None = None, category: str | None = None,
                       favorite: bool | None = None, offset: int, limit: int) -> Sequence[ListedProcess]:
    """Plain rows (no ORM objects), newest first, each with its template's title (an outer join).

    Scoped by `visible` (the caller's rule) or to `owner_id`'s own processes; the other arguments narrow."""
    stmt = select(*_LISTED).outerjoin(_TEMPLATE, _TEMPLATE.id == Process.template_id)
    if visible is not None:
        stmt = stmt.where(visible)
        if is_template is not None:
            stmt = stmt.where(Process.is_template.is_(is_template))
    else:
        stmt = stmt.where(Process.created_by_id == owner_id, Process.is_template.is_(bool(is_template)))
        if template_id is not None:
            stmt = stmt.where(Process.template_id == template_id)
    if category:
        stmt = stmt.where(Process.category == category)
    if favorite is not None:
        stmt = stmt.where(Process.favorite.is_(favorite))
    conn = await db.connection()
    rows = (await conn.execute(stmt.order_by(Process.created_at.desc(), Process.id).offset(offset).limit(limit)))
    return cast(Sequence[ListedProcess], rows.all())


async def instances_of(db: AsyncSession, template_ids: Sequence[uuid.UUID], *,
                       visible: ColumnElement[bool]) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """(instance id, template id) of these templates' instances that `visible` admits, oldest first."""
    rows = await db.execute(
        select(Process.id, Process.template_id)
        .where(Process.template_id.in_(template_ids), visible)
        .order_by(Process.created_at, Process.id)
    )
    return [(pid, tid) for pid, tid in rows.all() if tid is not None]


async def titles(db: AsyncSession, process_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, str]:
    found = await db.execute(select(Process.id, Process.title).where(Process.id.in_(process_ids)))
    return {pid: title for pid, title in found.all()}


async def steps_of(db: AsyncSession, process_ids: Sequence[uuid.UUID]) -> Sequence[Step]:
    """The processes' steps (unordered: the caller sorts)."""
    return (await db.scalars(select(Step).where(Step.process_id.in_(process_ids)))).all()


async def substeps_in(db: AsyncSession, step_ids: Sequence[uuid.UUID]) -> Sequence[SubStep]:
    return (await db.scalars(select(SubStep).where(SubStep.step_id.in_(step_ids)))).all()


async def events_using(db: AsyncSession, process_ids: Sequence[uuid.UUID], *, visible: ColumnElement[bool],
                       limit: int) -> Sequence[Event]:
    """The events `visible` admits that use these processes, by start time."""
    return (await db.scalars(
        select(Event).where(Event.process_id.in_(process_ids), visible)
        .order_by(Event.start_time, Event.id).limit(limit)
    )).all()


async def attending_counts(db: AsyncSession, event_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, int]:
    """Participants who have not declined, per event (events without any are left out)."""
    rows = await db.execute(
        select(EventParticipant.event_id, func.count())
        .where(EventParticipant.event_id.in_(event_ids), EventParticipant.status != ParticipantStatus.DECLINED)
        .group_by(EventParticipant.event_id)
    )
    return {eid: int(n) for eid, n in rows.all()}


async def step_progress(db: AsyncSession, process_ids: Collection[uuid.UUID]) -> list[tuple[uuid.UUID, int, int]]:
    """(process id, steps, completed steps) per process with steps."""
    rows = await db.execute(
        select(Step.process_id, func.count(Step.id), func.sum(case((Step.completed.is_(True), 1), else_=0)))
        .where(Step.process_id.in_(process_ids))
        .group_by(Step.process_id)
    )
    return [(pid, int(total), int(done or 0)) for pid, total, done in rows.all()]


async def template_with_steps(db: AsyncSession, template_id: uuid.UUID) -> Process | None:
    """The template with its steps and their substeps loaded."""
    return await db.scalar(
        select(Process).where(Process.id == template_id, Process.is_template.is_(True))
        .options(selectinload(Process.steps).selectinload(Step.sub_steps))
    )


# ---- directories -----------------------------------------------------------------------------------------


async def templates_by_directory(db: AsyncSession,
                                 directory_ids: Sequence[uuid.UUID]) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """(template id, directory id) of the templates in these directories, oldest first."""
    found = await db.execute(
        select(Process.id, Process.directory_id)
        .where(Process.directory_id.in_(directory_ids), Process.is_template.is_(True))
        .order_by(Process.created_at, Process.id)
    )
    return [(pid, did) for pid, did in found.all() if did is not None]


async def directory_page(db: AsyncSession, owner_id: uuid.UUID, parent_id: uuid.UUID | None, *,
                         with_library: bool, offset: int, limit: int) -> Sequence[Directory]:
    """The owner's directories directly under `parent_id` (None: top level), oldest first; directories
    copied from the library only `with_library`."""
    stmt = select(Directory).where(Directory.created_by_id == owner_id)
    stmt = stmt.where(Directory.parent_id.is_(None) if parent_id is None else Directory.parent_id == parent_id)
    if not with_library:
        stmt = stmt.where(Directory.is_template.is_not(True))
    return (await db.scalars(stmt.order_by(Directory.created_at, Directory.id).offset(offset).limit(limit))).all()


async def processes_in(db: AsyncSession, directory_id: uuid.UUID, *, visible: ColumnElement[bool],
                       limit: int) -> Sequence[Process]:
    """The processes in the directory that `visible` (the caller's rule) admits, oldest first."""
    return (await db.scalars(
        select(Process).where(Process.directory_id == directory_id, visible)
        .order_by(Process.created_at, Process.id).limit(limit)
    )).all()


async def subdirectories(db: AsyncSession, directory_id: uuid.UUID, owner_id: uuid.UUID, *,
                         limit: int) -> Sequence[Directory]:
    """The owner's directories directly under this one, oldest first."""
    return (await db.scalars(
        select(Directory).where(Directory.parent_id == directory_id, Directory.created_by_id == owner_id)
        .order_by(Directory.created_at, Directory.id).limit(limit)
    )).all()


async def move_processes(db: AsyncSession, directory_id: uuid.UUID, to: uuid.UUID | None) -> None:
    """Every process in the directory moves to `to` (None: out of any directory)."""
    await db.execute(
        update(Process).where(Process.directory_id == directory_id).values(directory_id=to)
        .execution_options(synchronize_session=False)
    )


async def move_subdirectories(db: AsyncSession, directory_id: uuid.UUID, to: uuid.UUID | None) -> None:
    """Every directory directly under this one moves under `to` (None: to the top level)."""
    await db.execute(
        update(Directory).where(Directory.parent_id == directory_id).values(parent_id=to)
        .execution_options(synchronize_session=False)
    )


async def delete_flushed(db: AsyncSession, row: Process | Directory) -> None:
    """Delete the row now, with what the ORM cascades (a process's steps and substeps)."""
    await db.delete(row)
    await db.flush()


# ---- what weekly planning reads: a user's directories, the templates in them a rule admits ---------------


async def directory(db: AsyncSession, directory_id: uuid.UUID) -> Directory | None:
    return await db.get(Directory, directory_id)


async def process(db: AsyncSession, process_id: uuid.UUID) -> Process | None:
    return await db.get(Process, process_id)


async def directories_of(db: AsyncSession, user_id: uuid.UUID) -> Sequence[Directory]:
    """The directories the user created, by name."""
    return (await db.scalars(select(Directory).where(Directory.created_by_id == user_id)
                             .order_by(Directory.name, Directory.id))).all()


async def templates_in(db: AsyncSession, directory_ids: Sequence[uuid.UUID], *,
                       usable: ColumnElement[bool]) -> Sequence[Process]:
    """The templates in these directories that `usable` (the caller's rule) admits, by title."""
    return (await db.scalars(
        select(Process).where(Process.directory_id.in_(directory_ids), Process.is_template.is_(True), usable)
        .order_by(Process.title, Process.id))).all()


async def template(db: AsyncSession, template_id: uuid.UUID, *, usable: ColumnElement[bool]) -> Process | None:
    return await db.scalar(select(Process).where(Process.id == template_id, Process.is_template.is_(True), usable))


async def step_counts(db: AsyncSession, process_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, int]:
    """How many steps each process has (processes without steps are left out)."""
    if not process_ids:
        return {}
    rows = await db.execute(select(Step.process_id, func.count()).where(Step.process_id.in_(process_ids))
                            .group_by(Step.process_id))
    return {pid: int(n) for pid, n in rows.all()}
