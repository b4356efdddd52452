"""REST routes: templates, live processes, processes, their steps and substeps, and /live/operation."""

from __future__ import annotations

from handlers.context import Outcome
from handlers.live import operation as live_operation
from handlers.live.operation import LiveOperationIn, LiveOperationOut
from handlers.processes import manage as processes
from handlers.processes import steps
from handlers.processes.checklist import StepChange, StepIn, SubStepChange, SubStepIn
from handlers.processes.manage import Kind, ProcessChange, ProcessIn, ProcessQuery
from handlers.processes.shapes import ProcessDetail, ProcessOut, StepOut, SubStepOut
from handlers.processes.steps import FixOut, SubStepBatch
from server.routing import ApiRouter, Call

router = ApiRouter("processes")

# --- templates, live processes, processes: one set of handlers, three views ----------------------------


@router.get("/templates", read_only=True)
async def list_templates(call: Call[None, ProcessQuery]) -> list[ProcessOut]:
    """My templates (filters: category, favorite)."""
    return await processes.list_processes(call.ctx, Kind.TEMPLATE, call.query)


@router.post("/templates", status=201)
async def create_template(call: Call[ProcessIn]) -> ProcessOut:
    """Create a template, with optional inline steps and substeps."""
    return await processes.create_process(call.ctx, call.body, Kind.TEMPLATE)


@router.get("/templates/{template_id}", read_only=True)
async def get_template(call: Call) -> ProcessDetail:
    """One template with steps and connected events (mine, or a library template)."""
    return await processes.get_process(call.ctx, call.id("template_id"), Kind.TEMPLATE)


@router.put("/templates/{template_id}")
async def update_template(call: Call[ProcessChange]) -> ProcessDetail:
    """Change a template I own (partial)."""
    return await processes.update_process(call.ctx, call.id("template_id"), Kind.TEMPLATE, call.body)


@router.delete("/templates/{template_id}")
async def delete_template(call: Call) -> None:
    """Delete a template I own; its instances keep existing."""
    await processes.delete_process(call.ctx, call.id("template_id"), Kind.TEMPLATE)


@router.get("/live-processes", read_only=True)
async def list_live_processes(call: Call[None, ProcessQuery]) -> list[ProcessOut]:
    """My live (non-template) processes (filters: category, favorite, template_id)."""
    return await processes.list_processes(call.ctx, Kind.INSTANCE, call.query)


@router.post("/live-processes", status=201)
async def create_live_process(call: Call[ProcessIn]) -> ProcessOut:
    """Create a live process: inline steps and metadata kept; `templateId` clones a template's steps."""
    return await processes.create_process(call.ctx, call.body, Kind.INSTANCE)


@router.get("/live-processes/{process_id}", read_only=True)
async def get_live_process(call: Call) -> ProcessDetail:
    """One live process with steps and connected events."""
    return await processes.get_process(call.ctx, call.id("process_id"), Kind.INSTANCE)


@router.put("/live-processes/{process_id}")
async def update_live_process(call: Call[ProcessChange]) -> ProcessDetail:
    """Change a live process I own (partial)."""
    return await processes.update_process(call.ctx, call.id("process_id"), Kind.INSTANCE, call.body)


@router.delete("/live-processes/{process_id}")
async def delete_live_process(call: Call) -> None:
    """Delete a live process I own."""
    await processes.delete_process(call.ctx, call.id("process_id"), Kind.INSTANCE)


@router.post("/live-processes/{process_id}/fix-completion")
async def fix_live_process_completion(call: Call) -> Outcome[FixOut]:
    """Complete the unfinished substeps of completed steps."""
    return await steps.fix_completion(call.ctx, call.id("process_id"))


@router.get("/processes", read_only=True)
async def list_processes(call: Call[None, ProcessQuery]) -> list[ProcessOut]:
    """Processes I may see: mine and those of events I take part in (filters: category, favorite, is_template)."""
    return await processes.list_processes(call.ctx, Kind.ANY, call.query)


