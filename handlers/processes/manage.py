"""Processes: reusable templates and live instances (what /templates, /live-processes and /processes serve)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from enum import StrEnum
from typing import Any

from pydantic import Field

from handlers import access
from handlers.context import Context
from handlers.processes import checklist, instances
from handlers.processes.checklist import StepIn
from handlers.processes.shapes import (
    NESTED_MAX,
    ConnectedEvent,
    OptionalId,
    Partial,
    ProcessDetail,
    ProcessOut,
    StepOut,
    TemplateBrief,
    sort_steps,
    step_out,
)
from handlers.schema import In, PageQuery, metadata_field
from persistence import processes
from persistence.errors import Forbidden, NotFound
from persistence.models import Directory, Process, SubStep

CONNECTED_EVENTS_MAX = 500


class Kind(StrEnum):
    TEMPLATE = "template"
    INSTANCE = "instance"
    ANY = "any"


class ProcessQuery(PageQuery):
    category: str | None = Field(default=None, max_length=100)
    """only processes of this category"""
    favorite: bool | None = None
    """only favourites (true) or only the others (false)"""
    is_template: bool | None = None  # /processes only
    """only templates (true) or only live processes (false); /processes only"""
    template_id: OptionalId = None  # /live-processes only
    """only instances of this template; /live-processes only"""


class ProcessIn(In):
    title: str = Field(min_length=1, max_length=300)
    """the process's title"""
    description: str | None = Field(default=None, max_length=20_000)
    """what the procedure achieves"""
    color: str | None = Field(default=None, max_length=32)
    """a display colour, e.g. `#3b82f6`"""
    category: str | None = Field(default=None, max_length=100)
    """a category label, e.g. `Engineering`"""
    favorite: bool = False
    """mark it as a favourite"""
    directory_id: OptionalId = None
    """the directory to file it in"""
    template_id: OptionalId = None  # an instance may start from one of the caller's (or a library) template
    """a template (mine or the library's) whose steps are copied in"""
    metadata: dict[str, Any] | None = metadata_field("process")
    """free-form JSON kept as sent (also accepted as `processMetadata`)"""
    steps: list[StepIn] | None = Field(default=None, max_length=NESTED_MAX)
    """steps to create, in order, each with optional substeps"""


class ProcessChange(Partial):
    not_null = ("title", "favorite")
    title: str | None = Field(default=None, min_length=1, max_length=300)
    """the new title"""
    description: str | None = Field(default=None, max_length=20_000)
    """what the procedure achieves"""
    color: str | None = Field(default=None, max_length=32)
    """a display colour, e.g. `#3b82f6`"""
    category: str | None = Field(default=None, max_length=100)
    """a category label"""
    favorite: bool | None = None
    """mark or unmark it as a favourite"""
    directory_id: OptionalId = None
    """move it to this directory; null: out of any"""
    metadata: dict[str, Any] | None = metadata_field("process")
    """free-form JSON kept as sent (also accepted as `processMetadata`)"""


is_library = instances.is_library  # seeded, ownerless templates: readable by everyone, editable by nobody


def _not_found(kind: Kind, ident: uuid.UUID) -> NotFound:
    return NotFound("template" if kind is Kind.TEMPLATE else "process", ident)


def _check_kind(process: Process, kind: Kind) -> None:
    if (kind is Kind.TEMPLATE and not process.is_template) or (kind is Kind.INSTANCE and process.is_template):
        raise _not_found(kind, process.id)


async def process_for_reader(ctx: Context, process_id: uuid.UUID, kind: Kind = Kind.ANY) -> Process:
    """Owner, a member of a linked event, or anyone for a library template."""
    process = await ctx.db.get(Process, process_id)
    if process is None:
        raise _not_found(kind, process_id)
    _check_kind(process, kind)
    if process.created_by_id == ctx.user_id or is_library(process) or await access.can_work_on_process(ctx, process):
        return process
    raise _not_found(kind, process_id)


async def _process_for_owner(ctx: Context, process_id: uuid.UUID, kind: Kind) -> Process:
    process = await ctx.db.get(Process, process_id, with_for_update=True)
    if process is None:
        raise _not_found(kind, process_id)
    _check_kind(process, kind)
    if process.created_by_id == ctx.user_id:
        return process
    if is_library(process) or await access.can_work_on_process(ctx, process):
        raise Forbidden("only the process's creator may change it")
    raise _not_found(kind, process_id)


