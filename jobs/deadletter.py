"""Dead letters: jobs that failed after their retries, were poisoned (their worker kept dying), or could not
be enqueued at all. Stored in the database so they outlive Redis; admins list them and retry them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import Field
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.catalogue import JOBS
from handlers.context import Context, JobCall, Outcome
from handlers.schema import UTC, In, Out
from persistence.errors import Conflict, NotFound
from persistence.models import DeadLetter

MAX_ERROR = 4000


class DeadLetterOut(Out):
    id: uuid.UUID
    task_name: str
    task_id: str | None
    arguments: dict[str, Any]
    reason: str
    error: str
    attempts: int
    created_at: UTC
    retried_at: UTC | None
    retried_by_id: uuid.UUID | None


class DeadLetterQuery(In):
    limit: int = Field(default=50, ge=1, le=500)
    """dead letters to list, newest first"""
    include_retried: bool = False
    """include those already retried"""


class RetriedOut(Out):
    id: uuid.UUID
    task_name: str
    message: str


def dead_letter_out(row: DeadLetter) -> DeadLetterOut:
    return DeadLetterOut(id=row.id, task_name=row.task_name, task_id=row.task_id, arguments=dict(row.kwargs or {}),
                         reason=row.reason, error=row.error, attempts=row.attempts, created_at=row.created_at,
                         retried_at=row.retried_at, retried_by_id=row.retried_by_id)


async def record(db: AsyncSession, *, task: str, kwargs: dict[str, Any], task_id: str | None, reason: str,
                 error: str, attempts: int, now: datetime) -> DeadLetter:
    row = DeadLetter(task_name=task, task_id=task_id, kwargs=kwargs, reason=reason, error=error[:MAX_ERROR],
                     attempts=attempts, created_at=now)
    db.add(row)
    await db.flush()
    return row


async def count_open(db: AsyncSession) -> int:
    return int(await db.scalar(select(func.count()).select_from(DeadLetter).where(DeadLetter.retried_at.is_(None)))
               or 0)


async def list_dead(ctx: Context, query: DeadLetterQuery) -> list[DeadLetterOut]:
    stmt = select(DeadLetter)
    if not query.include_retried:
        stmt = stmt.where(DeadLetter.retried_at.is_(None))
    rows = await ctx.db.scalars(stmt.order_by(DeadLetter.created_at.desc(), DeadLetter.id.desc())
                                .limit(min(query.limit, ctx.limits.max_page_size)))
    return [dead_letter_out(r) for r in rows]


async def retry(ctx: Context, dead_id: uuid.UUID) -> Outcome[RetriedOut]:
    """Mark the dead letter retried and enqueue its job again (after commit, with fresh retries). Retrying one
    twice is refused, so two admins clicking at once enqueue it once."""
    marked = (await ctx.db.execute(
        update(DeadLetter).where(DeadLetter.id == dead_id, DeadLetter.retried_at.is_(None))
        .values(retried_at=ctx.now, retried_by_id=ctx.user_id)
        .returning(DeadLetter.task_name, DeadLetter.kwargs)
    )).first()
    if marked is None:
        if await ctx.db.get(DeadLetter, dead_id) is None:
            raise NotFound("dead letter", dead_id)
        raise Conflict("this dead letter was already retried")
    task, kwargs = marked
    if task not in JOBS:  # recorded by an older release; the rollback leaves it unretried
        raise Conflict(f"no job is called {task!r} any more; it cannot be retried")
    out = RetriedOut(id=dead_id, task_name=task, message="enqueued again")
    return Outcome(out, enqueue=[JobCall(task, dict(kwargs or {}))])
