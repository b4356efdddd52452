"""Notifications: a user's rows, their counts and read state."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from persistence.enums import NotificationType
from persistence.models import Notification


def _filters(user_id: uuid.UUID, unread_only: bool, type_: NotificationType | None) -> list[ColumnElement[bool]]:
    where = [Notification.user_id == user_id]
    if unread_only:
        where.append(Notification.read.is_(False))
    if type_ is not None:
        where.append(Notification.type == type_)
    return where


async def count(db: AsyncSession, user_id: uuid.UUID, *, unread_only: bool = False,
                type_: NotificationType | None = None) -> int:
    found = await db.scalar(select(func.count()).select_from(Notification)
                            .where(*_filters(user_id, unread_only, type_)))
    return int(found or 0)


async def page(db: AsyncSession, user_id: uuid.UUID, *, unread_only: bool = False,
               type_: NotificationType | None = None, offset: int, limit: int) -> Sequence[Notification]:
    """The user's notifications matching the filters, newest first."""
    return (await db.scalars(
        select(Notification).where(*_filters(user_id, unread_only, type_))
        .order_by(Notification.created_at.desc(), Notification.id.desc()).offset(offset).limit(limit)
    )).all()


async def own(db: AsyncSession, notification_id: uuid.UUID, user_id: uuid.UUID) -> Notification | None:
    """The notification if it is the user's."""
    return await db.scalar(
        select(Notification).where(Notification.id == notification_id, Notification.user_id == user_id))


async def add(db: AsyncSession, rows: Sequence[Notification]) -> None:
    db.add_all(rows)
    await db.flush()


async def mark_all_read(db: AsyncSession, user_id: uuid.UUID, now: datetime) -> list[uuid.UUID]:
    """One UPDATE … RETURNING: the ids are exactly the rows this call changed, even when another request marks or
    creates notifications at the same time."""
    result = await db.execute(
        update(Notification)
        .where(Notification.user_id == user_id, Notification.read.is_(False))
        .values(read=True, updated_at=now)
        .returning(Notification.id)
        .execution_options(synchronize_session=False)
    )
    return list(result.scalars())


async def delete(db: AsyncSession, row: Notification) -> None:
    await db.delete(row)
    await db.flush()
