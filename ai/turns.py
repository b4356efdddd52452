"""Storing a live turn's answer: each write is a short transaction of its own, acting as the session's owner
(always a member of it) — the reply with its suggested operations when the stream completed, the text the
members saw, marked unfinished, when it ended early."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ai.model import ToolCall
from ai.tool_calls import suggested_operations
from handlers.context import Context, Limits
from handlers.live import prompts as live_ai
from handlers.live.suggestions import SuggestedOperation
from handlers.schema import to_wire
from handlers.unit_of_work import unit_of_work
from persistence.errors import NotFound
from persistence.models import LiveContext, User


async def as_owner(sessionmaker: async_sessionmaker[AsyncSession], now: datetime, limits: Limits,
                   context_id: uuid.UUID, work: Callable[[Context], Awaitable[Any]]) -> Any:
    """Run `work` in a short transaction acting as the session's owner."""
    async with unit_of_work(sessionmaker, now) as unit:
        context = await unit.db.get(LiveContext, context_id)
        owner = await unit.db.get(User, context.user_id) if context is not None else None
        if owner is None:
            raise NotFound("live context", context_id)
        return await work(Context(db=unit.db, user=owner, now=unit.now, limits=limits))


async def store_completed(ctx: Context, context_id: uuid.UUID, text: str, calls: list[ToolCall],
                          metadata: dict[str, Any]) -> tuple[uuid.UUID, list[SuggestedOperation]]:
    # Checked against the checklist as it is now, not as it was when the turn began.
    checklist = await live_ai.current_checklist(ctx, context_id)
    operations = suggested_operations(calls, checklist)
    message = await live_ai.store_reply(ctx, context_id, text, {
        **metadata, "suggestedOperations": [to_wire(o) for o in operations]})
    return message.id, operations


async def store_partial(ctx: Context, context_id: uuid.UUID, text: str, metadata: dict[str, Any]) -> uuid.UUID:
    message = await live_ai.store_reply(ctx, context_id, text, metadata)
    return message.id
