"""REST routes: the caller's notifications."""

from __future__ import annotations

from handlers.context import Outcome
from handlers.notifications import inbox as notifications
from handlers.notifications.inbox import NotificationChange, NotificationIn, NotificationList, NotificationQuery
from handlers.notifications.send import NotificationOut
from server.routing import ApiRouter, Call

router = ApiRouter("notifications")


@router.get("/notifications")
async def list_notifications(call: Call[None, NotificationQuery]) -> NotificationList:
    """The caller's notifications, newest first: {items, total, unread}."""
    return await notifications.list_notifications(call.ctx, call.query)


@router.get("/notifications/unread-count")
async def unread_count(call: Call) -> int:
    """How many of the caller's notifications are unread (a bare integer)."""
    return await notifications.unread_count(call.ctx)


@router.post("/notifications/mark-all-read", extra_methods=("PUT",))
async def mark_all_read(call: Call) -> Outcome[int]:
    """Mark every unread notification read; returns how many this call marked (a bare integer)."""
    return await notifications.mark_all_read(call.ctx)


@router.post("/notifications", status=201)
async def create_notification(call: Call[NotificationIn]) -> Outcome[NotificationOut]:
    """Create a notification: for yourself, or (administrators) for anyone; the sender is the caller."""
    return await notifications.create_notification(call.ctx, call.body)


@router.get("/notifications/{notification_id}")
async def get_notification(call: Call) -> NotificationOut:
    """One of the caller's notifications."""
    return await notifications.get_notification(call.ctx, call.id("notification_id"))


@router.put("/notifications/{notification_id}")
async def change_notification(call: Call[NotificationChange]) -> Outcome[NotificationOut]:
    """Mark one notification read or unread."""
    return await notifications.change_notification(call.ctx, call.id("notification_id"), call.body)


@router.delete("/notifications/{notification_id}")
async def delete_notification(call: Call) -> Outcome[None]:
    """Delete one of the caller's notifications."""
    return await notifications.delete_notification(call.ctx, call.id("notification_id"))
