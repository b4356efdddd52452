"""The report job: build one user's weekly or quarterly report (CSV + HTML) from their data, store it in the
private report store, upsert its row, then tell the user (`report.ready` on their topic)."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from sqlalchemy import select

from channels import topics
from handlers.catalogue import REPORT_READY, REPORTS_GENERATE
from handlers.context import Context, Outcome
from handlers.insights.report_files import Period, quarter_period, save_report, week_period
from handlers.insights.reports import report_out
from handlers.unit_of_work import unit_of_work
from jobs.idempotency import first_time
from jobs.runtime import JobRuntime, Permanent, job
from persistence.enums import ReportType
from persistence.models import Event, EventParticipant, User

log = logging.getLogger("conversme.jobs.reports")


def period_for(report_type: str, year: int, number: int) -> Period:
    if report_type == ReportType.WEEKLY.value:
        return week_period(year, number)
    if report_type == ReportType.QUARTERLY.value:
        return quarter_period(year, number)
    raise Permanent(f"unknown report type {report_type!r}")


async def _remove(rt: JobRuntime, keys: list[str]) -> None:
    for key in keys:
        try:
            await rt.private_storage.delete(key)
        except Exception:
            log.warning("could not remove report file %s", key, exc_info=True)


@job(REPORTS_GENERATE, timeout=120)
async def generate(rt: JobRuntime, user_id: str, report_type: str, year: int, number: int) -> None:
    period = period_for(report_type, int(year), int(number))
    written: list[str] = []
    try:
        async with unit_of_work(rt.sessionmaker, rt.clock(), rt.announce) as work:
            user = await work.db.get(User, uuid.UUID(user_id))
            if user is None:
                return  # the account is gone
            ctx = Context(db=work.db, user=user, now=work.now, limits=rt.limits)
            row, replaced = await save_report(ctx, rt.private_storage, period)
            written = [f"{row.storage_key}.{fmt}" for fmt in ("csv", "html")]
            work.add(Outcome(None, publish=[REPORT_READY.message(topics.for_user(user.id), report_out(row))]))
    except BaseException:
        await _remove(rt, written)  # the row was not committed: its files must not stay behind
        raise
    await _remove(rt, replaced)


async def enqueue_periodic(rt: JobRuntime, now_period: Period, previous: Period) -> int:
    """Once per period (whoever runs it first, guarded by a job key): queue the previous period's report for
    every user who had events in it. Returns how many were queued."""
    key = f"reports:{previous.kind.value}:{previous.label}"
    async with rt.sessionmaker.begin() as db:
        if not await first_time(db, key, "reports.periodic", rt.clock()):
            return 0
        users = (await db.scalars(
            select(EventParticipant.user_id).join(Event, Event.id == EventParticipant.event_id)
            .where(Event.start_time >= previous.start, Event.start_time < previous.end).distinct()
        )).all()
    number = previous.week if previous.week is not None else previous.quarter
    for user_id in users:
        await rt.enqueue(*REPORTS_GENERATE.call({"user_id": str(user_id), "report_type": previous.kind.value,
                                                   "year": previous.year, "number": number}))
    return len(users)


def previous_of(period: Period) -> Period:
    if period.kind is ReportType.WEEKLY:
        iso = (period.start - timedelta(days=1)).isocalendar()
        return week_period(iso.year, iso.week)
    before = period.start - timedelta(days=1)
    return quarter_period(before.year, (before.month - 1) // 3 + 1)
