"""Suggested checklist operations: the `suggest_process_actions` tool the model may call, and the check of
its arguments against the real process before anyone is offered them.

The model sees every step and substep with its number and id (see `live_ai.describe_checklist`). What it
sends back is trusted for nothing: an id must belong to the session's process (an invented one drops the
operation); a missing id may be repaired from a 1-based index (`step_id: "2"`, an operation's
`step_index`, or `current_focus.step_index`); fields an operation needs must be there. The result is the
normalised form the original client posts back to `/live/operation`:
`{operation, priority, description, rationale, stepId, subStepId, content, processId}`.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from handlers.live.operation import OPERATIONS
from handlers.processes.shapes import CONTENT_MAX
from handlers.schema import Out

TOOL_NAME = "suggest_process_actions"
MAX_OPERATIONS = 10
PRIORITIES = ("high", "medium", "low")
NEEDS_STEP = frozenset({"complete_step", "add_substep", "update_step"})
NEEDS_CONTENT = frozenset({"add_step", "add_substep", "update_step"})

TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": TOOL_NAME,
        "description": (
            "Offer the operator concrete changes to the procedure's checklist, shown as buttons they may click. "
            "Use only the step_id and substep_id values listed in the procedure section; never invent ids. "
            "Call it after your written answer, and only when a change would help."),
        "parameters": {
            "type": "object",
            "properties": {
                "is_process_related": {
                    "type": "boolean",
                    "description": "true when the operator's message concerns the current procedure"},
                "current_focus": {
                    "type": "object",
                    "description": "what the operator is working on now",
                    "properties": {
                        "step_index": {"type": "integer", "description": "1-based step number"},
                        "substep_index": {"type": "integer", "description": "1-based substep number in the step"},
                        "context_notes": {"type": "string"},
                    },
                },
                "suggested_operations": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "operation": {"type": "string", "enum": list(OPERATIONS)},
                            "priority": {"type": "string", "enum": list(PRIORITIES)},
                            "description": {"type": "string", "description": "short text shown to the operator"},
                            "step_id": {"type": "string", "description": "the target step's id"},
                            "substep_id": {"type": "string", "description": "the target substep's id"},
                            "content": {"type": "string", "description": "text of a new or updated step/substep"},
                            "rationale": {"type": "string"},
                        },
                        "required": ["operation", "priority", "description"],
                    },
                },
            },
            "required": ["is_process_related", "suggested_operations"],
        },
    },
}


class SuggestedOperation(Out):
    operation: Literal["complete_step", "add_step", "add_substep", "update_step"]
    priority: Literal["high", "medium", "low"]
    description: str
    rationale: str | None = None
    step_id: uuid.UUID | None = None
    sub_step_id: uuid.UUID | None = None
    content: str | None = None
    process_id: uuid.UUID


@dataclass(frozen=True)
class StepSnapshot:
    id: uuid.UUID
    completed: bool
    substeps: tuple[uuid.UUID, ...]


@dataclass(frozen=True)
class Checklist:
    """The ids an operation may name: the session's process, its steps in order, each step's substeps."""

    process_id: uuid.UUID
    steps: tuple[StepSnapshot, ...]

    def step(self, raw: Any) -> StepSnapshot | None:
        """A step named by id, or repaired from its 1-based number."""
        if isinstance(raw, bool) or raw is None:
            return None
        if isinstance(raw, int) or (isinstance(raw, str) and raw.strip().isdigit()):
            number = int(raw)
            return self.steps[number - 1] if 1 <= number <= len(self.steps) else None
        ident = _uuid(raw)
        return next((s for s in self.steps if s.id == ident), None) if ident else None


def _uuid(raw: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(raw).strip())
    except ValueError:
        return None


def _text(raw: Any, limit: int) -> str | None:
    if not isinstance(raw, str) or not raw.strip():
        return None
    return raw.strip()[:limit]


def _substep(raw: Any, step: StepSnapshot | None, checklist: Checklist) -> tuple[StepSnapshot | None, Any]:
    """The substep named by id ("1.2" works too), with its step; `False` when it names nothing real."""
    if raw is None or raw == "":
        return step, None
    if isinstance(raw, str) and raw.count(".") == 1 and raw.replace(".", "").isdigit():
        step_no, sub_no = (int(x) for x in raw.split("."))
        parent = checklist.step(step_no)
        if parent is None or not 1 <= sub_no <= len(parent.substeps) or (step and step.id != parent.id):
            return step, False
        return parent, parent.substeps[sub_no - 1]
    ident = _uuid(raw)
    for candidate in checklist.steps:
        if ident in candidate.substeps and (step is None or step.id == candidate.id):
            return candidate, ident
    return step, False


def _one(raw: dict[str, Any], checklist: Checklist, focus_step: Any) -> SuggestedOperation | None:
    operation = raw.get("operation")
    if operation not in OPERATIONS:
        return None
    named = raw.get("step_id", raw.get("stepId"))
    if named not in (None, ""):
        step = checklist.step(named)
        if step is None:
            return None  # an id (or number) that is not in this process: invented
    else:
        step = checklist.step(raw.get("step_index", focus_step)) if operation in NEEDS_STEP else None
    step, substep = _substep(raw.get("substep_id", raw.get("subStepId")), step, checklist)
    if substep is False:
        return None
    content = _text(raw.get("content"), CONTENT_MAX)
    if (operation in NEEDS_STEP and step is None) or (operation in NEEDS_CONTENT and content is None):
        return None
    if operation == "complete_step" and step is not None and step.completed:
        return None  # nothing to do
    if operation == "add_step":
        step, substep = None, None
    priority = raw.get("priority") if raw.get("priority") in PRIORITIES else "medium"
    description = _text(raw.get("description"), 500) or operation.replace("_", " ")
    return SuggestedOperation(
        operation=operation, priority=priority, description=description, rationale=_text(raw.get("rationale"), 1000),
        step_id=step.id if step else None, sub_step_id=substep, content=content, process_id=checklist.process_id)


def parse_arguments(arguments: str) -> dict[str, Any]:
    try:
        parsed = json.loads(arguments) if arguments.strip() else {}
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def validate(arguments: dict[str, Any], checklist: Checklist | None) -> list[SuggestedOperation]:
    """The operations of one `suggest_process_actions` call that are real and complete, deduplicated."""
    if checklist is None or arguments.get("is_process_related") is False:
        return []
    focus = arguments.get("current_focus")
    focus_step = focus.get("step_index") if isinstance(focus, dict) else None
    raw_ops = arguments.get("suggested_operations")
    if not isinstance(raw_ops, list):
        return []
    out: list[SuggestedOperation] = []
    seen: set[tuple[Any, ...]] = set()
    for raw in raw_ops[: MAX_OPERATIONS * 3]:
        op = _one(raw, checklist, focus_step) if isinstance(raw, dict) else None
        if op is None:
            continue
        key = (op.operation, op.step_id, op.sub_step_id, op.content)
        if key not in seen:
            seen.add(key)
            out.append(op)
        if len(out) == MAX_OPERATIONS:
            break
    return out
