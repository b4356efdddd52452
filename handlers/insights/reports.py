"""Listing the caller's reports, filtered on the real period columns (year, quarter, ISO week).

Nothing here makes reports up: generating report files is a background job (`request_report` enqueues it,
`handlers.insights.report_files` builds it from the user's data); with no rows, lists are empty. The files live in a
private store and only their owner can download them (`download`).

The profile page sends the selected *month* in `week`. Rule: `week` between 1 and 12 given together with
`year` is read as a month, and matches the weekly reports of the ISO weeks whose Thursday falls in that month
(ISO 8601 assigns each week to the month of its Thursday, so every week belongs to exactly one month).
A `week` above 12 (or without `year`), or `isoWeek`, is an ISO week number; `month` (with `year`) is a month.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from pydantic import Field

from adapters.storage import Storage
from handlers import catalogue
from handlers.context import Context, Outcome
from handlers.insights.report_files import Period, disposition, period_of, quarter_period, week_period
from handlers.links import ServedLink
from handlers.schema import UTC, In, Limit, Out, PageQuery
from persistence import reports as report_rows
from persistence.enums import ReportType
from persistence.errors import Invalid, NotFound
from persistence.models import Report

FORMATS = {"html": "text/html; charset=utf-8", "csv": "text/csv; charset=utf-8"}


class ReportQuery(PageQuery):
    year: int | None = Field(default=None, ge=1970, le=9999)
    """only reports of this year"""
    quarter: int | None = Field(default=None, ge=1, le=4)
    """only reports of this quarter (1-4)"""
    week: int | None = Field(default=None, ge=1, le=53)
    """the original's parameter: a month (1-12) when `year` is given, else an ISO week"""
    iso_week: int | None = Field(default=None, ge=1, le=53)
    """only reports of this ISO week (1-53)"""
    month: int | None = Field(default=None, ge=1, le=12)
    """only reports of ISO weeks in this month (1-12; needs `year`)"""
    report_type: ReportType | None = None
    """weekly, quarterly or yearly"""


class ReportsQuery(In):
    limit: Limit = 50
    """reports per page, newest first"""


class ReportOut(Out):
    id: uuid.UUID
    title: str
    description: str | None
    file_url: ServedLink
    report_type: str
    date_range: str | None
    size: int | None
    metadata: dict[str, Any]
    user_id: uuid.UUID
    created_at: UTC
    updated_at: UTC | None
    year: int | None
    quarter: int | None
    week: int | None


class ReportsOverview(Out):
    current_quarter_report: ReportOut | None
    weekly_reports: list[ReportOut]


def report_out(r: Report) -> ReportOut:
    return ReportOut(
        id=r.id, title=r.title, description=r.description, file_url=r.file_url, report_type=r.report_type,
        date_range=r.date_range, size=r.size, metadata=dict(r.report_metadata or {}), user_id=r.user_id,
        created_at=r.created_at, updated_at=r.updated_at, year=r.year, quarter=r.quarter, week=r.week,
    )


def iso_weeks_of_month(year: int, month: int) -> list[int]:
    """The ISO week numbers of every week whose Thursday lies in the month."""
    day = date(year, month, 1)
    day += timedelta(days=(3 - day.weekday()) % 7)  # the month's first Thursday
    weeks = []
    while day.month == month:
        weeks.append(day.isocalendar().week)
        day += timedelta(days=7)
    return weeks


def _period(query: ReportQuery) -> report_rows.PeriodFilter:
    month = query.month
    week = query.iso_week
    if query.week is not None:
        if month is None and query.year is not None and query.week <= 12:
            month = query.week
        elif week is None:
            week = query.week
    weeks_in = None
    if month is not None and query.year is not None:
        # A week's ISO year is the calendar year of its Thursday, so it is `year` for every week listed.
        weeks_in = iso_weeks_of_month(query.year, month)
    elif month is not None:
        raise Invalid("a month filter needs a year")
    return report_rows.PeriodFilter(year=query.year, quarter=query.quarter, week=week, weeks_in=weeks_in)


