"""REST routes: the caller's reports (listing only; generating them is a background job)."""

from __future__ import annotations

from handlers import reports
from handlers.reports import ReportOut, ReportQuery, ReportsOverview, ReportsQuery
from server.api import ApiRouter, Call

router = ApiRouter("reports")


@router.get("/reports/me", query=ReportQuery, response=list[ReportOut])
async def my_reports(call: Call) -> list[ReportOut]:
    """The caller's reports, newest first, by year/quarter/week (`week` ≤ 12 with `year` is a month)."""
    return await reports.my_reports(call.ctx, call.query)


@router.get("/reports", query=ReportsQuery, response=ReportsOverview)
async def overview(call: Call) -> ReportsOverview:
    """The caller's report for the current quarter and their weekly reports."""
    return await reports.overview(call.ctx, call.query)


@router.get("/reports/{report_id}", response=ReportOut)
async def get_report(call: Call) -> ReportOut:
    """One of the caller's reports."""
    return await reports.get_report(call.ctx, call.id("report_id"))
