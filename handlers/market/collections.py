"""The market: the public library of collections, and each user's private collections and saved copies.

Visibility (the original listed every user's saved copies to everyone and let anyone delete anything):
- a library collection (`is_library`) is visible to every signed-in user and changed only by admins;
- any other collection is private to its creator (admins may also see and change it); others get 404;
- saving a library collection deep-copies its directories, template processes, steps and substeps into the
  caller's workspace as a private collection with `sourceId` = the library collection. Saving again returns
  the existing copy and does not count a second save.
"""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import Field
from sqlalchemy import ColumnElement, Select, delete, func, or_, select, update
from sqlalchemy.orm import selectinload

from handlers.context import Context
from handlers.links import OptionalLink
from handlers.market.shapes import (
    DIRECTORY_ORDER,
    PROCESS_ORDER,
    CollectionOut,
    LibDirectoryOut,
    LibProcessOut,
    categories,
    collection_outs,
    directory_outs,
    lib_process,
)
from handlers.schema import In, PageQuery
from persistence.errors import BadRequest, Forbidden, Invalid, NotFound
from persistence.models import Collection, Directory, Process, Step, SubStep

# ---- inputs ------------------------------------------------------------------------------------------


class MarketQuery(PageQuery):
    category: str | None = Field(default=None, max_length=100)
    """only templates of this category"""


class LibStepIn(In):
    title: str = Field(min_length=1, max_length=2000)
    """the step's text"""
    description: str | None = Field(default=None, max_length=2000)
    """more detail, kept with the step"""


class LibProcessIn(In):
    title: str = Field(min_length=1, max_length=300)
    """the template's title"""
    description: str | None = Field(default=None, max_length=5000)
    """what the procedure achieves"""
    category: str | None = Field(default=None, max_length=100)
    """a category label, e.g. `Engineering`"""
    color: str | None = Field(default=None, max_length=32)
    """a display colour, e.g. `#3b82f6`"""
    icon: str | None = Field(default=None, max_length=64)
    """an icon name for the frontend"""
    benefits: list[str] = Field(default_factory=list, max_length=20)
    """short benefit statements shown with the template"""
    steps: list[LibStepIn] = Field(default_factory=list, max_length=100)
    """the template's steps, in order"""


class LibDirectoryIn(In):
    name: str = Field(min_length=1, max_length=200)
    """the directory's name"""
    description: str | None = Field(default=None, max_length=5000)
    """what it holds"""
    color: str | None = Field(default=None, max_length=32)
    """a display colour, e.g. `#3b82f6`"""
    icon: str | None = Field(default=None, max_length=64)
    """an icon name for the frontend"""
    processes: list[LibProcessIn] = Field(default_factory=list, max_length=50)
    """template processes to create in it"""


class AuthorIn(In):
    name: str = Field(default="", max_length=200)
    """the author's name"""
    avatar: OptionalLink = None
    """an http(s) or /uploads/ link to the author's picture"""


class CollectionCreate(In):
    title: str = Field(min_length=1, max_length=300)
    """the collection's title"""
    description: str | None = Field(default=None, max_length=5000)
    """what the collection is for"""
    categories: list[str] = Field(default_factory=list, max_length=20)
    """category labels"""
    # Ids of the caller's own directories to include, or new directories with their templates.
    directories: list[uuid.UUID | LibDirectoryIn] = Field(default_factory=list, max_length=50)
    """ids of my directories to include, or new directories with their templates"""
    is_library: bool = False
    """publish it to the library, where every signed-in user sees it"""


class CollectionUpdate(In):
    title: str | None = Field(default=None, min_length=1, max_length=300)
    """the collection's new title"""
    description: str | None = Field(default=None, max_length=5000)
    """what the collection is for"""
    categories: list[str] | None = Field(default=None, max_length=20)
    """category labels (replaces the list)"""
    author: AuthorIn | None = None
    """the author shown with the collection"""


# ---- access --------------------------------------------------------------------------------------------


def _visible(ctx: Context) -> ColumnElement[bool]:
    if ctx.user.is_admin:
        return Collection.id.is_not(None)
    return or_(Collection.is_library.is_(True), Collection.created_by_id == ctx.user_id)


async def _collection(ctx: Context, collection_id: uuid.UUID, *, for_update: bool = False) -> Collection:
    stmt = select(Collection).where(Collection.id == collection_id, _visible(ctx))
    found = await ctx.db.scalar(stmt.with_for_update() if for_update else stmt)
    if found is None:
        raise NotFound("collection", collection_id)
    return found


async def _collection_to_change(ctx: Context, collection_id: uuid.UUID) -> Collection:
    c = await _collection(ctx, collection_id, for_update=True)
    if not ctx.user.is_admin and c.created_by_id != ctx.user_id:
        raise Forbidden("only the collection's owner or an administrator may change it")
    return c


# ---- reads ---------------------------------------------------------------------------------------------


