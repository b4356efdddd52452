"""REST routes: weekly planning from the caller's templates (heuristic generator) and saving a plan."""

from __future__ import annotations

from handlers.planning import week as plan
from handlers.planning.week import PlanDirectory, PlanGenerateIn, PlanOut, PlanSaveIn, PlanSaveOut
from server.routes.ai import AfterCommit
from server.routing import ApiRouter, Call

router = ApiRouter("plan")


@router.get("/plan/directories")
async def directories(call: Call) -> list[PlanDirectory]:
    """The caller's directories that hold templates, with those templates."""
    return await plan.directories(call.ctx)


@router.post("/plan/generate", response=PlanOut)
async def generate(call: Call[PlanGenerateIn]) -> PlanOut | AfterCommit:
    """Schedule the chosen templates (or goal sessions) next week: by the AI model if configured, else a heuristic.

    `generator` says which one answered ("model" or "heuristic"); a failing model falls back to the heuristic."""
    generations = call.state.generations
    planner = generations.llm if generations is not None and generations.llm.configured else None
    draft = await plan.draft_plan(call.ctx, call.body)
    if planner is None or not draft.sessions:
        return draft.heuristic
    body = call.body
    # The model is asked once the transaction has ended: no pooled connection is held for a network call.
    return AfterCommit(lambda: plan.finish_plan(draft, body, planner), PlanOut)


@router.post("/plan/save")
async def save(call: Call[PlanSaveIn]) -> PlanSaveOut:
    """Create one event per planned item; template items get a fresh instance of the template."""
    return await plan.save(call.ctx, call.body)
