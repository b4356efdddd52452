"""Cloning a template process into a fresh instance for an event (used by event creation and /plan/save)."""

from __future__ import annotations

import uuid

from handlers.context import Context
from persistence import processes
from persistence.errors import NotFound
from persistence.models import Process, Step, SubStep

# When a template step has no substeps, the original generated a few from keywords in the step text.
_KEYWORD_SUBSTEPS: list[tuple[tuple[str, ...], list[str]]] = [
    (("review", "check", "verify", "test"), ["Gather the material", "Go through it", "Record the findings"]),
    (("plan", "prepare", "design"), ["Define the goal", "Draft the plan", "Get it agreed"]),
    (("write", "document", "draft"), ["Outline", "Write the first draft", "Revise"]),
    (("deploy", "release", "ship", "launch"), ["Prepare the release", "Roll it out", "Confirm it works"]),
]


def default_substeps(content: str) -> list[str]:
    lowered = content.lower()
    for words, subs in _KEYWORD_SUBSTEPS:
        if any(w in lowered for w in words):
            return subs
    return []


def is_library(process: Process) -> bool:
    """A public library template: seeded without an owner. (The metadata marker alone is not enough — users
    can write any metadata on their own processes.)"""
    return process.created_by_id is None and process.is_template and \
        (process.process_metadata or {}).get("source") == "library"


async def template_for_cloning(ctx: Context, template_id: uuid.UUID) -> Process:
    """A template the caller may instantiate: their own, or a library template. Loaded with steps and
    substeps."""
    template = await processes.template_with_steps(ctx.db, template_id)
    if template is None:
        raise NotFound("template", template_id)
    if template.created_by_id != ctx.user_id and not is_library(template):
        raise NotFound("template", template_id)
    return template


def clone(template: Process, owner_id: uuid.UUID, ctx: Context) -> Process:
    """A new, unfinished instance of `template` owned by `owner_id` (not yet added to the session)."""
    instance = Process(
        title=template.title, description=template.description, color=template.color,
        category=template.category, directory_id=template.directory_id if template.created_by_id == owner_id else None,
        process_metadata=dict(template.process_metadata or {}) | {"template_id": str(template.id)},
        favorite=False, is_template=False, template_id=template.id, created_by_id=owner_id, last_updated=ctx.now,
    )
    for step in template.steps:
        new = Step(content=step.content, order=step.order, due_date=step.due_date, completed=False)
        subs = [(s.content, s.order) for s in step.sub_steps] or [
            (text, i) for i, text in enumerate(default_substeps(step.content), start=1)
        ]
        new.sub_steps = [SubStep(content=c, order=o, completed=False) for c, o in subs]
        instance.steps.append(new)
    return instance


async def instantiate(ctx: Context, template_id: uuid.UUID) -> Process:
    template = await template_for_cloning(ctx, template_id)
    instance = clone(template, ctx.user_id, ctx)
    ctx.db.add(instance)
    await ctx.db.flush()
    return instance