async def list_collections(ctx: Context, q: MarketQuery) -> list[CollectionOut]:
    """Library collections first, then the caller's own collections and saved copies."""
    offset, limit = q.window(ctx.limits.max_page_size)
    mine_or_library = or_(Collection.is_library.is_(True), Collection.created_by_id == ctx.user_id)
    rows = list((await ctx.db.scalars(
        select(Collection).where(mine_or_library)
        .order_by(Collection.is_library.desc(), Collection.created_at, Collection.id)
    )).all())
    if q.category:
        wanted = q.category.lower()
        # Categories live in the JSON metadata; the visible set is small, so filter here, portably.
        rows = [c for c in rows if wanted in (x.lower() for x in categories(c))]
    return await collection_outs(ctx, rows[offset:offset + limit])


async def get_collection(ctx: Context, collection_id: uuid.UUID) -> CollectionOut:
    return (await collection_outs(ctx, [await _collection(ctx, collection_id)]))[0]


async def collection_directories(ctx: Context, collection_id: uuid.UUID) -> list[LibDirectoryOut]:
    return (await collection_outs(ctx, [await _collection(ctx, collection_id)]))[0].directories


def _library_directories() -> Select[Directory]:
    return (select(Directory).join(Collection, Directory.collection_id == Collection.id)
            .where(Collection.is_library.is_(True)))


async def library_directories(ctx: Context, q: PageQuery) -> list[LibDirectoryOut]:
    offset, limit = q.window(ctx.limits.max_page_size)
    rows = (await ctx.db.scalars(
        _library_directories().order_by(*DIRECTORY_ORDER).offset(offset).limit(limit)
    )).all()
    return await directory_outs(ctx, rows)


async def library_processes(ctx: Context, q: MarketQuery) -> list[LibProcessOut]:
    offset, limit = q.window(ctx.limits.max_page_size)
    library_dirs = _library_directories().with_only_columns(Directory.id)
    stmt = (select(Process).where(Process.is_template.is_(True), Process.created_by_id.is_(None),
                                  Process.directory_id.in_(library_dirs))
            .options(selectinload(Process.steps).selectinload(Step.sub_steps)))
    if q.category:
        stmt = stmt.where(func.lower(Process.category) == q.category.lower())
    rows = (await ctx.db.scalars(stmt.order_by(*PROCESS_ORDER).offset(offset).limit(limit))).all()
    return [lib_process(p) for p in rows]


# ---- writes --------------------------------------------------------------------------------------------


def _copy_process(p: Process, owner_id: uuid.UUID | None, directory_id: uuid.UUID, ctx: Context) -> Process:
    md = {k: v for k, v in (p.process_metadata or {}).items() if k not in ("source", "saves")}
    copy = Process(title=p.title, description=p.description, color=p.color, category=p.category, favorite=False,
                   is_template=True, created_by_id=owner_id, directory_id=directory_id, last_updated=ctx.now,
                   process_metadata=md | {"copied_from": str(p.id)}, created_at=ctx.now)
    for s in p.steps:
        step = Step(content=s.content, order=s.order, due_date=s.due_date, completed=False, created_at=ctx.now)
        step.sub_steps = [SubStep(content=x.content, order=x.order, completed=False, created_at=ctx.now)
                          for x in s.sub_steps]
        copy.steps.append(step)
    return copy


async def save_collection(ctx: Context, collection_id: uuid.UUID) -> CollectionOut:
    # The row lock serializes concurrent saves of one collection: one copy per user, an exact save count.
    lib = await _collection(ctx, collection_id, for_update=True)
    if not lib.is_library:
        raise BadRequest("only library collections can be saved; this collection is already private")
    existing = (await ctx.db.scalars(
        select(Collection).where(Collection.source_id == lib.id, Collection.created_by_id == ctx.user_id,
                                 Collection.is_library.is_(False))
        .order_by(Collection.created_at).limit(1))).first()
    if existing is not None:
        return (await collection_outs(ctx, [existing]))[0]
    copy = Collection(id=uuid.uuid4(), title=lib.title, description=lib.description, saves=0, is_library=False,
                      source_id=lib.id, created_by_id=ctx.user_id, created_at=ctx.now,
                      collection_metadata=dict(lib.collection_metadata or {}) | {"duplicated_from": str(lib.id)})
    ctx.db.add(copy)
    directories = (await ctx.db.scalars(
        select(Directory).where(Directory.collection_id == lib.id).order_by(*DIRECTORY_ORDER)
    )).all()
    templates = (await ctx.db.scalars(
        select(Process).where(Process.directory_id.in_([d.id for d in directories]),
                              Process.is_template.is_(True), Process.created_by_id.is_(None))
        .options(selectinload(Process.steps).selectinload(Step.sub_steps))
        .order_by(*PROCESS_ORDER)
    )).all()
    for d in directories:
        md = {k: v for k, v in (d.directory_metadata or {}).items() if k != "source"}
        # Not marked as library (is_template=False): the copy is ordinary content in the saver's workspace.
        new_dir = Directory(id=uuid.uuid4(), name=d.name, description=d.description, color=d.color, icon=d.icon,
                            is_template=False, created_by_id=ctx.user_id, collection_id=copy.id,
                            directory_metadata=md | {"copied_from": str(d.id)}, created_at=ctx.now)
        ctx.db.add(new_dir)
        for p in templates:
            if p.directory_id == d.id:
                ctx.db.add(_copy_process(p, ctx.user_id, new_dir.id, ctx))
    for p in templates:
        md = dict(p.process_metadata or {})
        saves = md.get("saves", 0)
        p.process_metadata = md | {"saves": (saves if isinstance(saves, int) else 0) + 1}
    await ctx.db.execute(update(Collection).where(Collection.id == lib.id).values(saves=Collection.saves + 1))
    await ctx.db.flush()
    return (await collection_outs(ctx, [copy]))[0]