async def my_reports(ctx: Context, query: ReportQuery) -> list[ReportOut]:
    offset, limit = query.window(ctx.limits.max_page_size)
    rows = await report_rows.page(ctx.db, ctx.user_id, _period(query), offset=offset, limit=limit,
                                  report_type=query.report_type.value if query.report_type is not None else None)
    return [report_out(r) for r in rows]


async def overview(ctx: Context, query: ReportsQuery) -> ReportsOverview:
    """The caller's quarterly report for the current quarter (null when none exists) and weekly reports."""
    year, quarter = ctx.now.year, (ctx.now.month - 1) // 3 + 1
    current = next(iter(await report_rows.newest(ctx.db, ctx.user_id, ReportType.QUARTERLY.value, year=year,
                                                 quarter=quarter, limit=1)), None)
    weekly = await report_rows.newest(ctx.db, ctx.user_id, ReportType.WEEKLY.value,
                                      limit=min(query.limit, ctx.limits.max_page_size))
    return ReportsOverview(current_quarter_report=report_out(current) if current else None,
                           weekly_reports=[report_out(r) for r in weekly])


async def get_report(ctx: Context, report_id: uuid.UUID) -> ReportOut:
    row = await report_rows.get(ctx.db, report_id)
    if row is None or row.user_id != ctx.user_id:
        raise NotFound("report", report_id)
    return report_out(row)


class GenerateIn(In):
    """Which report to build: a type, and optionally the period (default: the one containing today)."""

    report_type: ReportType = ReportType.WEEKLY
    """weekly, quarterly or yearly"""
    year: int | None = Field(default=None, ge=1970, le=9999)
    """the report's year; default the current one"""
    week: int | None = Field(default=None, ge=1, le=53)
    """the ISO week of a weekly report; default the current one"""
    quarter: int | None = Field(default=None, ge=1, le=4)
    """the quarter (1-4) of a quarterly report; default the current one"""


class GenerateOut(Out):
    status: str
    report_type: str
    date_range: str
    year: int
    quarter: int
    week: int | None


class DownloadQuery(In):
    format: str = Field(default="html", pattern="^(html|csv)$")
    """html or csv"""


def requested_period(body: GenerateIn, now: datetime) -> Period:
    if body.report_type is ReportType.WEEKLY:
        if body.week is None:
            return period_of(ReportType.WEEKLY, now)
        return week_period(body.year or now.isocalendar().year, body.week)
    if body.report_type is ReportType.QUARTERLY:
        if body.quarter is None:
            return period_of(ReportType.QUARTERLY, now)
        return quarter_period(body.year or now.year, body.quarter)
    raise Invalid("reports are weekly or quarterly")


async def request_report(ctx: Context, body: GenerateIn) -> Outcome[GenerateOut]:
    """Queue the building of the caller's report for a period; it appears in the lists when done (and a
    `report.ready` message goes to the caller's topic)."""
    period = requested_period(body, ctx.now)
    out = GenerateOut(status="queued", report_type=period.kind.value, date_range=period.label, year=period.year,
                      quarter=period.quarter, week=period.week)
    number = period.week if period.week is not None else period.quarter
    return Outcome(out, enqueue=[catalogue.REPORTS_GENERATE.call({
        "user_id": str(ctx.user_id), "report_type": period.kind.value, "year": period.year, "number": number})])


@dataclass(frozen=True)
class ReportFile:
    """One of the caller's report files, access checked: where it is stored and how it is served."""

    key: str
    media_type: str
    disposition: str


async def report_file(ctx: Context, report_id: uuid.UUID, fmt: str) -> ReportFile:
    """The caller's own report file; anyone else's is a 404 (checked before any byte or URL is handed out)."""
    row = await report_rows.get(ctx.db, report_id)
    if row is None or row.user_id != ctx.user_id or not row.storage_key:
        raise NotFound("report", report_id)
    if fmt not in FORMATS:
        raise Invalid("format must be html or csv")
    return ReportFile(f"{row.storage_key}.{fmt}", FORMATS[fmt], disposition(row.report_type, row.date_range, fmt))


async def read_report(storage: Storage, report_id: uuid.UUID, file: ReportFile) -> bytes:
    try:
        return await storage.read(file.key)
    except FileNotFoundError:
        raise NotFound("report file", report_id) from None
