"""Media rows: loading, attaching and storing media items, and the stored files their rows point to."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from persistence.models import Event, Media, Post

# (storage_key, media_metadata) of one media row: where its upload and what was derived from it are stored.
FileRow = tuple[str | None, dict[str, Any] | None]


async def find(db: AsyncSession, media_id: uuid.UUID, *, for_update: bool = False) -> Media | None:
    return await db.get(Media, media_id, with_for_update=for_update)


async def of_posts(db: AsyncSession, post_ids: Collection[uuid.UUID]) -> Sequence[Media]:
    """Every media item of these posts, oldest first (then by id)."""
    return (await db.scalars(
        select(Media).where(Media.post_id.in_(post_ids)).order_by(Media.created_at, Media.id))).all()


async def unattached_upload(db: AsyncSession, *, url: str, user_id: uuid.UUID) -> Media | None:
    """The newest of `user_id`'s stored uploads at `url` not yet on a post, locked for attaching."""
    return await db.scalar(
        select(Media)
        .where(Media.url == url, Media.created_by_id == user_id, Media.post_id.is_(None),
               Media.storage_key.is_not(None))
        .order_by(Media.created_at.desc())
        .limit(1)
        .with_for_update()
    )


async def in_visible_event(db: AsyncSession, event_id: uuid.UUID, visible: ColumnElement[bool]) -> bool:
    """Whether the event an item belongs to passes `visible` (the caller's membership rule)."""
    return await db.scalar(select(Event.id).where(Event.id == event_id, visible)) is not None


async def files_of_posts(db: AsyncSession, post_ids: Collection[uuid.UUID]) -> list[FileRow]:
    return await _files_where(db, Media.post_id.in_(post_ids))


async def files_of_event(db: AsyncSession, event_id: uuid.UUID) -> list[FileRow]:
    """The event's own media and its room posts' media."""
    room_posts = select(Post.id).where(Post.event_id == event_id).scalar_subquery()
    return await _files_where(db, or_(Media.event_id == event_id, Media.post_id.in_(room_posts)))


async def _files_where(db: AsyncSession, condition: ColumnElement[bool]) -> list[FileRow]:
    rows = await db.execute(select(Media.storage_key, Media.media_metadata).where(condition))
    return [(key, meta) for key, meta in rows]


async def save(db: AsyncSession, row: Media) -> None:
    """Write a new or changed item now, so its id and defaults are known."""
    db.add(row)
    await db.flush()


async def remove(db: AsyncSession, row: Media) -> None:
    await db.delete(row)
    await db.flush()
