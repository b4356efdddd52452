"""Directories: each user's tree of folders holding their template processes."""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any

from pydantic import Field

from handlers import access
from handlers.context import Context
from handlers.processes.manage import process_details
from handlers.processes.shapes import OptionalId, Partial, ProcessDetail
from handlers.schema import UTC, In, Out, PageQuery, metadata_field
from persistence import processes
from persistence.errors import Invalid, NotFound
from persistence.models import Directory

MAX_DEPTH = 1000  # a guard for the parent walk; real trees are a few levels deep


class DirectoryQuery(PageQuery):
    parent_id: OptionalId = None
    """only the subdirectories of this directory"""
    include_templates: bool = False  # library directories are hidden unless asked for
    """include the library's directories (hidden by default)"""


class DirectoryIn(In):
    name: str = Field(min_length=1, max_length=200)
    """the directory's name"""
    description: str | None = Field(default=None, max_length=20_000)
    """what it holds"""
    color: str | None = Field(default=None, max_length=32)
    """a display colour, e.g. `#3b82f6`"""
    icon: str | None = Field(default=None, max_length=64)
    """an icon name for the frontend"""
    parent_id: OptionalId = None
    """the directory it sits in; none: top level"""
    metadata: dict[str, Any] | None = metadata_field("directory")
    """free-form JSON kept as sent (also accepted as `directoryMetadata`)"""


class DirectoryChange(Partial):
    not_null = ("name",)
    name: str | None = Field(default=None, min_length=1, max_length=200)
    """the directory's new name"""
    description: str | None = Field(default=None, max_length=20_000)
    """what it holds"""
    color: str | None = Field(default=None, max_length=32)
    """a display colour, e.g. `#3b82f6`"""
    icon: str | None = Field(default=None, max_length=64)
    """an icon name for the frontend"""
    parent_id: OptionalId = None
    """move it into this directory; null: to the top level"""
    metadata: dict[str, Any] | None = metadata_field("directory")
    """free-form JSON kept as sent (also accepted as `directoryMetadata`)"""


class DeleteQuery(In):
    move_processes: bool = False
    """move the directory's processes (to `targetDirectoryId`, else to the parent) instead of detaching them"""
    target_directory_id: OptionalId = None
    """where `moveProcesses` puts them"""


class _DirectoryBase(Out):
    id: uuid.UUID
    name: str
    description: str | None
    color: str | None
    icon: str | None
    directory_metadata: dict[str, Any]
    created_by_id: uuid.UUID | None
    parent_id: uuid.UUID | None
    process_count: int
    created_at: UTC
    updated_at: UTC | None


class DirectoryOut(_DirectoryBase):
    processes: list[uuid.UUID]  # the templates in this directory


class DirectoryDetail(_DirectoryBase):
    processes: list[ProcessDetail]
    subdirectories: list[DirectoryOut]


def _fields(d: Directory) -> dict[str, Any]:
    return dict(
        id=d.id, name=d.name, description=d.description, color=d.color, icon=d.icon,
        directory_metadata=dict(d.directory_metadata or {}), created_by_id=d.created_by_id, parent_id=d.parent_id,
        created_at=d.created_at, updated_at=d.updated_at,
    )


async def directory_outs(ctx: Context, rows: list[Directory]) -> list[DirectoryOut]:
    templates: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
    if rows:
        for pid, did in await processes.templates_by_directory(ctx.db, [d.id for d in rows]):
            templates[did].append(pid)
    return [DirectoryOut(**_fields(d), processes=templates[d.id], process_count=len(templates[d.id])) for d in rows]


async def own_directory(ctx: Context, directory_id: uuid.UUID, *, for_update: bool = False) -> Directory:
    directory = await ctx.db.get(Directory, directory_id, with_for_update=for_update)
    if directory is None or directory.created_by_id != ctx.user_id:
        raise NotFound("directory", directory_id)
    return directory


async def list_directories(ctx: Context, q: DirectoryQuery) -> list[DirectoryOut]:
    """Top-level directories, or the children of `parent_id`."""
    offset, limit = q.window(ctx.limits.max_page_size)
    rows = await processes.directory_page(ctx.db, ctx.user_id, q.parent_id, with_library=q.include_templates,
                                          offset=offset, limit=limit)
    return await directory_outs(ctx, list(rows))


async def create_directory(ctx: Context, data: DirectoryIn) -> DirectoryOut:
    parent_id = (await own_directory(ctx, data.parent_id)).id if data.parent_id else None
    directory = Directory(
        name=data.name, description=data.description, color=data.color, icon=data.icon, parent_id=parent_id,
        directory_metadata=dict(data.metadata or {}), created_by_id=ctx.user_id, is_template=False,
    )
    ctx.db.add(directory)
    await ctx.db.flush()
    return (await directory_outs(ctx, [directory]))[0]


async def get_directory(ctx: Context, directory_id: uuid.UUID) -> DirectoryDetail:
    directory = await own_directory(ctx, directory_id)
    rows = list(await processes.processes_in(ctx.db, directory.id, visible=access.process_visible_clause(ctx.user_id),
                                             limit=ctx.limits.max_page_size))
    # An instance whose template sits in the same directory is shown through that template.
    template_ids = {p.id for p in rows if p.is_template}
    shown = [p for p in rows if p.is_template or p.template_id is None or p.template_id not in template_ids]
    children = await processes.subdirectories(ctx.db, directory.id, ctx.user_id, limit=ctx.limits.max_page_size)
    details = await process_details(ctx, shown)
    return DirectoryDetail(**_fields(directory), processes=details, process_count=len(template_ids),
                           subdirectories=await directory_outs(ctx, list(children)))


async def _check_parent(ctx: Context, directory: Directory, parent_id: uuid.UUID) -> None:
    """The new parent must be the caller's and must not be the directory itself or one of its descendants."""
    node: Directory | None = await own_directory(ctx, parent_id)
    for _ in range(MAX_DEPTH):
        if node is None:
            return
        if node.id == directory.id:
            raise Invalid("a directory cannot be moved inside itself")
        node = await ctx.db.get(Directory, node.parent_id) if node.parent_id else None
    raise Invalid("the directory tree is too deep")


async def update_directory(ctx: Context, directory_id: uuid.UUID, change: DirectoryChange) -> DirectoryOut:
    directory = await own_directory(ctx, directory_id, for_update=True)
    fields = change.given()
    if "parent_id" in fields:
        if fields["parent_id"] is not None:
            await _check_parent(ctx, directory, fields["parent_id"])
        directory.parent_id = fields["parent_id"]
    for name in ("name", "description", "color", "icon"):
        if name in fields:
            setattr(directory, name, fields[name])
    if "metadata" in fields:
        directory.directory_metadata = dict(fields["metadata"] or {})
    await ctx.db.flush()
    return (await directory_outs(ctx, [directory]))[0]


async def delete_directory(ctx: Context, directory_id: uuid.UUID, q: DeleteQuery) -> None:
    """Processes are detached (or moved with `move_processes`: to `target_directory_id`, else to the parent);
    subdirectories move up to the deleted directory's parent."""
    directory = await own_directory(ctx, directory_id, for_update=True)
    target: uuid.UUID | None = None
    if q.move_processes:
        target = q.target_directory_id or directory.parent_id
        if target is not None:
            if target == directory.id:
                raise Invalid("cannot move processes into the directory being deleted")
            target = (await own_directory(ctx, target)).id
    await processes.move_processes(ctx.db, directory.id, target)
    await processes.move_subdirectories(ctx.db, directory.id, directory.parent_id)
    await processes.delete_flushed(ctx.db, directory)