async def own_directory(ctx: Context, directory_id: uuid.UUID | None) -> uuid.UUID | None:
    if directory_id is None:
        return None
    directory = await ctx.db.get(Directory, directory_id)
    if directory is None or directory.created_by_id != ctx.user_id:
        raise NotFound("directory", directory_id)
    return directory.id


# --- building responses (batched: a handful of queries for any number of processes) -------------------


async def _visible_instances(ctx: Context, template_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[uuid.UUID]]:
    # A library template has instances owned by many users: each caller sees only the ones they may see.
    out: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
    if template_ids:
        for pid, tid in await processes.instances_of(ctx.db, template_ids,
                                                   visible=access.process_visible_clause(ctx.user_id)):
            out[tid].append(pid)
    return out


async def _template_briefs(ctx: Context, rows: list[Process]) -> dict[uuid.UUID, TemplateBrief]:
    ids = {p.template_id for p in rows if p.template_id is not None}
    if not ids:
        return {}
    return {pid: TemplateBrief(id=pid, title=title) for pid, title in (await processes.titles(ctx.db, ids)).items()}


Instances = dict[uuid.UUID, list[uuid.UUID]]


def _fields(p: Process, briefs: dict[uuid.UUID, TemplateBrief], inst: Instances) -> dict[str, Any]:
    return dict(
        id=p.id, title=p.title, description=p.description, color=p.color, category=p.category,
        favorite=p.favorite, process_metadata=dict(p.process_metadata or {}), created_by_id=p.created_by_id,
        directory_id=p.directory_id, last_updated=p.last_updated, is_template=p.is_template,
        template_id=p.template_id, template=briefs.get(p.template_id) if p.template_id else None,
        instance_ids=list(inst.get(p.id, [])) if p.is_template else [], created_at=p.created_at,
        updated_at=p.updated_at,
    )


async def process_outs(ctx: Context, rows: list[Process]) -> list[ProcessOut]:
    briefs = await _template_briefs(ctx, rows)
    inst = await _visible_instances(ctx, [p.id for p in rows if p.is_template])
    return [ProcessOut(**_fields(p, briefs, inst)) for p in rows]


async def load_steps(ctx: Context, process_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[StepOut]]:
    out: dict[uuid.UUID, list[StepOut]] = defaultdict(list)
    if not process_ids:
        return out
    steps = sort_steps(await processes.steps_of(ctx.db, process_ids))
    subs: dict[uuid.UUID, list[SubStep]] = defaultdict(list)
    if steps:
        for sub in await processes.substeps_in(ctx.db, [s.id for s in steps]):
            subs[sub.step_id].append(sub)
    for step in steps:
        out[step.process_id].append(step_out(step, subs[step.id]))
    return out


async def _connected_events(
    ctx: Context, rows: list[Process], inst: dict[uuid.UUID, list[uuid.UUID]]
) -> dict[uuid.UUID, list[ConnectedEvent]]:
    """Events the caller can see that use each process (for a template: that use one of its instances)."""
    owner_of: dict[uuid.UUID, uuid.UUID] = {}
    for p in rows:
        owner_of[p.id] = p.id
        for iid in inst.get(p.id, []):
            owner_of.setdefault(iid, p.id)
    out: dict[uuid.UUID, list[ConnectedEvent]] = defaultdict(list)
    events = await processes.events_using(ctx.db, list(owner_of), visible=access.member_clause(ctx.user_id),
                                        limit=CONNECTED_EVENTS_MAX)
    if not events:
        return out
    counts = await processes.attending_counts(ctx.db, [e.id for e in events])
    progress: dict[uuid.UUID, float] = {}
    for pid, total, done in await processes.step_progress(ctx.db, {e.process_id for e in events if e.process_id}):
        progress[pid] = round(100.0 * done / total, 1) if total else 0.0
    for e in events:
        if e.process_id is None:
            continue
        out[owner_of[e.process_id]].append(ConnectedEvent(
            id=e.id, name=e.title, start_time=e.start_time, date=e.start_time.date().isoformat(), image_url=None,
            participants=int(counts.get(e.id, 0)), progress=progress.get(e.process_id, 0.0),
        ))
    return out


async def process_details(ctx: Context, rows: list[Process]) -> list[ProcessDetail]:
    briefs = await _template_briefs(ctx, rows)
    inst = await _visible_instances(ctx, [p.id for p in rows if p.is_template])
    steps = await load_steps(ctx, [p.id for p in rows])
    connected = await _connected_events(ctx, rows, inst)
    return [ProcessDetail(**_fields(p, briefs, inst), steps=steps.get(p.id, []),
                          connected_events=connected.get(p.id, [])) for p in rows]


