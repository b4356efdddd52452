"""Migrations: upgrade, downgrade and upgrade again on empty SQLite and PostgreSQL; models match the schema."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from persistence import migrate
from persistence.database import create_engine
from persistence.models import Base
from tests.conftest import fresh_pg_database


@pytest.fixture(params=["sqlite", "postgres"])
async def empty_engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    if request.param == "sqlite":
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")
        yield engine
        await engine.dispose()
        return
    async with fresh_pg_database("conversme_mig") as url:
        engine = create_engine(url.replace("postgresql://", "postgresql+asyncpg://"))
        try:
            yield engine
        finally:
            await engine.dispose()


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names()) - {"alembic_version"}


def _diff(connection: Connection) -> list[Any]:
    return list(compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}), Base.metadata))


async def test_upgrade_downgrade_upgrade(empty_engine: AsyncEngine) -> None:
    await migrate.upgrade(empty_engine)
    async with empty_engine.connect() as conn:
        assert await conn.run_sync(_tables) == set(Base.metadata.tables)
    assert await migrate.current_revision(empty_engine) == migrate.head_revision()
    await migrate.downgrade(empty_engine, "base")
    async with empty_engine.connect() as conn:
        assert await conn.run_sync(_tables) == set()
    await migrate.upgrade(empty_engine)
    assert await migrate.current_revision(empty_engine) == migrate.head_revision()


async def test_models_and_migrations_agree(empty_engine: AsyncEngine) -> None:
    """A model change without a migration fails here instead of in production."""
    await migrate.upgrade(empty_engine)
    async with empty_engine.connect() as conn:
        diff = await conn.run_sync(_diff)
    assert diff == []


def test_every_foreign_key_is_indexed() -> None:
    missing = []
    for table in Base.metadata.sorted_tables:
        indexed = {tuple(c.name for c in ix.columns) for ix in table.indexes}
        indexed |= {tuple(c.name for c in u.columns) for u in table.constraints if hasattr(u, "columns")}
        pk = tuple(c.name for c in table.primary_key.columns)
        for fk in table.foreign_keys:
            col = fk.parent.name
            if not any(cols and cols[0] == col for cols in indexed) and not (pk and pk[0] == col):
                missing.append(f"{table.name}.{col}")
    assert missing == []
