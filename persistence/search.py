"""Search: case-insensitive substring matches per kind (users, events, processes, posts, topics), one page each.

`visible` (a clause, or for events the caller's selectable events) is the caller's access rule, passed in.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from persistence.models import Event, Post, Process, Topic, User


def contains(column: Any, text: str) -> ColumnElement[bool]:
    """`column` holds `text` in any case. The text is data, not a pattern: % and _ match themselves."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    matched: ColumnElement[bool] = column.ilike(f"%{escaped}%", escape="\\")
    return matched


async def users(db: AsyncSession, text: str, *, offset: int, limit: int) -> Sequence[User]:
    # Name and handle only: matching on email would let anyone probe who has which address.
    return (await db.scalars(
        select(User).where(or_(contains(User.name, text), contains(User.handle, text)))
        .order_by(User.name, User.id).offset(offset).limit(limit))).all()


async def events(db: AsyncSession, visible: Select[Event], text: str, *, offset: int,
                 limit: int) -> Sequence[Event]:
    return (await db.scalars(
        visible.where(or_(contains(Event.title, text), contains(Event.description, text)))
        .order_by(Event.start_time.desc(), Event.id.desc()).offset(offset).limit(limit))).all()


async def processes(db: AsyncSession, visible: ColumnElement[bool], text: str, *, offset: int,
                    limit: int) -> Sequence[Process]:
    return (await db.scalars(
        select(Process).where(visible, or_(contains(Process.title, text), contains(Process.description, text)))
        .order_by(Process.title, Process.id).offset(offset).limit(limit))).all()


async def posts(db: AsyncSession, visible: ColumnElement[bool], text: str, *, offset: int,
                limit: int) -> Sequence[Post]:
    return (await db.scalars(
        select(Post).where(visible, contains(Post.content, text))
        .order_by(Post.created_at.desc(), Post.id.desc()).offset(offset).limit(limit))).all()


async def topics(db: AsyncSession, text: str, *, offset: int, limit: int) -> Sequence[Topic]:
    return (await db.scalars(
        select(Topic).where(or_(contains(Topic.name, text), contains(Topic.category, text)))
        .order_by(Topic.name, Topic.id).offset(offset).limit(limit))).all()
