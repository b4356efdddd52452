"""Queries of the job hand-off table (`job_handoffs`): the caller's session, never a commit."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from persistence.models import JobHandoff

# How long the committing instance has to enqueue a hand-off itself before any relay may take it.
FAST_PATH_GRACE = timedelta(seconds=10)


async def add(db: AsyncSession, items: Sequence[tuple[str, dict[str, Any]]], now: datetime) -> list[uuid.UUID]:
    ids = [uuid.uuid4() for _ in items]
    if items:
        await db.execute(insert(JobHandoff), [
            {"id": i, "task": t, "kwargs": k, "attempts": 0, "created_at": now, "available_at": now + FAST_PATH_GRACE}
            for i, (t, k) in zip(ids, items, strict=True)])
    return ids


async def done(db: AsyncSession, ids: Sequence[uuid.UUID]) -> None:
    if ids:
        await db.execute(delete(JobHandoff).where(JobHandoff.id.in_(ids)))


async def claim(db: AsyncSession, now: datetime, lease: timedelta, limit: int) -> list[JobHandoff]:
    """Hand-offs available now, leased to the caller for `lease` (other relays skip them meanwhile)."""
    stmt = (select(JobHandoff).where(JobHandoff.available_at <= now).order_by(JobHandoff.available_at)
            .limit(limit))
    if db.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    rows = list((await db.scalars(stmt)).all())
    if rows:
        await db.execute(update(JobHandoff).where(JobHandoff.id.in_([r.id for r in rows]))
                         .values(available_at=now + lease, attempts=JobHandoff.attempts + 1))
    return rows
