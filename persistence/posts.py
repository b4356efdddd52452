"""Posts: loading, listing and storing post rows, and finding the users a post mentions."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from persistence.models import Post, User


async def get(db: AsyncSession, post_id: uuid.UUID) -> Post | None:
    """The post whoever may see it: for callers that already checked access to something it holds."""
    return await db.get(Post, post_id)


async def find(db: AsyncSession, post_id: uuid.UUID, visible: ColumnElement[bool]) -> Post | None:
    """The post when `visible` (the caller's visibility rule) lets it through."""
    return await db.scalar(select(Post).where(Post.id == post_id, visible))


async def is_visible(db: AsyncSession, post_id: uuid.UUID, visible: ColumnElement[bool]) -> bool:
    return await db.scalar(select(Post.id).where(Post.id == post_id, visible)) is not None


async def lock(db: AsyncSession, post_id: uuid.UUID) -> Post | None:
    """The post re-read under a row lock (fresh values, not the identity map's)."""
    return await db.get(Post, post_id, with_for_update=True, populate_existing=True)


async def page(db: AsyncSession, visible: ColumnElement[bool], *, event_id: uuid.UUID | None = None,
               author_id: uuid.UUID | None = None, offset: int, limit: int) -> Sequence[Post]:
    """Newest first among the posts `visible` lets through, optionally of one room and one author."""
    stmt = select(Post).where(visible)
    if event_id is not None:
        stmt = stmt.where(Post.event_id == event_id)
    if author_id is not None:
        stmt = stmt.where(Post.author_id == author_id)
    return (await db.scalars(stmt.order_by(Post.created_at.desc(), Post.id.desc()).offset(offset).limit(limit))).all()


async def by_author(db: AsyncSession, author_id: uuid.UUID, *, start: datetime | None, until: datetime | None,
                    offset: int, limit: int) -> Sequence[Post]:
    """One author's posts created in [start, until) (either end open when None), newest first."""
    stmt = select(Post).where(Post.author_id == author_id)
    if start is not None:
        stmt = stmt.where(Post.created_at >= start)
    if until is not None:
        stmt = stmt.where(Post.created_at < until)
    return (await db.scalars(stmt.order_by(Post.created_at.desc(), Post.id.desc()).offset(offset).limit(limit))).all()


async def created_times(db: AsyncSession, author_id: uuid.UUID) -> Sequence[datetime]:
    return (await db.scalars(select(Post.created_at).where(Post.author_id == author_id))).all()


async def save(db: AsyncSession, post: Post) -> None:
    """Write a new or changed post now, so its id and defaults are known."""
    db.add(post)
    await db.flush()


async def remove(db: AsyncSession, post: Post) -> None:
    """Its media rows go with it (ON DELETE CASCADE)."""
    await db.delete(post)
    await db.flush()


# ---- the users a post mentions -----------------------------------------------------------------------------------

async def user_ids_by_handles(db: AsyncSession, handles: Collection[str], *,
                              except_id: uuid.UUID) -> Sequence[uuid.UUID]:
    """The users with these (lower-cased) handles, `except_id` left out."""
    return (await db.scalars(
        select(User.id).where(func.lower(User.handle).in_(handles), User.id != except_id))).all()
