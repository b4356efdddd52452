"""Idempotency keys: `first_time(db, key)` inserts the key in the job's own transaction and says whether it
was new. The job does its effect only when it was, so a redelivered job (its worker died after the commit,
before the acknowledgement) finds the key and does nothing."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from persistence.models import JobKey


async def first_time(db: AsyncSession, key: str, task: str, now: datetime) -> bool:
    values = {"key": key, "task": task, "created_at": now}
    insert = postgresql.insert if db.get_bind().dialect.name == "postgresql" else sqlite.insert
    result = await db.execute(insert(JobKey).values(**values).on_conflict_do_nothing(index_elements=["key"]))
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def forget_before(db: AsyncSession, moment: datetime) -> int:
    result = await db.execute(delete(JobKey).where(JobKey.created_at < moment))
    return int(result.rowcount)  # type: ignore[attr-defined]
