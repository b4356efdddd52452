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
from tests.realtime.harness import ServerProcess, person, run_embedded
from tests.waiting import eventually, is_notification_sentinel, post_notification_sentinel

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def embedded_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with run_embedded(tmp_path_factory.mktemp("embedded-jobs"), **FAST) as server:
        yield server


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
            await eventually(lambda: any(f.get("event") == "reminder" for f in frames), what="the reminder")
            await eventually(lambda: any(f.get("event") == "job.progress" and f["data"]["stage"] == "done"
                                         for f in frames), what="the upload's last progress")
            # Everything published on the user's topic before this sentinel has reached the socket by then.
            text = await post_notification_sentinel(api, me.headers)
            await eventually(lambda: any(is_notification_sentinel(f, me.id, text) for f in frames),
                             what="the sentinel")
            reader.cancel()
        media = (await api.get(f"/media/{r.json()['id']}", headers=me.headers)).json()
        assert media["status"] == "ready" and media["aspectRatio"] == "2:1"
        assert [f["data"]["eventId"] for f in frames if f.get("event") == "reminder"] == [r2.json()["id"]]
        # A job's metrics are counted after its frames went out.
        expected = ['conversme_jobs_total{outcome="ok",task="media.process"} 1.0',
                    'conversme_jobs_total{outcome="ok",task="reminders.send"} 1.0']

        async def counted() -> bool:
            metrics = (await api.get("/metrics")).text
            return all(line in metrics for line in expected)

        await eventually(counted, what=f"{expected} in /metrics")
