"""What the market returns: collections, library directories and library processes, batch-loaded."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from handlers.context import Context
from handlers.links import ServedLink
from handlers.schema import UTC, Out
from persistence.models import Collection, Directory, Process, Step


class Author(Out):
    name: str
    avatar: ServedLink


class LibStepOut(Out):
    title: str
    description: str


class LibProcessOut(Out):
    id: uuid.UUID
    title: str
    description: str
    category: str
    icon: str
    color: str | None
    benefits: list[str]
    steps: list[LibStepOut]
    saves: int
    created_by: str
    created_at: UTC


class LibDirectoryOut(Out):
    id: uuid.UUID
    name: str
    description: str
    color: str
    icon: str | None
    processes: list[LibProcessOut]


class CollectionOut(Out):
    id: uuid.UUID
    title: str
    description: str
    author: Author
    categories: list[str]
    saves: int
    directories: list[LibDirectoryOut]
    is_library: bool
    source_id: uuid.UUID | None
    created_by_id: uuid.UUID | None
    created_at: UTC
    updated_at: UTC | None


# By name, not creation time: a saved copy is created in one instant, so its rows share one timestamp.
DIRECTORY_ORDER = (func.lower(Directory.name), Directory.id)
PROCESS_ORDER = (func.lower(Process.title), Process.id)


# ---- building responses (batch-loaded: a fixed number of queries per page) ------------------------------


def lib_process(p: Process) -> LibProcessOut:
    md = p.process_metadata or {}
    saves = md.get("saves", 0)
    steps = [LibStepOut(title=s.content, description=", ".join(sub.content for sub in s.sub_steps))
             for s in p.steps]
    return LibProcessOut(
        id=p.id, title=p.title, description=p.description or "", category=p.category or "",
        icon=str(md.get("icon") or ""), color=p.color, benefits=[str(b) for b in md.get("benefits") or []],
        steps=steps, saves=saves if isinstance(saves, int) else 0, created_by=str(md.get("created_by") or ""),
        created_at=p.created_at,
    )


async def directory_outs(ctx: Context, directories: Sequence[Directory]) -> list[LibDirectoryOut]:
    ids = [d.id for d in directories]
    processes: list[Process] = []
    if ids:
        processes = list((await ctx.db.scalars(
            select(Process).where(Process.directory_id.in_(ids), Process.is_template.is_(True))
            .options(selectinload(Process.steps).selectinload(Step.sub_steps))
            .order_by(*PROCESS_ORDER)
        )).all())
    by_dir: dict[uuid.UUID, list[LibProcessOut]] = {}
    owner = {d.id: d.created_by_id for d in directories}
    for p in processes:
        # Only the directory owner's templates belong to the collection (library rows are owned by nobody).
        if p.directory_id is not None and p.created_by_id == owner[p.directory_id]:
            by_dir.setdefault(p.directory_id, []).append(lib_process(p))
    return [LibDirectoryOut(id=d.id, name=d.name, description=d.description or "", color=d.color or "",
                            icon=d.icon, processes=by_dir.get(d.id, [])) for d in directories]


async def collection_outs(ctx: Context, collections: Sequence[Collection]) -> list[CollectionOut]:
    ids = [c.id for c in collections]
    directories: list[Directory] = []
    if ids:
        directories = list((await ctx.db.scalars(
            select(Directory).where(Directory.collection_id.in_(ids)).order_by(*DIRECTORY_ORDER)
        )).all())
    dir_outs = dict(zip([d.id for d in directories], await directory_outs(ctx, directories), strict=True))
    by_collection: dict[uuid.UUID, list[LibDirectoryOut]] = {}
    for d in directories:
        assert d.collection_id is not None
        by_collection.setdefault(d.collection_id, []).append(dir_outs[d.id])
    out = []
    for c in collections:
        md = c.collection_metadata or {}
        raw = md.get("author")
        author: dict[str, Any] = raw if isinstance(raw, dict) else {}
        out.append(CollectionOut(
            id=c.id, title=c.title, description=c.description or "",
            author=Author(name=str(author.get("name") or ""), avatar=str(author.get("avatar") or "")),
            categories=categories(c), saves=c.saves or 0, directories=by_collection.get(c.id, []),
            is_library=c.is_library, source_id=c.source_id, created_by_id=c.created_by_id,
            created_at=c.created_at, updated_at=c.updated_at,
        ))
    return out


def categories(c: Collection) -> list[str]:
    cats = (c.collection_metadata or {}).get("categories") or []
    return [str(x) for x in cats] if isinstance(cats, list) else []