async def create_collection(ctx: Context, data: CollectionCreate) -> CollectionOut:
    if data.is_library and not ctx.user.is_admin:
        raise Forbidden("only administrators may publish library collections")
    owner_id = None if data.is_library else ctx.user_id
    author = {"name": "Convers.me Team", "avatar": "/profile/profile.jpg"} if data.is_library else {
        "name": ctx.user.name, "avatar": ctx.user.profile_image or ""}
    collection = Collection(id=uuid.uuid4(), title=data.title, description=data.description, saves=0,
                            is_library=data.is_library, created_by_id=owner_id, created_at=ctx.now,
                            collection_metadata={"author": author, "categories": list(data.categories)})
    ctx.db.add(collection)
    await ctx.db.flush()
    for item in data.directories:
        if isinstance(item, uuid.UUID):
            if data.is_library:
                raise Invalid("a library collection takes new directories, not ids of existing ones")
            directory = await ctx.db.get(Directory, item, with_for_update=True)
            if directory is None or directory.created_by_id != ctx.user_id:
                raise NotFound("directory", item)
            directory.collection_id = collection.id
            continue
        new_dir = Directory(id=uuid.uuid4(), name=item.name, description=item.description, color=item.color,
                            icon=item.icon, is_template=data.is_library, created_by_id=owner_id,
                            collection_id=collection.id, created_at=ctx.now,
                            directory_metadata={"source": "library"} if data.is_library else {})
        ctx.db.add(new_dir)
        for p in item.processes:
            ctx.db.add(_new_template(p, owner_id, new_dir.id, data.is_library, ctx))
    await ctx.db.flush()
    return (await collection_outs(ctx, [collection]))[0]


def _new_template(p: LibProcessIn, owner_id: uuid.UUID | None, directory_id: uuid.UUID, library: bool,
                  ctx: Context) -> Process:
    md: dict[str, Any] = {"icon": p.icon or "", "benefits": list(p.benefits), "saves": 0,
                          "created_by": ctx.user.name}
    if library:
        md["source"] = "library"
    process = Process(title=p.title, description=p.description, category=p.category, color=p.color,
                      is_template=True, created_by_id=owner_id, directory_id=directory_id, last_updated=ctx.now,
                      process_metadata=md, created_at=ctx.now)
    for i, s in enumerate(p.steps, start=1):
        step = Step(content=s.title, order=i, created_at=ctx.now)
        # A step has no description column; the description becomes its one checklist item.
        step.sub_steps = [SubStep(content=s.description, order=1, created_at=ctx.now)] if s.description else []
        process.steps.append(step)
    return process


async def update_collection(ctx: Context, collection_id: uuid.UUID, data: CollectionUpdate) -> CollectionOut:
    c = await _collection_to_change(ctx, collection_id)
    given = data.given()
    if "title" in given:
        if given["title"] is None:
            raise Invalid("title cannot be empty")
        c.title = given["title"]
    if "description" in given:
        c.description = given["description"]
    md = dict(c.collection_metadata or {})
    if given.get("categories") is not None:
        md["categories"] = list(given["categories"])
    if data.author is not None:
        md["author"] = {"name": data.author.name, "avatar": data.author.avatar or ""}
    c.collection_metadata = md
    c.updated_at = ctx.now
    await ctx.db.flush()
    return (await collection_outs(ctx, [c]))[0]


async def delete_collection(ctx: Context, collection_id: uuid.UUID) -> None:
    """A library collection takes its library directories and templates with it (they belong to nobody
    else); deleting a private collection leaves its directories and templates in the owner's workspace."""
    c = await _collection_to_change(ctx, collection_id)
    if c.is_library:
        dir_ids = list((await ctx.db.scalars(
            select(Directory.id).where(Directory.collection_id == c.id, Directory.created_by_id.is_(None)))).all())
        if dir_ids:
            await ctx.db.execute(delete(Process).where(Process.directory_id.in_(dir_ids),
                                                       Process.created_by_id.is_(None)))
            await ctx.db.execute(delete(Directory).where(Directory.id.in_(dir_ids)))
    await ctx.db.execute(delete(Collection).where(Collection.id == c.id))
