"""A job asked for by a committed change runs even when the process that committed it dies before enqueueing it
(here: the queue's Redis is down at the commit, then that instance is killed)."""

from __future__ import annotations

from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest

from tests.conftest import fresh_pg_database
from tests.faults.services import PrivateRedis
from tests.jobs.conftest import FAST, JobProcess
from tests.realtime.harness import ServerProcess, migrate, person, server_env
from tests.waiting import eventually

pytestmark = pytest.mark.slow


async def test_a_committed_job_runs_though_its_instance_died_before_enqueueing(tmp_path: Path) -> None:
    async with fresh_pg_database("handoff") as db_url:
        rs = PrivateRedis(tmp_path / "redis").start()
        env = server_env(db_url, rs.url, tmp_path / "data", **FAST)
        migrate(env)
        a, b = ServerProcess(env).start(), ServerProcess(env).start()
        worker = JobProcess("worker", env).start()
        try:
            async with httpx.AsyncClient(base_url=a.url, timeout=30) as on_a:
                ann = await person(on_a, "ann")
                rs.kill()  # the queue is gone: the commit keeps the job in job_handoffs
                r = await on_a.post("/reports/generate", headers=ann.headers, json={"reportType": "weekly"})
                assert r.status_code == 202, r.text
            a.stop(sig=9)  # the instance that committed it will never enqueue it
            conn = await asyncpg.connect(db_url)
            try:
                assert [r["task"] for r in await conn.fetch("SELECT task FROM job_handoffs")] == ["reports.generate"]
            finally:
                await conn.close()
            rs.restart()
            async with httpx.AsyncClient(base_url=b.url, timeout=30) as on_b:
                async def report_ready() -> bool:
                    r = await on_b.get("/reports/me", headers=ann.headers)
                    return r.status_code == 200 and len(r.json()) == 1

                # B's relay enqueues it; the worker runs it.
                await eventually(report_ready, what="the report of the job the dead instance never enqueued")
            conn = await asyncpg.connect(db_url)
            try:
                assert await conn.fetchval("SELECT count(*) FROM job_handoffs") == 0
            finally:
                await conn.close()
        finally:
            worker.stop()
            a.stop(sig=9)
            b.stop()
            rs.stop()
