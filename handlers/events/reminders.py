"""Event reminders: one row per participant and due time, kept in step with the event inside the same
transaction as the change, claimed by a scheduler when due, and sent once.

- `sync_event` makes an event's unsent reminders match its members (not declined) and its start time, each
  member's due time being start - their `reminder_minutes` preference (default 15). Called by the handlers
  that create or move an event or change who takes part; deleting the event deletes its rows (FK cascade).
- `claim_due` marks due, unsent, unclaimed (or stale-claimed) rows as claimed by one scheduler: with
  `FOR UPDATE SKIP LOCKED` on PostgreSQL, under SQLite's single writer elsewhere — two schedulers never claim
  one row, and a claim whose job got lost is taken over after `lease`.
- `send` flips `sent_at` from NULL in the same transaction that stores the notification, so a reminder is
  sent exactly once whoever runs it and however often.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from channels import topics
from handlers import catalogue
from handlers.context import Message
from handlers.notifications.send import notification_out
from persistence.enums import NotificationType, ParticipantStatus
from persistence.models import Event, EventParticipant, Notification, Reminder, UserPreferences

DEFAULT_MINUTES = 15


def event_link(event_id: uuid.UUID) -> str:
    return f"/room?id={event_id}"


async def _wanted(db: AsyncSession, event: Event) -> dict[uuid.UUID, datetime]:
    rows = await db.execute(
        select(EventParticipant.user_id, UserPreferences.reminder_minutes)
        .outerjoin(UserPreferences, UserPreferences.user_id == EventParticipant.user_id)
        .where(EventParticipant.event_id == event.id, EventParticipant.status != ParticipantStatus.DECLINED)
    )
    return {user_id: event.start_time - timedelta(minutes=DEFAULT_MINUTES if minutes is None else minutes)
            for user_id, minutes in rows.all()}


async def sync_event(db: AsyncSession, event: Event, now: datetime) -> None:
    """Create, move or drop the event's unsent reminders. Sent ones stay: they are the record that
    (event, user, due time) was reminded, so moving the event back and forth never reminds twice."""
    await db.flush()
    wanted = await _wanted(db, event) if event.start_time > now else {}
    existing = (await db.execute(
        select(Reminder.id, Reminder.user_id, Reminder.due_at, Reminder.sent_at).where(Reminder.event_id == event.id)
    )).all()
    reminded = {user_id for _, user_id, _, sent_at in existing if sent_at is not None}
    have = {(user_id, due_at) for _, user_id, due_at, _ in existing}
    stale = [rid for rid, user_id, due_at, sent_at in existing
             if sent_at is None and wanted.get(user_id) != due_at]
    if stale:
        await db.execute(delete(Reminder).where(Reminder.id.in_(stale), Reminder.sent_at.is_(None)))
    for user_id, due_at in wanted.items():
        if (user_id, due_at) in have:
            continue
        # Already past its due time (a late invite, a move into the next minutes): remind now, unless this
        # user already had this event's reminder.
        if due_at <= now and user_id in reminded:
            continue
        db.add(Reminder(event_id=event.id, user_id=user_id, due_at=due_at, created_at=now))
    await db.flush()


async def drop_for_user(db: AsyncSession, event_id: uuid.UUID, user_id: uuid.UUID) -> None:
    await db.execute(delete(Reminder).where(Reminder.event_id == event_id, Reminder.user_id == user_id,
                                            Reminder.sent_at.is_(None)))


async def claim_due(db: AsyncSession, now: datetime, claimer: str, lease: timedelta,
                    limit: int = 500) -> list[uuid.UUID]:
    open_ = and_(Reminder.sent_at.is_(None), Reminder.due_at <= now,
                 or_(Reminder.claimed_at.is_(None), Reminder.claimed_at < now - lease))
    due = (select(Reminder.id).where(open_).order_by(Reminder.due_at).limit(limit)
           .with_for_update(skip_locked=True))
    claimed = await db.scalars(update(Reminder).where(Reminder.id.in_(due.scalar_subquery()), open_)
                               .values(claimed_by=claimer[:100], claimed_at=now).returning(Reminder.id))
    return list(claimed.all())


def _minutes(delta: timedelta) -> str:
    minutes = max(0, round(delta.total_seconds() / 60))
    if minutes >= 120 and minutes % 60 == 0:
        return f"{minutes // 60} hours"
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


async def send(db: AsyncSession, reminder_id: uuid.UUID, now: datetime) -> list[Message]:
    """Send one reminder (a notification row plus a `reminder` message on the user's topic) if nobody has;
    return the messages to publish after commit."""
    row = (await db.execute(
        update(Reminder).where(Reminder.id == reminder_id, Reminder.sent_at.is_(None)).values(sent_at=now)
        .returning(Reminder.event_id, Reminder.user_id, Reminder.due_at)
    )).first()
    if row is None:
        return []  # sent already, or dropped because the event moved or the user left
    event_id, user_id, due_at = row
    event = await db.get(Event, event_id)
    member = await db.get(EventParticipant, (event_id, user_id))
    if event is None or member is None or member.status == ParticipantStatus.DECLINED:
        await db.execute(delete(Reminder).where(Reminder.id == reminder_id))
        return []
    starts_in = event.start_time - now
    when = event.start_time.strftime("%Y-%m-%d %H:%M UTC")
    message = (f"{event.title} starts in {_minutes(starts_in)} ({when})" if starts_in.total_seconds() > 0
               else f"{event.title} has started ({when})")
    data: dict[str, Any] = {"eventId": str(event.id), "reminderId": str(reminder_id),
                            "startTime": event.start_time.isoformat().replace("+00:00", "Z"),
                            "dueAt": due_at.isoformat().replace("+00:00", "Z")}
    note = Notification(type=NotificationType.EVENT_REMINDER, title="Event reminder", message=message,
                        link=event_link(event.id), read=False, reference_id=event.id, reference_type="event",
                        notification_metadata=data, user_id=user_id, sender_id=None, created_at=now)
    db.add(note)
    await db.flush()
    topic = topics.for_user(user_id)
    return [catalogue.NOTIFICATION_CREATED.message(topic, notification_out(note, None)),
            catalogue.REMINDER.message(topic, {
                "eventId": data["eventId"], "reminderId": data["reminderId"], "startTime": data["startTime"],
                "dueAt": data["dueAt"], "title": event.title, "message": message, "notificationId": str(note.id)})]
