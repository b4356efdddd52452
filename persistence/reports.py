"""Report rows: a user's reports by period and type, and the one row per user, type and period."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from persistence.models import Report


@dataclass(frozen=True)
class PeriodFilter:
    """Report period columns to match; None matches any value."""

    year: int | None = None
    quarter: int | None = None
    week: int | None = None
    weeks_in: Sequence[int] | None = None  # the ISO week is one of these


async def page(db: AsyncSession, user_id: uuid.UUID, period: PeriodFilter, *, report_type: str | None,
               offset: int, limit: int) -> Sequence[Report]:
    """The user's reports matching the period (and type), newest first."""
    stmt = select(Report).where(Report.user_id == user_id)
    if period.year is not None:
        stmt = stmt.where(Report.year == period.year)
    if period.weeks_in is not None:
        stmt = stmt.where(Report.week.in_(period.weeks_in))
    if period.quarter is not None:
        stmt = stmt.where(Report.quarter == period.quarter)
    if period.week is not None:
        stmt = stmt.where(Report.week == period.week)
    if report_type is not None:
        stmt = stmt.where(Report.report_type == report_type)
    stmt = stmt.order_by(Report.created_at.desc(), Report.id.desc()).offset(offset).limit(limit)
    return (await db.scalars(stmt)).all()


async def newest(db: AsyncSession, user_id: uuid.UUID, report_type: str, *, year: int | None = None,
                 quarter: int | None = None, limit: int) -> Sequence[Report]:
    """The user's reports of one type (optionally of one year and quarter), newest first."""
    stmt = select(Report).where(Report.user_id == user_id, Report.report_type == report_type)
    if year is not None:
        stmt = stmt.where(Report.year == year)
    if quarter is not None:
        stmt = stmt.where(Report.quarter == quarter)
    return (await db.scalars(stmt.order_by(Report.created_at.desc(), Report.id.desc()).limit(limit))).all()


async def get(db: AsyncSession, report_id: uuid.UUID) -> Report | None:
    """Whoever owns it: the caller checks."""
    return await db.get(Report, report_id)


async def for_period(db: AsyncSession, user_id: uuid.UUID, report_type: str, date_range: str) -> Report | None:
    """The user's one report of this type and period, locked for replacing."""
    return await db.scalar(select(Report).where(
        Report.user_id == user_id, Report.report_type == report_type, Report.date_range == date_range
    ).with_for_update())


async def save(db: AsyncSession, row: Report) -> None:
    """Write a new or changed report now."""
    db.add(row)
    await db.flush()
