"""Tags: the shared topic vocabulary events are labelled with (the `topics` table)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from persistence.models import Topic


async def topic_names(db: AsyncSession) -> list[str]:
    """Every topic's name, as stored."""
    return list((await db.scalars(select(Topic.name))).all())


def add_topics(db: AsyncSession, rows: list[Topic]) -> None:
    """Staged: written with the session's next flush."""
    db.add_all(rows)
