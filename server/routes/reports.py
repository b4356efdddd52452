"""REST routes: the caller's reports — listing, asking for one to be built (a background job), and
downloading its files (owner only; the files live outside the public uploads mount)."""

from __future__ import annotations

from starlette.responses import Response

from adapters.bucket import BucketStorage
from handlers.context import Outcome
from handlers.insights import reports
from handlers.insights.reports import (
    DownloadQuery,
    GenerateIn,
    GenerateOut,
    ReportOut,
    ReportQuery,
    ReportsOverview,
    ReportsQuery,
)
from persistence.errors import NotFound
from server.routing import ApiRouter, Call
from server.uploads import from_bucket

router = ApiRouter("reports")


@router.get("/reports/me")
async def my_reports(call: Call[None, ReportQuery]) -> list[ReportOut]:
    """The caller's reports, newest first, by year/quarter/week (`week` ≤ 12 with `year` is a month)."""
    return await reports.my_reports(call.ctx, call.query)


@router.get("/reports")
async def overview(call: Call[None, ReportsQuery]) -> ReportsOverview:
    """The caller's report for the current quarter and their weekly reports."""
    return await reports.overview(call.ctx, call.query)


@router.post("/reports/generate", status=202)
async def generate(call: Call[GenerateIn]) -> Outcome[GenerateOut]:
    """Build the caller's weekly or quarterly report (default: the current period) in the background; it
    replaces an earlier one of the same period and is announced as `report.ready` on the caller's topic."""
    return await reports.request_report(call.ctx, call.body)


@router.get("/reports/{report_id}")
async def get_report(call: Call) -> ReportOut:
    """One of the caller's reports."""
    return await reports.get_report(call.ctx, call.id("report_id"))


@router.get("/reports/{report_id}/download")
async def download(call: Call[None, DownloadQuery]) -> Response:
    """One of the caller's report files: `format=html` (default, the summary) or `csv` (the figures)."""
    storage = call.state.reports_storage
    if storage is None:
        raise RuntimeError("report storage is not configured")
    report_id = call.id("report_id")
    file = await reports.report_file(call.ctx, report_id, call.query.format)
    headers = {"Content-Disposition": file.disposition, "Cache-Control": "private, no-store",
               "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"}
    if isinstance(storage, BucketStorage):
        try:
            return await from_bucket(storage, file.key, headers)
        except FileNotFoundError:
            raise NotFound("report file", report_id) from None
    return Response(await reports.read_report(storage, report_id, file), media_type=file.media_type,
                    headers=headers)
