"""Creating notifications: a stored row for the recipient plus a `notification.created` message on their topic."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from channels import topics
from handlers import catalogue
from handlers.accounts.users import UserBrief, brief
from handlers.context import Context, Message
from handlers.links import ServedLink
from handlers.schema import UTC, Out
from persistence import notifications
from persistence.enums import NotificationType
from persistence.models import Notification, User


class NotificationOut(Out):
    id: uuid.UUID
    type: NotificationType
    title: str
    message: str
    link: ServedLink
    read: bool
    metadata: dict[str, Any]
    user_id: uuid.UUID
    sender_id: uuid.UUID | None
    sender: UserBrief | None
    reference_id: uuid.UUID | None
    reference_type: str | None
    created_at: UTC
    updated_at: UTC | None


def notification_out(row: Notification, sender: User | None) -> NotificationOut:
    return NotificationOut(
        id=row.id, type=row.type, title=row.title, message=row.message, link=row.link, read=row.read,
        metadata=dict(row.notification_metadata or {}), user_id=row.user_id, sender_id=row.sender_id,
        sender=brief(sender) if sender is not None else None, reference_id=row.reference_id,
        reference_type=row.reference_type, created_at=row.created_at, updated_at=row.updated_at,
    )


async def notify(ctx: Context, recipients: Iterable[uuid.UUID], type_: NotificationType, title: str, message: str,
                 *, link: str | None = None, reference_id: uuid.UUID | None = None,
                 reference_type: str | None = None, metadata: dict[str, Any] | None = None,
                 include_self: bool = False) -> list[Message]:
    """Store one notification per recipient (the caller is skipped unless `include_self`); return the messages
    to publish after commit."""
    rows: list[Notification] = []
    for user_id in dict.fromkeys(recipients):
        if user_id == ctx.user_id and not include_self:
            continue
        rows.append(Notification(
            type=type_, title=title, message=message, link=link, read=False, reference_id=reference_id,
            reference_type=reference_type, notification_metadata=dict(metadata or {}), user_id=user_id,
            sender_id=ctx.user_id, created_at=ctx.now,
        ))
    if rows:
        await notifications.add(ctx.db, rows)  # one batched INSERT for every recipient, not a round trip each
    return [catalogue.NOTIFICATION_CREATED.message(topics.for_user(row.user_id), notification_out(row, ctx.user))
            for row in rows]
