"""POST /live/operation: an operation suggested by the live assistant, applied through the step handlers.

Contract (original §7.4): 400 for an unknown operation or a missing/invalid field, 404 when the process or
the step is not found (the step must belong to the process), 403 when the process exists but the caller
may not work on it. Completion follows the one cascade rule of `handlers.processes.checklist`, `update_step` included.
"""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import AliasChoices, Field

from handlers import access
from handlers.context import Context, Outcome
from handlers.processes import steps
from handlers.processes.checklist import StepChange, StepIn, SubStepIn
from handlers.processes.shapes import CONTENT_MAX, ORDER_MAX
from handlers.schema import In, Out, to_wire
from persistence.errors import BadRequest, Forbidden, NotFound
from persistence.models import Process, Step

OPERATIONS = ("complete_step", "add_step", "add_substep", "update_step")


class LiveOperationIn(In):
    """Loosely typed on purpose: bad values answer 400 with a readable reason, as the contract says."""

    operation: Any = None
    """complete_step, add_step, add_substep or update_step"""
    process_id: Any = None
    """the process to change (on a live session: its process by default)"""
    step_id: Any = None
    """the step concerned (complete_step, add_substep, update_step)"""
    sub_step_id: Any = Field(default=None, validation_alias=AliasChoices(
        "sub_step_id", "subStepId", "substep_id", "substepId"))
    """the substep concerned, if any (also accepted as `substepId`)"""
    content: Any = None
    """the text of a new or updated step or substep"""
    completed: Any = None
    """for update_step: tick (true) or untick (false)"""
    order: Any = None
    """for update_step: the step's new position"""


class LiveOperationOut(Out):
    success: bool
    details: dict[str, Any]


def _id(value: Any, name: str) -> uuid.UUID:
    if value is None or value == "":
        raise BadRequest(f"{name} is required for this operation")
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise BadRequest(f"{name} is not a valid id") from None


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(f"{name} is required for this operation")
    if len(value) > CONTENT_MAX:
        raise BadRequest(f"{name} is longer than {CONTENT_MAX} characters")
    return value.strip()


def _update_fields(op: LiveOperationIn) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if op.content is not None:
        fields["content"] = _text(op.content, "content")
    if op.completed is not None:
        if not isinstance(op.completed, bool):
            raise BadRequest("completed must be true or false")
        fields["completed"] = op.completed
    if op.order is not None:
        if isinstance(op.order, bool) or not isinstance(op.order, int) or not 0 <= op.order <= ORDER_MAX:
            raise BadRequest(f"order must be an integer from 0 to {ORDER_MAX}")
        fields["order"] = op.order
    if not fields:
        raise BadRequest("update_step needs content, completed or order")
    return fields


def _dump(out: Out) -> dict[str, Any]:
    data: dict[str, Any] = to_wire(out)
    return data


async def perform(ctx: Context, op: LiveOperationIn) -> Outcome[LiveOperationOut]:
    # Every field is checked before anything is looked up: a malformed request is 400 whatever it targets.
    if op.operation not in OPERATIONS:
        raise BadRequest(f"unknown operation {op.operation!r}; expected one of {', '.join(OPERATIONS)}")
    name: str = op.operation
    process_id = _id(op.process_id, "processId")
    step_id = _id(op.step_id, "stepId") if name != "add_step" else None
    content = _text(op.content, "content") if name in ("add_step", "add_substep") else None
    fields = _update_fields(op) if name == "update_step" else {}

    process = await ctx.db.get(Process, process_id)
    if process is None:
        raise NotFound("process", process_id)
    if not await access.can_work_on_process(ctx, process):
        raise Forbidden("this process belongs to someone else")
    if step_id is not None:
        step = await ctx.db.get(Step, step_id)
        if step is None or step.process_id != process.id:
            raise NotFound("step", step_id)

    if name == "add_step":
        assert content is not None
        created = await steps.create_step(ctx, process_id, StepIn(content=content))
        return Outcome(LiveOperationOut(success=True, details=_dump(created.value)), publish=created.publish)
    assert step_id is not None
    if name == "add_substep":
        assert content is not None
        added = await steps.create_substep(ctx, step_id, SubStepIn(content=content))
        return Outcome(LiveOperationOut(success=True, details=_dump(added.value)), publish=added.publish)
    if name == "complete_step":
        fields = {"completed": True}
    updated = await steps.update_step(ctx, step_id, StepChange(**fields))
    step_out = updated.value
    if name == "update_step":
        return Outcome(LiveOperationOut(success=True, details=_dump(step_out)), publish=updated.publish)
    details = {
        "stepId": str(step_out.id),
        "completed": step_out.completed,
        "completedAt": _dump(step_out)["completedAt"],
        "updatedSubsteps": [{"id": str(s.id), "completed": s.completed, "completedAt": _dump(s)["completedAt"]}
                            for s in step_out.sub_steps],
    }
    return Outcome(LiveOperationOut(success=True, details=details), publish=updated.publish)
