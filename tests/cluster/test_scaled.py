"""Everything scaled out at once: three API instances, two workers and two schedulers, each process with a data
directory of its own, on PostgreSQL, a private Redis Cluster and a bucket (moto's S3 server process). Members of
one room are spread over the three instances; a step, chat from all of them, an upload (processed by whichever
worker takes it) and a reminder (claimed by whichever scheduler) all arrive once, in one order, everywhere —
and the room's stream matches the chat the database committed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from channels.client import RealtimeClient
from tests.cluster.nodes import PrivateCluster
from tests.conftest import fresh_pg_database
from tests.jobs import media_files
from tests.jobs.conftest import FAST, JobProcess
from tests.realtime.harness import ServerProcess, event_with, migrate, person, server_env
from tests.storage.conftest import s3_server  # noqa: F401  (the session's S3 server process)
from tests.storage.s3server import S3Server
from tests.waiting import Frame, frames_until

pytestmark = pytest.mark.slow


@dataclass
class Scaled:
    apis: list[ServerProcess]
    jobs: list[JobProcess]
    dirs: list[Path]
    s3: S3Server
    bucket: str


def _own(env: dict[str, str], data_dir: Path) -> dict[str, str]:
    data_dir.mkdir(parents=True, exist_ok=True)
    return {**env, "DATA_DIR": str(data_dir)}


@pytest.fixture(scope="module")
def scaled_cluster() -> Iterator[PrivateCluster]:
    cluster = PrivateCluster()
    try:
        yield cluster.start()
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
async def scaled(scaled_cluster: PrivateCluster, s3_server: S3Server,  # noqa: F811
                 tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Scaled]:
    root = tmp_path_factory.mktemp("scaled")
    bucket = s3_server.new_bucket()
    async with fresh_pg_database("conversme_scaled") as db_url:
        env = server_env(db_url, scaled_cluster.url, root / "release", **FAST, **s3_server.env(bucket, "scaled"))
        migrate(_own(env, root / "release"))
        dirs = [root / name for name in ("api1", "api2", "api3", "worker1", "worker2", "scheduler1", "scheduler2")]
        apis = [ServerProcess(_own(env, d)).start() for d in dirs[:3]]
        jobs = [JobProcess(d.name.rstrip("12"), _own(env, d)).start() for d in dirs[3:]]
        try:
            yield Scaled(apis, jobs, dirs, s3_server, bucket)
        finally:
            for proc in jobs:
                proc.stop()
            for api in apis:
                api.stop()


def _msgs(frames: list[Frame], topic: str) -> list[tuple[int, str, Any]]:
    return [(f["offset"], f["event"], f["data"]) for f in frames if f.get("op") == "msg" and f["topic"] == topic]


async def test_one_room_on_three_instances_two_workers_and_two_schedulers(scaled: Scaled) -> None:
    a, b, c = scaled.apis
    async with AsyncExitStack() as stack:
        api_a, api_b, api_c = [await stack.enter_async_context(httpx.AsyncClient(base_url=s.url, timeout=30))
                               for s in (a, b, c)]
        alice, bob, carol = await person(api_a, "alice"), await person(api_b, "bob"), await person(api_c, "carol")
        event = await event_with(api_a, alice, bob, carol)
        room = f"event:{event['id']}"
        steps = (await api_a.get(f"/processes/{event['processId']}/steps", headers=alice.headers)).json()
        # Each member on an instance of their own.
        clients = [await stack.enter_async_context(RealtimeClient(server.ws_url, who.token))
                   for server, who in ((a, alice), (b, bob), (c, carol))]
        ca, cb, cc = clients
        for client in clients:
            await client.join(room)
        await cb.join(f"user:{bob.id}")

        # A step ticked through A, chat from all three instances at once, an upload through B.
        r = await api_a.put(f"/processes/steps/{steps[0]['id']}", headers=alice.headers, json={"completed": True})
        assert r.status_code == 200, r.text
        for i in range(12):
            await clients[i % 3].push(room, "chat.send", {"text": f"line {i}"})
        image = media_files.image(320, 180)
        r = await api_b.post("/media/upload", headers=bob.headers, data={"eventId": event["id"]},
                             files={"file": ("photo", image, "x/y")})
        assert r.status_code == 201, r.text
        media_id = r.json()["id"]
        # Every member waits for the worker's media.ready, then a sentinel closes the stream each one compares.
        # Each client keeps every frame since its join, so these are whole streams.
        early = await frames_until(ca, lambda f: f.get("event") == "media.ready", what="the upload processed")
        await cc.push(room, "chat.send", {"text": "the end"})
        streams = []
        for i, client in enumerate(clients):
            seen = await frames_until(client, lambda f: f.get("event") == "chat.message"
                                      and f["data"]["text"] == "the end", what="the sentinel")
            streams.append(_msgs((early if i == 0 else []) + seen, room))
        assert streams[0] == streams[1] == streams[2]
        stream = streams[0]
        offsets = [o for o, _, _ in stream]
        assert offsets == list(range(offsets[0], offsets[0] + len(offsets))), offsets  # once each, no gaps
        events = [e for _, e, _ in stream]
        assert events.count("step.updated") == 1 and events.count("media.ready") == 1
        assert events.index("step.updated") < events.index("media.processing") < events.index("media.ready")
        ready = next(d for _, e, d in stream if e == "media.ready")
        assert ready["id"] == media_id and ready["status"] == "ready"
        said = [d["text"] for _, e, d in stream if e == "chat.message"]
        assert sorted(said[:-1]) == sorted(f"line {i}" for i in range(12)) and said[-1] == "the end"
        # The stream is the chat the database committed, in its order (read through the third instance).
        r = await api_c.get(f"/events/{event['id']}/chat", headers=carol.headers, params={"limit": 100})
        assert [m["text"] for m in r.json()] == said

        # The file: accepted by B, processed by a worker that never saw B's disk, served by A and C from the bucket.
        for api in (api_a, api_c):
            m = (await api.get(f"/media/{media_id}", headers=bob.headers)).json()
            got = await api.get(m["url"])
            assert got.status_code == 307, got.text
            async with httpx.AsyncClient(timeout=30) as direct:
                assert (await direct.get(got.headers["location"])).content == image
        assert [p for d in scaled.dirs for p in d.rglob("*") if p.is_file() and p.suffix != ".log"] == []

        # A reminder, claimed by one of the two schedulers and run by one of the two workers: once.
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=14)  # due at once (15 min notice)
        r = await api_a.post("/events", headers=alice.headers, json={
            "title": "Review", "startTime": start.isoformat().replace("+00:00", "Z"),
            "endTime": (start + timedelta(minutes=30)).isoformat().replace("+00:00", "Z"),
            "participantIds": [bob.id]})
        assert r.status_code == 201, r.text
        soon = r.json()
        r = await api_b.put(f"/events/{soon['id']}/participants/{bob.id}", headers=bob.headers,
                            json={"status": "confirmed"})
        assert r.status_code == 200, r.text
        inbox = f"user:{bob.id}"
        await frames_until(cb, lambda f: f.get("event") == "reminder" and f["topic"] == inbox,
                           what="the reminder")
        # Sentinel: another invitation's notification on bob's topic, after which no second reminder may be
        # waiting (the schedulers share their claims through PostgreSQL, the workers their queue on the cluster).
        r = await api_c.post("/events", headers=carol.headers, json={
            "title": "Later", "startTime": "2030-02-01T09:00:00Z", "endTime": "2030-02-01T10:00:00Z",
            "participantIds": [bob.id]})
        assert r.status_code == 201, r.text
        later = r.json()["id"]
        after = await frames_until(cb, lambda f: f.get("event") == "notification.created" and f["topic"] == inbox
                                   and later in str(f["data"]), what="the sentinel notification")
        assert not [f for f in after if f.get("event") == "reminder"]
