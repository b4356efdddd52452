"""Emptying tables wholesale, for the DEBUG-only database reset."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy.ext.asyncio import AsyncSession

from persistence.models import Base


async def clear_tables(db: AsyncSession, *, keep: Collection[str]) -> list[str]:
    """Delete every row of every table not named in `keep`, dependants first; returns the cleared tables' names
    in the order they were cleared."""
    cleared: list[str] = []
    for table in reversed(Base.metadata.sorted_tables):
        if table.name in keep:
            continue
        await db.execute(table.delete())
        cleared.append(table.name)
    return cleared


def table_names() -> list[str]:
    """Every table, parents before the tables referring to them."""
    return [t.name for t in Base.metadata.sorted_tables]
