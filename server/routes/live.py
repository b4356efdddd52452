"""REST routes: live sessions (contexts and their stored messages) and the process context for a session."""

from __future__ import annotations

from handlers.context import Outcome
from handlers.live import contexts as live_contexts
from handlers.live import process_context as live_process_context
from handlers.live.contexts import LiveContextIn, LiveContextOut, LiveContextQuery
from handlers.live.process_context import ProcessContextOut
from server.routing import ApiRouter, Call

router = ApiRouter("live")


@router.post("/live/contexts", status=201)
async def create_context(call: Call[LiveContextIn]) -> LiveContextOut:
    """Start a live session, optionally linked to a process, event or template, with initial messages."""
    return await live_contexts.create_context(call.ctx, call.body)


@router.get("/live/contexts")
async def list_contexts(call: Call[None, LiveContextQuery]) -> list[LiveContextOut]:
    """The caller's sessions, newest first (each with its most recent 200 messages)."""
    return await live_contexts.list_contexts(call.ctx, call.query)


@router.get("/live/contexts/{context_id}")
async def get_context(call: Call) -> LiveContextOut:
    """One of the caller's sessions with every message."""
    return await live_contexts.get_context(call.ctx, call.id("context_id"))


@router.put("/live/contexts/{context_id}")
async def update_context(call: Call[LiveContextIn]) -> Outcome[LiveContextOut]:
    """Change links ("" clears one), metadata, or replace the messages of one of the caller's sessions."""
    return await live_contexts.update_context(call.ctx, call.id("context_id"), call.body)


@router.delete("/live/contexts/{context_id}")
async def delete_context(call: Call) -> Outcome[None]:
    """Delete one of the caller's sessions and its messages."""
    return await live_contexts.delete_context(call.ctx, call.id("context_id"))


@router.get("/live/process-context/{process_id}")
async def process_context(call: Call) -> ProcessContextOut:
    """A visible process's checklist, its visible events, the caller's recent messages about it, preferences."""
    return await live_process_context.process_context(call.ctx, call.id("process_id"))