@router.post("/processes", status=201)
async def create_process(call: Call[ProcessIn]) -> ProcessOut:
    """Create a live (non-template) process with optional inline steps."""
    return await processes.create_process(call.ctx, call.body, Kind.INSTANCE)


@router.get("/processes/{process_id}", read_only=True)
async def get_process(call: Call) -> ProcessDetail:
    """One process with steps and connected events (owner, or a member of a linked event)."""
    return await processes.get_process(call.ctx, call.id("process_id"), Kind.ANY)


@router.put("/processes/{process_id}")
async def update_process(call: Call[ProcessChange]) -> ProcessDetail:
    """Change a process I own (partial)."""
    return await processes.update_process(call.ctx, call.id("process_id"), Kind.ANY, call.body)


@router.delete("/processes/{process_id}")
async def delete_process(call: Call) -> None:
    """Delete a process I own."""
    await processes.delete_process(call.ctx, call.id("process_id"), Kind.ANY)


@router.post("/processes/{process_id}/fix-completion")
async def fix_process_completion(call: Call) -> Outcome[FixOut]:
    """Complete the unfinished substeps of completed steps."""
    return await steps.fix_completion(call.ctx, call.id("process_id"))


# --- steps and substeps ------------------------------------------------------------------------------


@router.get("/processes/{process_id}/steps", read_only=True)
async def list_steps(call: Call) -> list[StepOut]:
    """A process's steps in order, each with its substeps."""
    return await steps.list_steps(call.ctx, call.id("process_id"))


@router.post("/processes/{process_id}/steps", status=201)
async def create_step(call: Call[StepIn]) -> Outcome[StepOut]:
    """Add a step (order 0 or absent: appended), with optional inline substeps."""
    return await steps.create_step(call.ctx, call.id("process_id"), call.body)


@router.put("/processes/steps/{step_id}")
async def update_step(call: Call[StepChange]) -> Outcome[StepOut]:
    """Change a step; completing it completes its substeps."""
    return await steps.update_step(call.ctx, call.id("step_id"), call.body, alone=True)


@router.delete("/processes/steps/{step_id}")
async def delete_step(call: Call) -> Outcome[None]:
    """Delete a step and its substeps."""
    return await steps.delete_step(call.ctx, call.id("step_id"))


@router.get("/processes/steps/{step_id}/substeps", read_only=True)
async def list_substeps(call: Call) -> list[SubStepOut]:
    """A step's substeps in order."""
    return await steps.list_substeps(call.ctx, call.id("step_id"))


@router.post("/processes/steps/{step_id}/substeps", status=201)
async def create_substep(call: Call[SubStepIn]) -> Outcome[SubStepOut]:
    """Add a substep (order 0 or absent: appended)."""
    return await steps.create_substep(call.ctx, call.id("step_id"), call.body)


@router.put("/processes/substeps/{substep_id}")
async def update_substep(call: Call[SubStepChange]) -> Outcome[SubStepOut]:
    """Change a substep."""
    return await steps.update_substep(call.ctx, call.id("substep_id"), call.body)


@router.delete("/processes/substeps/{substep_id}")
async def delete_substep(call: Call) -> Outcome[None]:
    """Delete a substep."""
    return await steps.delete_substep(call.ctx, call.id("substep_id"))


@router.post("/processes/batch/substeps/update",
             extra_methods=("PUT",))
async def batch_update_substeps(call: Call[SubStepBatch]) -> Outcome[list[SubStepOut]]:
    """Update several substeps at once (`[{id, completed, completedAt?, content?, order?}]`); all or nothing."""
    body = call.body
    return await steps.batch_update_substeps(call.ctx, body.root)


@router.post("/live/operation")
async def perform_live_operation(call: Call[LiveOperationIn]) -> Outcome[LiveOperationOut]:
    """Apply a suggested checklist operation: complete_step, add_step, add_substep or update_step."""
    return await live_operation.perform(call.ctx, call.body)
