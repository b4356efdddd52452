"""Time helpers shared by progress, plan and feed: UTC input, the caller's time zone, relative ages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator

from handlers.context import Context
from persistence import accounts


def as_utc(value: datetime) -> datetime:
    """Naive input is taken to be UTC; aware input is converted to UTC."""
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:  # e.g. year 1 with a positive offset: a 422, not a 500
        raise ValueError("date and time out of range") from None


# A request timestamp: ISO-8601 with Z or an offset; naive means UTC.
UTCInput = Annotated[datetime, AfterValidator(as_utc)]


def zone_named(name: str | None) -> tzinfo:
    if not name:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


async def user_zone(ctx: Context) -> tzinfo:
    """The caller's preferred time zone (UTC when unset or unknown): days and weeks start there."""
    name = await accounts.time_zone(ctx.db, ctx.user_id)
    return zone_named(name)


def time_ago(then: datetime, now: datetime) -> str:
    """A compact age: "now" under a minute, then "5m", "2h", "3d", "2w", "4mo", "1y"."""
    seconds = max(0, int((now - then).total_seconds()))
    if seconds < 60:
        return "now"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 24:
        return f"{hours}h"
    days = hours // 24
    if days < 7:
        return f"{days}d"
    if days < 30:
        return f"{days // 7}w"
    if days < 365:
        return f"{days // 30}mo"
    return f"{days // 365}y"


def day_start(moment: datetime, zone: tzinfo) -> datetime:
    """Midnight (in `zone`) of the day containing `moment`, as an aware datetime in `zone`."""
    local = moment.astimezone(zone)
    return datetime(local.year, local.month, local.day, tzinfo=zone)


def add_days(local_midnight: datetime, days: int) -> datetime:
    """Calendar-day arithmetic that stays on midnight across DST changes."""
    shifted = local_midnight.replace(tzinfo=None) + timedelta(days=days)
    return shifted.replace(tzinfo=local_midnight.tzinfo)
