"""What weekly planning reads: a user's directories, the templates in them that a rule admits, their step counts."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from persistence.models import Directory, Process, Step


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
