"""A user's notifications: list, counts, read state, delete, and direct creation.

Everyone sees and changes only their own notifications (others' answer 404). Direct creation
(`POST /notifications`): a user may create one for themself, an administrator for anyone; the sender is
always the caller. Every change is published on the recipient's user topic after commit:
`notification.created|updated` carry the notification, `notification.deleted` carries `{id}`, and
mark-all-read publishes one `notification.updated` carrying `{ids, read: true}`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from pydantic import Field

from channels import topics
from handlers import catalogue
from handlers.context import Context, Outcome
from handlers.links import OptionalLink
from handlers.notifications.send import NotificationOut, notification_out
from handlers.schema import In, Limit, Out, PageQuery, metadata_field
from persistence import accounts, notifications
from persistence.enums import NotificationType
from persistence.errors import Forbidden, NotFound
from persistence.models import Notification


class NotificationQuery(PageQuery):
    limit: Limit = 50
    """notifications per page"""
    unread_only: bool = False
    """only unread notifications"""
    type: NotificationType | None = None
    """only notifications of this type"""


class NotificationList(Out):
    items: list[NotificationOut]
    total: int = Field(description="notifications matching the filters")
    unread: int = Field(description="all of the caller's unread notifications")


class NotificationIn(In):
    type: NotificationType = NotificationType.SYSTEM
    """what kind of notification (mention, event_invite, system, ...)"""
    title: str = Field(min_length=1, max_length=300)
    """the headline"""
    message: str = Field(min_length=1, max_length=5000)
    """the text"""
    link: OptionalLink = None
    """an http(s) or /uploads/ link to follow"""
    read: bool = False
    """create it already read"""
    user_id: uuid.UUID | None = Field(default=None, description="the recipient; the caller when omitted")
    reference_id: uuid.UUID | None = None
    """the id of what it is about (an event, a post, ...)"""
    reference_type: str | None = Field(default=None, max_length=40)
    """what `referenceId` names, e.g. `event` or `post`"""
    metadata: dict[str, Any] | None = metadata_field("notification")
    """free-form JSON kept as sent (also accepted as `notificationMetadata`)"""
    # `sender_id` is accepted and ignored: the sender is always the caller.


class NotificationChange(In):
    read: bool
    """mark it read (true) or unread (false)"""


async def _outs(ctx: Context, rows: Sequence[Notification]) -> list[NotificationOut]:
    sender_ids = {r.sender_id for r in rows if r.sender_id is not None}
    senders = await accounts.users_by_id(ctx.db, sender_ids)
    return [notification_out(r, senders.get(r.sender_id) if r.sender_id else None) for r in rows]


async def _own(ctx: Context, notification_id: uuid.UUID) -> Notification:
    row = await notifications.own(ctx.db, notification_id, ctx.user_id)
    if row is None:
        raise NotFound("notification", notification_id)
    return row


async def unread_count(ctx: Context) -> int:
    return await notifications.count(ctx.db, ctx.user_id, unread_only=True)


async def list_notifications(ctx: Context, query: NotificationQuery) -> NotificationList:
    offset, limit = query.window(ctx.limits.max_page_size)
    total = await notifications.count(ctx.db, ctx.user_id, unread_only=query.unread_only, type_=query.type)
    rows = await notifications.page(ctx.db, ctx.user_id, unread_only=query.unread_only, type_=query.type,
                                    offset=offset, limit=limit)
    return NotificationList(items=await _outs(ctx, rows), total=total, unread=await unread_count(ctx))


async def get_notification(ctx: Context, notification_id: uuid.UUID) -> NotificationOut:
    return (await _outs(ctx, [await _own(ctx, notification_id)]))[0]


async def create_notification(ctx: Context, data: NotificationIn) -> Outcome[NotificationOut]:
    recipient = data.user_id or ctx.user_id
    if recipient != ctx.user_id:
        if not ctx.user.is_admin:
            raise Forbidden("you may create notifications only for yourself")
        if await accounts.user(ctx.db, recipient) is None:
            raise NotFound("user", recipient)
    row = Notification(
        type=data.type, title=data.title, message=data.message, link=data.link, read=data.read,
        reference_id=data.reference_id, reference_type=data.reference_type,
        notification_metadata=dict(data.metadata or {}), user_id=recipient, sender_id=ctx.user_id,
        created_at=ctx.now,
    )
    await notifications.add(ctx.db, [row])
    out = notification_out(row, ctx.user)
    return Outcome(out, publish=[catalogue.NOTIFICATION_CREATED.message(topics.for_user(recipient), out)])


async def change_notification(ctx: Context, notification_id: uuid.UUID,
                              change: NotificationChange) -> Outcome[NotificationOut]:
    row = await _own(ctx, notification_id)
    changed = row.read != change.read
    if changed:
        row.read = change.read
        row.updated_at = ctx.now
        await ctx.db.flush()
    out = (await _outs(ctx, [row]))[0]
    publish = [catalogue.NOTIFICATION_UPDATED.message(topics.for_user(ctx.user_id), out)] if changed else []
    return Outcome(out, publish=publish)


async def mark_all_read(ctx: Context) -> Outcome[int]:
    """One UPDATE … RETURNING: the count is exactly the rows this call changed, even when another request
    marks or creates notifications at the same time."""
    ids = [str(i) for i in await notifications.mark_all_read(ctx.db, ctx.user_id, ctx.now)]
    publish = [catalogue.NOTIFICATION_UPDATED.message(topics.for_user(ctx.user_id),
                                                      {"ids": ids, "read": True})] if ids else []
    return Outcome(len(ids), publish=publish)


async def delete_notification(ctx: Context, notification_id: uuid.UUID) -> Outcome[None]:
    row = await _own(ctx, notification_id)
    await notifications.delete(ctx.db, row)
    return Outcome(None, publish=[catalogue.NOTIFICATION_DELETED.message(topics.for_user(ctx.user_id),
                                                                           {"id": str(notification_id)})])
