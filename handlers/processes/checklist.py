"""The checklist rules, without I/O: step/substep inputs, completion (and its cascade), order placement.

One rule everywhere (REST, live operations, a future WebSocket push):
- completing a step completes its unfinished substeps with the step's timestamp;
- un-completing a step clears the step's own `completed_at` only (its substeps keep their state, so a
  client that re-derives the step from one toggled substep does not wipe the siblings);
- a substep's completion sets or clears its own `completed_at`;
- `completed=true` without `completed_at` means now; a row that is already complete keeps its timestamp;
- order 0 or absent means "append": max(order) + 1 among the siblings; an explicit order is kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Protocol, TypeVar

from pydantic import AliasChoices, Field

from handlers.processes.shapes import CONTENT_MAX, NESTED_MAX, ORDER_MAX, AwareDateTime, Partial
from handlers.schema import In
from persistence.models import Step, SubStep

DUE_DATE_MAX = 40


class Checked(Protocol):
    """A step or substep as the rules read and change it: an ORM row, or a detached copy of one (a change run
    straight on the driver, handlers/processes/steps.py)."""

    content: str
    completed: bool
    completed_at: datetime | None
    order: int


class CheckedStep(Checked, Protocol):
    due_date: str | None


C = TypeVar("C", bound=Checked)


class SubStepIn(In):
    content: str = Field(min_length=1, max_length=CONTENT_MAX)
    """the substep's text"""
    completed: bool = False
    """whether the substep is done"""
    completed_at: AwareDateTime | None = None
    """when it was done (ISO 8601 with an offset); default now when `completed`"""
    order: int | None = Field(default=None, ge=0, le=ORDER_MAX)
    """position among the step's substeps; 0 or absent: after the last"""


class StepIn(In):
    content: str = Field(min_length=1, max_length=CONTENT_MAX)
    """the step's text"""
    completed: bool = False
    """whether the step is done"""
    completed_at: AwareDateTime | None = None
    """when it was done (ISO 8601 with an offset); default now when `completed`"""
    order: int | None = Field(default=None, ge=0, le=ORDER_MAX)
    """position among the process's steps; 0 or absent: after the last"""
    due_date: str | None = Field(default=None, max_length=DUE_DATE_MAX)
    """when it is due, as free text (e.g. a date)"""
    sub_steps: list[SubStepIn] | None = Field(
        default=None, max_length=NESTED_MAX, validation_alias=AliasChoices("sub_steps", "subSteps", "substeps"),
    )
    """the step's substeps, in order (also accepted as `subSteps` or `substeps`)"""


class StepChange(Partial):
    """PUT /processes/steps/{id}: any of these; omitted fields stay as they are."""

    not_null = ("content", "completed", "order")
    content: str | None = Field(default=None, min_length=1, max_length=CONTENT_MAX)
    """the step's new text"""
    completed: bool | None = None
    """tick (true) or untick (false) the step"""
    completed_at: AwareDateTime | None = None
    """when it was done (ISO 8601 with an offset)"""
    order: int | None = Field(default=None, ge=0, le=ORDER_MAX)
    """the step's new position; 0: after the last"""
    due_date: str | None = Field(default=None, max_length=DUE_DATE_MAX)
    """when it is due, as free text; null clears it"""


class SubStepChange(Partial):
    not_null = ("content", "completed", "order")
    content: str | None = Field(default=None, min_length=1, max_length=CONTENT_MAX)
    """the substep's new text"""
    completed: bool | None = None
    """tick (true) or untick (false) the substep"""
    completed_at: AwareDateTime | None = None
    """when it was done (ISO 8601 with an offset)"""
    order: int | None = Field(default=None, ge=0, le=ORDER_MAX)
    """the substep's new position; 0: after the last"""


def set_completion(row: Checked, completed: bool, at: datetime | None, now: datetime) -> None:
    if completed:
        keep = row.completed_at if row.completed else None
        row.completed = True
        row.completed_at = at or keep or now
    else:
        row.completed = False
        row.completed_at = None


def cascade_completion(step: Checked, subs: Iterable[C]) -> list[C]:
    """Complete the unfinished substeps of a completed step; returns the ones changed."""
    changed = []
    if step.completed:
        for sub in subs:
            if not sub.completed:
                sub.completed = True
                sub.completed_at = step.completed_at
                changed.append(sub)
    return changed


def _apply_common(row: Checked, fields: dict[str, Any], now: datetime) -> None:
    if "content" in fields:
        row.content = fields["content"]
    if "order" in fields:
        row.order = fields["order"]
    if "completed" in fields:
        set_completion(row, fields["completed"], fields.get("completed_at"), now)
    elif fields.get("completed_at") is not None and row.completed:
        # A timestamp alone only corrects a completed row; it never completes one.
        row.completed_at = fields["completed_at"]


def apply_step_change(step: CheckedStep, subs: Sequence[Checked], fields: dict[str, Any], now: datetime) -> None:
    """`fields` = `StepChange.given()` (or the same keys from a live operation)."""
    _apply_common(step, fields, now)
    if "due_date" in fields:
        step.due_date = fields["due_date"]
    if fields.get("completed"):
        cascade_completion(step, subs)


def apply_substep_change(sub: Checked, fields: dict[str, Any], now: datetime) -> None:
    _apply_common(sub, fields, now)


def _orders(requested: Iterable[int | None], current_max: int | None) -> list[int]:
    """Orders for a list of new siblings. Within one list an order already taken is appended instead, so a
    client numbering its items 0, 1, 2 gets 1, 2, 3 rather than two items at 1."""
    out: list[int] = []
    top = current_max or 0
    for order in requested:
        value = order if order and order not in out else top + 1
        top = max(top, value)
        out.append(value)
    return out


def new_substeps(items: Iterable[SubStepIn], now: datetime, current_max: int | None = None) -> list[SubStep]:
    items = list(items)
    rows = []
    for item, order in zip(items, _orders((i.order for i in items), current_max), strict=True):
        row = SubStep(content=item.content, order=order, completed=False, completed_at=None)
        set_completion(row, item.completed, item.completed_at, now)
        rows.append(row)
    return rows


def new_step(data: StepIn, order: int, now: datetime) -> Step:
    """A pending Step with its substeps (not yet in a session); a completed one cascades like any other."""
    step = Step(content=data.content, order=order, due_date=data.due_date, completed=False, completed_at=None)
    set_completion(step, data.completed, data.completed_at, now)
    step.sub_steps = new_substeps(data.sub_steps or [], now)
    cascade_completion(step, step.sub_steps)
    return step


def new_steps(items: Iterable[StepIn], now: datetime, current_max: int | None = None) -> list[Step]:
    items = list(items)
    return [new_step(item, order, now)
            for item, order in zip(items, _orders((i.order for i in items), current_max), strict=True)]

