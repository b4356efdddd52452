"""Tags: the shared topic vocabulary events are labelled with (the `topics` table)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from persistence.models import Topic


async def topic_names(db: AsyncSession) -> list[str]:
    """Every topic's name, as stored."""
    return list((await db.scalars(select(Topic.name))).all())


def add_topics(db: AsyncSession, rows: list[Topic]) -> None:
    """Staged: written with the session's next flush."""
    db.add_all(rows)


async def topic_name_taken(db: AsyncSession, name: str, exclude: uuid.UUID | None = None) -> bool:
    """Whether another topic (not `exclude`) has this name, compared case-insensitively."""
    stmt = select(Topic.id).where(func.lower(Topic.name) == name.lower())
    if exclude is not None:
        stmt = stmt.where(Topic.id != exclude)
    return await db.scalar(stmt) is not None


async def topics_page(db: AsyncSession, category: str | None, offset: int, limit: int) -> Sequence[Topic]:
    """Topics by name (case-insensitive), optionally of one category (case-insensitive), one page."""
    stmt = select(Topic)
    if category:
        stmt = stmt.where(func.lower(Topic.category) == category.lower())
    return (await db.scalars(stmt.order_by(func.lower(Topic.name), Topic.id).offset(offset).limit(limit))).all()


async def delete_topic(db: AsyncSession, topic: Topic) -> None:
    await db.delete(topic)
