"""The feed's two streams, newest first in (created_at, id) order with keyset cursors: posts and the status
changes of events."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from persistence.models import Event, Post, StatusLog

# (created_at, id) of the last item a page handed out; the next page starts strictly after it.
Cursor = tuple[datetime, uuid.UUID]


def _older_than(created_at: Any, ident: Any, cursor: Cursor) -> ColumnElement[bool]:
    at, item_id = cursor
    return or_(created_at < at, and_(created_at == at, ident < item_id))


async def posts(db: AsyncSession, visible: ColumnElement[bool], *, author_id: uuid.UUID | None = None,
                event_id: uuid.UUID | None = None, after: Cursor | None, limit: int) -> Sequence[Post]:
    """Up to `limit` posts `visible` lets through, optionally of one author and one room."""
    stmt = select(Post).where(visible)
    if author_id is not None:
        stmt = stmt.where(Post.author_id == author_id)
    if event_id is not None:
        stmt = stmt.where(Post.event_id == event_id)
    if after is not None:
        stmt = stmt.where(_older_than(Post.created_at, Post.id, after))
    return (await db.scalars(stmt.order_by(Post.created_at.desc(), Post.id.desc()).limit(limit))).all()


async def status_changes(db: AsyncSession, visible: ColumnElement[bool], *, user_id: uuid.UUID | None = None,
                         event_id: uuid.UUID | None = None, after: Cursor | None,
                         limit: int) -> list[tuple[StatusLog, str]]:
    """Up to `limit` status changes (with their event's title) of events `visible` lets through, optionally
    made by one user or of one event."""
    stmt = select(StatusLog, Event.title).join(Event, Event.id == StatusLog.event_id).where(visible)
    if user_id is not None:
        stmt = stmt.where(StatusLog.user_id == user_id)
    if event_id is not None:
        stmt = stmt.where(StatusLog.event_id == event_id)
    if after is not None:
        stmt = stmt.where(_older_than(StatusLog.created_at, StatusLog.id, after))
    rows = await db.execute(stmt.order_by(StatusLog.created_at.desc(), StatusLog.id.desc()).limit(limit))
    return [(log, title) for log, title in rows]
