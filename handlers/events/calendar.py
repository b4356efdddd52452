"""The calendar: the caller's events (created or taking part) overlapping a range of UTC days."""

from __future__ import annotations

import calendar as gregorian
import uuid
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any, Literal

from pydantic import Field, model_validator

from handlers import access
from handlers.context import Context
from handlers.events.manage import overlapping
from handlers.events.times import MAX_YEAR, DateInput, combine
from handlers.events.views import EventOut, event_outs
from handlers.schema import UTC, Limit, Out, PageQuery
from persistence import event_reads, events
from persistence.enums import EventStatus

MAX_RANGE_DAYS = 62
# A range is the calendar's natural bound; this only stops a pathological account from building a huge response.
CALENDAR_MAX = 10_000
DEBUG_SAMPLE = 10


class CalendarPage(PageQuery):
    limit: Limit = CALENDAR_MAX
    """events per page"""


class CalendarRange(CalendarPage):
    """Inclusive `start_date`..`end_date` (YYYY-MM-DD, UTC days), at most 62 days."""

    start_date: DateInput
    """the first day, YYYY-MM-DD (UTC)"""
    end_date: DateInput
    """the last day, YYYY-MM-DD (UTC), at most 62 days after the first"""

    @model_validator(mode="after")
    def _bounded(self) -> CalendarRange:
        if self.end_date < self.start_date:
            raise ValueError("end_date must not be before start_date")
        if (self.end_date - self.start_date).days + 1 > MAX_RANGE_DAYS:
            raise ValueError(f"the range may span at most {MAX_RANGE_DAYS} days")
        return self


class CalendarView(CalendarRange):
    view: Literal["full", "compact"] = Field(
        default="full", description="`full`: every event as `EventOut`, with its participants and topics (what the "
        "original frontend reads); `compact`: only what a calendar cell shows (`CalendarCell`), about a tenth of "
        "the size and cost")


class CalendarCell(Out):
    """An event in a calendar cell (`view=compact`): a month of events in a few hundred kilobytes."""

    id: uuid.UUID
    title: str
    start_time: UTC
    end_time: UTC
    status: EventStatus
    color: str | None
    participant_count: int = Field(
        description="participants who have not declined, as `participantCount` in `GET /events`")


class UpcomingQuery(CalendarPage):
    days: int = Field(default=7, ge=1, le=MAX_RANGE_DAYS)
    """how many days ahead to look"""


class MonthQuery(CalendarPage):
    year: int | None = Field(default=None, ge=1, le=MAX_YEAR)
    """the year; default the current one"""
    month: int | None = Field(default=None, ge=1, le=12)
    """the month, 1-12; default the current one"""


class DebugRange(Out):
    start_date: date
    end_date: date
    start_time: UTC
    end_time: UTC


class CalendarDebug(Out):
    range: DebugRange
    total: int
    by_status: dict[str, int]
    created: int
    participating: int
    sample_ids: list[uuid.UUID]


def _days(first: date, last: date) -> tuple[datetime, datetime]:
    return combine(first, datetime.min.time()), combine(last, datetime.min.time()) + timedelta(days=1)


async def _between(ctx: Context, lo: datetime, hi: datetime, page: CalendarPage) -> list[EventOut]:
    offset, limit = page.window(CALENDAR_MAX)
    stmt = access.visible_events(ctx.user_id).where(overlapping(lo, hi))
    return await event_outs(ctx.db, await events.events_page(ctx.db, stmt, offset, limit))


async def range_events(ctx: Context, query: CalendarRange) -> list[EventOut]:
    return await _between(ctx, *_days(query.start_date, query.end_date), query)


def _stamp(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")  # the `UTC` wire format of every other shape


# Built once: the member rule and the range compiled into the compact view's statement on PostgreSQL.
_CELLS = event_reads.cells_statement(access.member_clause(event_reads.CELL_VIEWER)
                                     & overlapping(event_reads.CELL_FROM, event_reads.CELL_TO))


async def range_cells(ctx: Context, query: CalendarRange) -> list[dict[str, Any]]:
    """`CalendarCell`s, already in wire form: one statement, no ORM objects and no response models, since a
    month can hold a thousand events and this view exists to make them cheap."""
    lo, hi = _days(query.start_date, query.end_date)
    offset, limit = query.window(CALENDAR_MAX)
    rows: Sequence[Sequence[Any]]
    if event_reads.on_postgresql(ctx.db):
        rows = await event_reads.cells_on_driver(ctx.db, _CELLS, ctx.user_id, lo, hi, offset, limit)
    else:
        rows = await events.calendar_cells(ctx.db, visible=access.member_clause(ctx.user_id) & overlapping(lo, hi),
                                           offset=offset, limit=limit)
    return [{"id": str(id_), "title": title, "startTime": _stamp(start), "endTime": _stamp(end),
             "status": EventStatus(status).value, "color": color, "participantCount": int(count)}
            for id_, title, start, end, status, color, count in rows]


async def today(ctx: Context, query: CalendarPage) -> list[EventOut]:
    day = ctx.now.date()
    return await _between(ctx, *_days(day, day), query)


async def upcoming(ctx: Context, query: UpcomingQuery) -> list[EventOut]:
    """Events still running or starting within the next `days` days."""
    return await _between(ctx, ctx.now, ctx.now + timedelta(days=query.days), query)


async def month(ctx: Context, query: MonthQuery) -> list[EventOut]:
    year, month_no = query.year or ctx.now.year, query.month or ctx.now.month
    last = gregorian.monthrange(year, month_no)[1]
    return await _between(ctx, *_days(date(year, month_no, 1), date(year, month_no, last)), query)


async def debug(ctx: Context, query: CalendarRange) -> CalendarDebug:
    """What the calendar query sees for this caller: counts per status and a few ids."""
    lo, hi = _days(query.start_date, query.end_date)
    visible = access.member_clause(ctx.user_id) & overlapping(lo, hi)
    by_status, created, sample = await events.calendar_counts(ctx.db, visible=visible, user_id=ctx.user_id,
                                                             sample=DEBUG_SAMPLE)
    total = sum(by_status.values())
    return CalendarDebug(
        range=DebugRange(start_date=query.start_date, end_date=query.end_date, start_time=lo, end_time=hi),
        total=total, by_status=by_status, created=created, participating=total - created, sample_ids=sample,
    )
