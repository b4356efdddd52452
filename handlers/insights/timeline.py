"""The profile timeline: per-year/quarter/month counts of the caller's events and posts, with the events and
processes of each year.

The answer is the list of timeline years the original frontend's profile page and feed timeline read
(`year`, `quarters[{quarter, label, months[…]}]`, `eventCount`, `activityCount`), oldest first, each also
holding that year's events and processes. The original backend answered an object (`userId`, `events`,
`processes`) that its own frontend could not read, so the page fell back to placeholder data; every item of
that object is still here, under the year it belongs to. Periods are calendar periods in UTC, like the derived
`date`/`time` strings. `activityCount` counts the caller's posts (the profile's activity feed).
"""

from __future__ import annotations

import calendar
import uuid
from collections import Counter
from datetime import date, datetime

from handlers import access
from handlers.context import Context
from handlers.schema import UTC, Out
from persistence import insights as insight_rows
from persistence import posts as posts_rows
from persistence.enums import EventStatus

MAX_ITEMS = 1000  # events and processes listed (the most recent); the counts always cover everything


class TimelineEvent(Out):
    """An event on the original frontend's timeline (`/progress/timeline`): legacy date/time, tag names, isCreator."""

    id: uuid.UUID
    title: str
    date: str
    time: str
    start_time: UTC
    end_time: UTC
    status: EventStatus
    color: str | None
    tags: list[str]
    is_creator: bool


class TimelineProcess(Out):
    id: uuid.UUID
    title: str
    created_at: UTC
    updated_at: UTC | None
    color: str | None
    category: str | None
    is_template: bool
    progress: int
    step_count: int
    completed_steps: int


class TimelineMonth(Out):
    month_number: int
    year: int
    start_date: str
    end_date: str
    label: str
    event_count: int
    activity_count: int


class TimelineQuarter(Out):
    quarter: int
    year: int
    label: str
    event_count: int
    activity_count: int
    months: list[TimelineMonth]


class TimelineYear(Out):
    year: int
    event_count: int
    activity_count: int
    quarters: list[TimelineQuarter]
    events: list[TimelineEvent]
    processes: list[TimelineProcess]


async def _event_items(ctx: Context) -> list[TimelineEvent]:
    rows = list(await insight_rows.newest_events(ctx.db, access.visible_events(ctx.user_id), MAX_ITEMS))
    rows.reverse()
    tags: dict[uuid.UUID, list[str]] = {e.id: [] for e in rows}
    for event_id, name, _ in await insight_rows.tags_of(ctx.db, list(tags)):
        tags[event_id].append(name)
    return [TimelineEvent(id=e.id, title=e.title, date=e.start_time.date().isoformat(),
                          time=e.start_time.strftime("%H:%M"), start_time=e.start_time, end_time=e.end_time,
                          status=e.status, color=e.color, tags=tags[e.id], is_creator=e.created_by_id == ctx.user_id)
            for e in rows]


async def _process_items(ctx: Context) -> list[TimelineProcess]:
    rows = list(await insight_rows.newest_processes_of(ctx.db, ctx.user_id, MAX_ITEMS))
    rows.reverse()
    counts = await insight_rows.step_counts(ctx.db, [p.id for p in rows])
    out = []
    for p in rows:
        total, completed = counts.get(p.id, (0, 0))
        out.append(TimelineProcess(
            id=p.id, title=p.title, created_at=p.created_at, updated_at=p.updated_at, color=p.color,
            category=p.category, is_template=p.is_template, step_count=total, completed_steps=completed,
            progress=round(completed / total * 100) if total else 0))
    return out


def _months(stamps: list[datetime]) -> Counter[tuple[int, int]]:
    return Counter((s.year, s.month) for s in stamps)


def _year(year: int, events: Counter[tuple[int, int]], posts: Counter[tuple[int, int]],
          event_items: list[TimelineEvent], process_items: list[TimelineProcess]) -> TimelineYear:
    quarters = []
    for q in range(1, 5):
        months = []
        for m in range(3 * q - 2, 3 * q + 1):
            last = calendar.monthrange(year, m)[1]
            months.append(TimelineMonth(
                month_number=m, year=year, start_date=date(year, m, 1).isoformat(),
                end_date=date(year, m, last).isoformat(), label=calendar.month_name[m],
                event_count=events[(year, m)], activity_count=posts[(year, m)]))
        quarters.append(TimelineQuarter(quarter=q, year=year, label=f"Q{q} {year}", months=months,
                                        event_count=sum(x.event_count for x in months),
                                        activity_count=sum(x.activity_count for x in months)))
    return TimelineYear(year=year, quarters=quarters, event_count=sum(q.event_count for q in quarters),
                        activity_count=sum(q.activity_count for q in quarters),
                        events=[e for e in event_items if e.start_time.year == year],
                        processes=[p for p in process_items if p.created_at.year == year])


async def timeline(ctx: Context) -> list[TimelineYear]:
    events = await _event_items(ctx)
    processes = await _process_items(ctx)
    event_months = _months(list(await insight_rows.event_starts(ctx.db, access.visible_events(ctx.user_id))))
    post_months = _months(list(await posts_rows.created_times(ctx.db, ctx.user_id)))
    years = {ctx.now.year} | {y for y, _ in event_months} | {y for y, _ in post_months}
    years |= {p.created_at.year for p in processes}
    return [_year(y, event_months, post_months, events, processes) for y in sorted(years)]
