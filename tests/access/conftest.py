"""One world for both access matrices (REST and WebSocket), built once, on PostgreSQL.

PostgreSQL only by default: access rules live above the database, and a second run on SQLite would nearly
double the matrix's time for no new answer (the rest of the suite covers both backends). `ACCESS_MATRIX_DB=sqlite`
runs it on SQLite instead."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

from tests.access.world import World, build_world, matrix_app

DATABASE = os.environ.get("ACCESS_MATRIX_DB", "postgres")
if DATABASE not in ("postgres", "sqlite"):
    raise ValueError(f"ACCESS_MATRIX_DB must be postgres or sqlite, not {DATABASE!r}")


@pytest.fixture(scope="package")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    async with matrix_app(DATABASE, tmp_path_factory.mktemp("access")) as (app, client):
        yield await build_world(app, client)
