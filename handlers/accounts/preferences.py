"""A user's preferences: one row per user, created with defaults on first read, updated field by field."""

from __future__ import annotations

import uuid
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from handlers.context import Context
from handlers.events import reminders
from handlers.schema import UTC, In, Out
from persistence.enums import Theme
from persistence.models import Event, EventParticipant, UserPreferences

MAX_REMINDER_MINUTES = 7 * 24 * 60


class PrefsOut(Out):
    id: uuid.UUID
    user_id: uuid.UUID
    theme: str
    email_notifications: bool
    push_notifications: bool
    time_zone: str
    language: str
    additional_settings: dict[str, Any]
    reminder_minutes: int
    created_at: UTC
    updated_at: UTC | None


def valid_time_zone(value: str | None) -> str | None:
    if value is None:
        return None
    if not value or ".." in value or value.startswith("/"):
        raise ValueError("unknown time zone")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r} (use an IANA name such as Europe/Paris)") from None
    return value


class PrefsUpdate(In):
    theme: Theme | None = None
    """light, dark or system"""
    language: str | None = Field(default=None, min_length=2, max_length=16)
    """a language tag such as `en` or `fr-CA`"""
    time_zone: str | None = Field(default=None, max_length=64)
    """an IANA time zone such as `Europe/Paris`"""
    email_notifications: bool | None = None
    """send notifications by email"""
    push_notifications: bool | None = None
    """send push notifications"""
    reminder_minutes: int | None = Field(default=None, ge=0, le=MAX_REMINDER_MINUTES)
    """how long before an event to be reminded, in minutes"""
    additional_settings: dict[str, Any] | None = None
    """free-form settings, merged into the stored ones by key"""

    @field_validator("theme", mode="before")
    @classmethod
    def _theme(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    _tz = field_validator("time_zone")(valid_time_zone)


def prefs_out(p: UserPreferences) -> PrefsOut:
    return PrefsOut(
        id=p.id, user_id=p.user_id, theme=p.theme, email_notifications=p.email_notifications,
        push_notifications=p.push_notifications, time_zone=p.time_zone, language=p.language,
        additional_settings=dict(p.additional_settings or {}), reminder_minutes=p.reminder_minutes,
        created_at=p.created_at, updated_at=p.updated_at,
    )


async def load(ctx: Context) -> UserPreferences:
    """The caller's row, created with defaults when missing (concurrent first reads create it once)."""
    stmt = select(UserPreferences).where(UserPreferences.user_id == ctx.user_id)
    prefs = await ctx.db.scalar(stmt)
    if prefs is not None:
        return prefs
    prefs = UserPreferences(user_id=ctx.user_id, created_at=ctx.now, additional_settings={})
    try:
        async with ctx.db.begin_nested():
            ctx.db.add(prefs)
            await ctx.db.flush()
    except IntegrityError:
        found = await ctx.db.scalar(stmt)
        assert found is not None
        return found
    return prefs


async def get_preferences(ctx: Context) -> PrefsOut:
    return prefs_out(await load(ctx))


async def update_preferences(ctx: Context, data: PrefsUpdate) -> PrefsOut:
    prefs = await load(ctx)
    given = {k: v for k, v in data.given().items() if v is not None}
    for name in ("language", "time_zone", "email_notifications", "push_notifications", "reminder_minutes"):
        if name in given:
            setattr(prefs, name, given[name])
    if "theme" in given:
        prefs.theme = Theme(given["theme"]).value
    extra = given.get("additional_settings")
    if extra:
        # Merged by key; inner keys are stored exactly as sent (never re-cased).
        prefs.additional_settings = {**(prefs.additional_settings or {}), **extra}
        # The settings page sends its push toggle inside additional_settings; honour it in the real column.
        push = extra.get("push_notifications", extra.get("pushNotifications"))
        if isinstance(push, bool) and "push_notifications" not in given:
            prefs.push_notifications = push
    prefs.updated_at = ctx.now
    await ctx.db.flush()
    if "reminder_minutes" in given:
        # Unsent reminders of the user's upcoming events move to the new lead time.
        upcoming = await ctx.db.scalars(
            select(Event).join(EventParticipant, EventParticipant.event_id == Event.id)
            .where(EventParticipant.user_id == ctx.user_id, Event.start_time > ctx.now))
        for event in upcoming.all():
            await reminders.sync_event(ctx.db, event, ctx.now)
    return prefs_out(prefs)
