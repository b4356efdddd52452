"""Event time: `start_time`/`end_time` are the truth; the legacy date/time/duration strings are parsed on the way
in and derived on the way out."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator

from handlers.clock import as_utc
from persistence.errors import Invalid

# Longer than any real meeting, short enough that start + duration never overflows a datetime.
MAX_DURATION = timedelta(days=366)
MAX_YEAR = 9000

_DURATION = re.compile(
    r"^(?:(?P<h>\d+(?:\.\d+)?)\s*(?:h|hr|hrs|hour|hours))?\s*"
    r"(?:(?P<m>\d+)\s*(?:m|min|mins|minute|minutes)?)?$"
)


def _event_time(value: datetime) -> datetime:
    try:
        utc = as_utc(value)
    except OverflowError:
        raise ValueError("datetime out of range") from None
    # Leaves room to add a day or a duration without overflowing.
    if utc.year > MAX_YEAR:
        raise ValueError(f"year must be at most {MAX_YEAR}")
    return utc


def _bounded_day(value: date) -> date:
    if value.year > MAX_YEAR:
        raise ValueError(f"year must be at most {MAX_YEAR}")
    return value


def _date_part(value: Any) -> Any:
    # Clients sometimes send a full ISO timestamp where a calendar date is expected; its date part is meant.
    if isinstance(value, str) and len(value) > 10 and value[10:11] in ("T", " "):
        return value[:10]
    return value


# clock.UTCInput plus bounds: extreme values would otherwise overflow (a 500) when a duration is added.
EventTime = Annotated[datetime, AfterValidator(_event_time)]
DateInput = Annotated[date, BeforeValidator(_date_part), AfterValidator(_bounded_day)]


def invalid(field: str, message: str) -> Invalid:
    return Invalid(f"{field}: {message}", errors=[{"field": field, "message": message, "type": "value_error"}])


@dataclass(frozen=True)
class Legacy:
    date: str
    time: str
    duration: str


def derive(start: datetime, end: datetime) -> Legacy:
    """The original's `date` ("YYYY-MM-DD"), `time` ("HH:MM") and `duration` ("<minutes>min"), in UTC."""
    start = start.astimezone(UTC)
    minutes = max(0, int((end - start).total_seconds() // 60))
    return Legacy(start.strftime("%Y-%m-%d"), start.strftime("%H:%M"), f"{minutes}min")


def parse_date(value: str) -> date:
    try:
        return _bounded_day(date.fromisoformat(_date_part(value.strip())))
    except ValueError:
        raise invalid("date", f"{value!r} is not a date (YYYY-MM-DD) up to year {MAX_YEAR}") from None


def parse_clock(value: str) -> time:
    text = value.strip().upper()
    meridiem = text[-2:] if text.endswith(("AM", "PM")) else None
    if meridiem:
        text = text[:-2].strip()
    match = re.fullmatch(r"(\d{1,2}):(\d{2})(?::(\d{2}))?", text)
    hour = int(match.group(1)) if match else -1
    if match and meridiem and 1 <= hour <= 12:
        hour = hour % 12 + (12 if meridiem == "PM" else 0)
    elif meridiem:
        hour = -1
    if not match or not 0 <= hour <= 23 or int(match.group(2)) > 59 or int(match.group(3) or 0) > 59:
        raise invalid("time", f"{value!r} is not a time of day (HH:MM)")
    return time(hour, int(match.group(2)), int(match.group(3) or 0))


def parse_duration(value: str | int) -> timedelta:
    """Minutes as a number, or text such as "60min", "1h", "1h30m", "1.5 hours", "90"."""
    if isinstance(value, int):
        minutes = float(value)
    else:
        match = _DURATION.fullmatch(value.strip().lower())
        if not value.strip() or match is None or not (match.group("h") or match.group("m")):
            raise invalid("duration", f"{value!r} is not a duration (e.g. 60min, 1h, 90)")
        minutes = float(match.group("h") or 0) * 60 + int(match.group("m") or 0)
    if minutes < 0 or timedelta(minutes=minutes) > MAX_DURATION:
        raise invalid("duration", "must be between 0 minutes and 366 days")
    return timedelta(minutes=minutes)


def combine(day: date, clock: time) -> datetime:
    return datetime.combine(day, clock, tzinfo=UTC)


def check_order(start: datetime, end: datetime) -> None:
    if end < start:
        raise invalid("endTime", "must not be before startTime")
    if end - start > MAX_DURATION:
        raise invalid("endTime", "an event may last at most 366 days")


def resolve_new(start_time: datetime | None, end_time: datetime | None, day: str | None, clock: str | None,
                duration: str | int | None) -> tuple[datetime, datetime]:
    """Times for a new event: explicit start/end win; otherwise legacy date + time and duration."""
    start = start_time
    if start is None and day:
        if not clock:
            raise invalid("time", "is required with date (or send startTime)")
        start = combine(parse_date(day), parse_clock(clock))
    if start is None:
        raise invalid("startTime", "is required (or date and time)")
    end = end_time
    if end is None and duration is not None and duration != "":
        end = start + parse_duration(duration)
    if end is None:
        raise invalid("endTime", "is required (or duration)")
    check_order(start, end)
    return start, end


def resolve_change(current_start: datetime, current_end: datetime, changes: dict[str, Any]) -> tuple[datetime,
                                                                                                       datetime]:
    """Times after a partial update. An explicit `start_time`/`end_time` moves only that edge; legacy `date`/`time`
    move the whole event (its duration is a separate legacy field) unless `duration` or `end_time` is also sent."""
    for key in ("start_time", "end_time"):
        if key in changes and changes[key] is None:
            raise invalid("startTime" if key == "start_time" else "endTime", "cannot be null")
    start, end = current_start, current_end
    day, clock, duration = changes.get("date"), changes.get("time"), changes.get("duration")
    moved = False
    if changes.get("start_time") is not None:
        start = changes["start_time"]
    elif day or clock:
        start = combine(parse_date(day) if day else current_start.date(),
                        parse_clock(clock) if clock else current_start.time())
        moved = True
    if changes.get("end_time") is not None:
        end = changes["end_time"]
    elif duration is not None and duration != "":
        end = start + parse_duration(duration)
    elif moved:
        end = start + (current_end - current_start)
    check_order(start, end)
    return start, end