# --- handlers ---------------------------------------------------------------------------------------


async def list_processes(ctx: Context, kind: Kind, q: ProcessQuery) -> list[ProcessOut]:
    """Templates / instances: the caller's own. ANY: every process the caller may see.

    Plain rows, each with its template's title (an outer join, not a second statement); the visible instances
    of templates on the page in a second statement when there are any."""
    offset, limit = q.window(ctx.limits.max_page_size)
    if kind is Kind.ANY:
        rows = await processes.process_page(ctx.db, visible=access.process_visible_clause(ctx.user_id),
                                          is_template=q.is_template, category=q.category, favorite=q.favorite,
                                          offset=offset, limit=limit)
    else:
        rows = await processes.process_page(ctx.db, owner_id=ctx.user_id, is_template=kind is Kind.TEMPLATE,
                                          template_id=q.template_id if kind is Kind.INSTANCE else None,
                                          category=q.category, favorite=q.favorite, offset=offset, limit=limit)
    inst = await _visible_instances(ctx, [r.id for r in rows if r.is_template])
    return [ProcessOut.model_construct(
        id=r.id, title=r.title, description=r.description, color=r.color, category=r.category, favorite=r.favorite,
        process_metadata=dict(r.process_metadata or {}), created_by_id=r.created_by_id, directory_id=r.directory_id,
        last_updated=r.last_updated, is_template=r.is_template, template_id=r.template_id,
        template=(TemplateBrief(id=r.template_id, title=r.template_title)
                  if r.template_id is not None and r.template_title is not None else None),
        instance_ids=list(inst.get(r.id, [])) if r.is_template else [], created_at=r.created_at,
        updated_at=r.updated_at,
    ) for r in rows]


async def create_process(ctx: Context, data: ProcessIn, kind: Kind) -> ProcessOut:
    """Process, steps, substeps and metadata in one go. An instance may be cloned from `template_id`."""
    sent = data.model_fields_set
    directory_id = await own_directory(ctx, data.directory_id)
    if kind is not Kind.TEMPLATE and data.template_id is not None:
        source = await instances.template_for_cloning(ctx, data.template_id)
        process = instances.clone(source, ctx.user_id, ctx)
        process.title = data.title
        for name in ("description", "color", "category"):
            if name in sent:
                setattr(process, name, getattr(data, name))
        if "directory_id" in sent:
            process.directory_id = directory_id
        process.favorite = data.favorite
        process.process_metadata = dict(process.process_metadata or {}) | dict(data.metadata or {})
        if data.steps is not None:
            process.steps = checklist.new_steps(data.steps, ctx.now)
    else:
        process = Process(
            title=data.title, description=data.description, color=data.color, category=data.category,
            favorite=data.favorite, process_metadata=dict(data.metadata or {}), is_template=kind is Kind.TEMPLATE,
            template_id=None, directory_id=directory_id, created_by_id=ctx.user_id, last_updated=ctx.now,
        )
        process.steps = checklist.new_steps(data.steps or [], ctx.now)
    ctx.db.add(process)
    await ctx.db.flush()
    return (await process_outs(ctx, [process]))[0]


async def get_process(ctx: Context, process_id: uuid.UUID, kind: Kind) -> ProcessDetail:
    process = await process_for_reader(ctx, process_id, kind)
    return (await process_details(ctx, [process]))[0]


async def update_process(ctx: Context, process_id: uuid.UUID, kind: Kind, change: ProcessChange) -> ProcessDetail:
    process = await _process_for_owner(ctx, process_id, kind)
    fields = change.given()
    if "directory_id" in fields:
        process.directory_id = await own_directory(ctx, fields["directory_id"])
    for name in ("title", "description", "color", "category", "favorite"):
        if name in fields:
            setattr(process, name, fields[name])
    if "metadata" in fields:
        process.process_metadata = dict(fields["metadata"] or {})
    process.last_updated = ctx.now
    await ctx.db.flush()
    return (await process_details(ctx, [process]))[0]


async def delete_process(ctx: Context, process_id: uuid.UUID, kind: Kind) -> None:
    """Steps and substeps go with it; linked events and instances keep existing, unlinked."""
    process = await _process_for_owner(ctx, process_id, kind)
    await processes.delete_flushed(ctx.db, process)
