"""The private services the fault tests stand on: they start, stop, pause and come back on their own ports."""

from __future__ import annotations

from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import pytest

from tests.faults.services import PrivatePostgres, PrivateRedis

pytestmark = pytest.mark.slow


def test_private_redis_restarts_from_its_snapshot_or_empty(tmp_path: Path) -> None:
    rs = PrivateRedis(tmp_path / "redis").start()
    try:
        with rs.client() as c:
            c.set("kept", "1")
            rs.snapshot()
            c.set("lost", "1")
        rs.restart()
        with rs.client() as c:
            assert c.get("kept") == b"1" and c.get("lost") is None
        rs.restart(empty=True)
        with rs.client() as c:
            assert c.dbsize() == 0
    finally:
        rs.stop()


async def test_private_postgres_survives_an_immediate_restart(tmp_path: Path) -> None:
    pg = PrivatePostgres(tmp_path).init().start()
    try:
        url = pg.createdb("faults")
        conn = await asyncpg.connect(url)
        await conn.execute("CREATE TABLE t (v int)")
        await conn.execute("INSERT INTO t VALUES (1)")
        await conn.close()
        pg.restart("immediate")
        conn = await asyncpg.connect(url)
        assert await conn.fetchval("SELECT count(*) FROM t") == 1
        await conn.close()
    finally:
        pg.destroy()
