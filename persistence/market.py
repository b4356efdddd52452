"""The market: collections, the directories they hold and the template processes (with steps) in those."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import ColumnElement, Select, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from persistence.models import Collection, Directory, Process, Step

# By name, not creation time: a saved copy is created in one instant, so its rows share one timestamp.
DIRECTORY_ORDER = (func.lower(Directory.name), Directory.id)
PROCESS_ORDER = (func.lower(Process.title), Process.id)
_WITH_STEPS = selectinload(Process.steps).selectinload(Step.sub_steps)


# ---- collections ---------------------------------------------------------------------------------------


async def collection(db: AsyncSession, collection_id: uuid.UUID, *, visible: ColumnElement[bool],
                     for_update: bool = False) -> Collection | None:
    """The collection if `visible` (the caller's access rule) admits it; locked for update when asked."""
    stmt = select(Collection).where(Collection.id == collection_id, visible)
    return await db.scalar(stmt.with_for_update() if for_update else stmt)


async def collections(db: AsyncSession, *, visible: ColumnElement[bool]) -> Sequence[Collection]:
    """Every collection `visible` admits: library ones first, then by creation."""
    return (await db.scalars(
        select(Collection).where(visible)
        .order_by(Collection.is_library.desc(), Collection.created_at, Collection.id)
    )).all()


async def saved_copy(db: AsyncSession, source_id: uuid.UUID, user_id: uuid.UUID) -> Collection | None:
    """The user's earliest private copy of library collection `source_id`."""
    return (await db.scalars(
        select(Collection).where(Collection.source_id == source_id, Collection.created_by_id == user_id,
                                 Collection.is_library.is_(False))
        .order_by(Collection.created_at).limit(1))).first()


def add_collection(db: AsyncSession, row: Collection) -> None:
    """Staged: written with the session's next flush."""
    db.add(row)


async def count_save(db: AsyncSession, collection_id: uuid.UUID) -> None:
    """One more save, counted in the database (concurrent saves of other collections do not race)."""
    await db.execute(update(Collection).where(Collection.id == collection_id).values(saves=Collection.saves + 1))


async def delete_collection(db: AsyncSession, collection_id: uuid.UUID) -> None:
    await db.execute(delete(Collection).where(Collection.id == collection_id))


async def delete_private_collections(db: AsyncSession, user_id: uuid.UUID) -> None:
    """The user's own collections and saved copies (never a library collection)."""
    await db.execute(delete(Collection).where(Collection.created_by_id == user_id, Collection.is_library.is_(False)))


# ---- directories ----------------------------------------------------------------------------------------


def library_directories() -> Select[Directory]:
    """Directories of library collections (composed further: ordered and paged, or narrowed to ids)."""
    return (select(Directory).join(Collection, Directory.collection_id == Collection.id)
            .where(Collection.is_library.is_(True)))


async def library_directory_page(db: AsyncSession, *, offset: int, limit: int) -> Sequence[Directory]:
    return (await db.scalars(library_directories().order_by(*DIRECTORY_ORDER).offset(offset).limit(limit))).all()


async def directories_in(db: AsyncSession, collection_ids: Sequence[uuid.UUID]) -> Sequence[Directory]:
    """The directories of these collections, by name."""
    if not collection_ids:
        return []
    return (await db.scalars(
        select(Directory).where(Directory.collection_id.in_(collection_ids)).order_by(*DIRECTORY_ORDER)
    )).all()


async def directory_for_update(db: AsyncSession, directory_id: uuid.UUID) -> Directory | None:
    return await db.get(Directory, directory_id, with_for_update=True)


async def unowned_directory_ids(db: AsyncSession, collection_id: uuid.UUID) -> list[uuid.UUID]:
    """The collection's directories that belong to nobody (library content)."""
    return list((await db.scalars(
        select(Directory.id).where(Directory.collection_id == collection_id, Directory.created_by_id.is_(None))
    )).all())


def add_directory(db: AsyncSession, row: Directory) -> None:
    """Staged: written with the session's next flush."""
    db.add(row)


async def delete_unowned_content(db: AsyncSession, directory_ids: Sequence[uuid.UUID]) -> None:
    """These directories, and the processes in them that belong to nobody."""
    if not directory_ids:
        return
    await db.execute(delete(Process).where(Process.directory_id.in_(directory_ids), Process.created_by_id.is_(None)))
    await db.execute(delete(Directory).where(Directory.id.in_(directory_ids)))


# ---- template processes (steps and substeps loaded) ----------------------------------------------------------


async def templates_in(db: AsyncSession, directory_ids: Sequence[uuid.UUID], *,
                       unowned_only: bool = False) -> Sequence[Process]:
    """The template processes in these directories (only those belonging to nobody if asked), by title."""
    if not directory_ids:
        return []
    stmt = select(Process).where(Process.directory_id.in_(directory_ids), Process.is_template.is_(True))
    if unowned_only:
        stmt = stmt.where(Process.created_by_id.is_(None))
    return (await db.scalars(stmt.options(_WITH_STEPS).order_by(*PROCESS_ORDER))).all()


async def library_templates(db: AsyncSession, *, category: str | None, offset: int,
                            limit: int) -> Sequence[Process]:
    """Templates in library directories belonging to nobody, optionally of one category (any case), by title."""
    library_dirs = library_directories().with_only_columns(Directory.id)
    stmt = (select(Process).where(Process.is_template.is_(True), Process.created_by_id.is_(None),
                                  Process.directory_id.in_(library_dirs))
            .options(_WITH_STEPS))
    if category:
        stmt = stmt.where(func.lower(Process.category) == category.lower())
    return (await db.scalars(stmt.order_by(*PROCESS_ORDER).offset(offset).limit(limit))).all()


def add_template(db: AsyncSession, row: Process) -> None:
    """Staged with its steps and substeps: written with the session's next flush."""
    db.add(row)


# ---- seeding the library (looked up by name: a second run finds what the first created) ---------------------


async def library_collection(db: AsyncSession, title: str) -> Collection | None:
    """A library collection with this title (any one, if there were several)."""
    return (await db.scalars(select(Collection).where(Collection.is_library.is_(True), Collection.title == title)
                             .limit(1))).first()


async def directory_named(db: AsyncSession, collection_id: uuid.UUID, name: str) -> Directory | None:
    """A directory of the collection with this name (any one, if there were several)."""
    return (await db.scalars(select(Directory).where(Directory.collection_id == collection_id, Directory.name == name)
                             .limit(1))).first()


async def template_titles(db: AsyncSession, directory_id: uuid.UUID) -> set[str]:
    """The titles of the template processes in the directory."""
    return set((await db.scalars(select(Process.title).where(
        Process.directory_id == directory_id, Process.is_template.is_(True)))).all())
