"""The embedded default as shipped (`conversme serve` on SQLite with no Redis): the server runs its own jobs
and scheduler — an upload is processed and a due reminder reaches the user's socket."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from channels.client import RealtimeClient
from tests.jobs import media_files
from tests.jobs.conftest import FAST
from tests.realtime.harness import ServerProcess, person, server_env

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def embedded_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = server_env("", "", tmp_path_factory.mktemp("embedded-jobs"), **FAST)
    env.pop("DATABASE_URL")
    env.pop("REDIS_URL")
    server = ServerProcess(env).start()
    try:
        yield server
    finally:
        server.stop()


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


async def test_the_embedded_server_runs_jobs_in_process(embedded_server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=embedded_server.url, timeout=30) as api:
        me = await person(api, "solo")
        frames: list[dict[str, Any]] = []
        async with RealtimeClient(embedded_server.ws_url, token=me.token, origin="http://localhost:3000") as ws:
            await ws.join(f"user:{me.id}")

            async def read() -> None:
                async for frame in ws:
                    frames.append(frame)

            reader = asyncio.create_task(read())
            r = await api.post("/media/upload", headers=me.headers,
                               files={"file": ("a.png", media_files.image(200, 100), "image/png")})
            assert r.status_code == 201 and r.json()["status"] == "processing"
            start = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=15, seconds=2)
            r2 = await api.post("/events", headers=me.headers, json={
                "title": "Solo", "startTime": iso(start), "endTime": iso(start + timedelta(minutes=30))})
            assert r2.status_code == 201
            for _ in range(150):
                if any(f.get("event") == "reminder" for f in frames):
                    break
                await asyncio.sleep(0.1)
            reader.cancel()
        media = (await api.get(f"/media/{r.json()['id']}", headers=me.headers)).json()
        assert media["status"] == "ready" and media["aspectRatio"] == "2:1"
        assert [f["data"]["eventId"] for f in frames if f.get("event") == "reminder"] == [r2.json()["id"]]
        assert any(f.get("event") == "job.progress" and f["data"]["stage"] == "done" for f in frames)
        metrics = (await api.get("/metrics")).text
        assert 'conversme_jobs_total{outcome="ok",task="media.process"} 1.0' in metrics
        assert 'conversme_jobs_total{outcome="ok",task="reminders.send"} 1.0' in metrics
