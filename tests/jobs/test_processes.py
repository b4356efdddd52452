"""Real `conversme worker` and `conversme scheduler` processes on PostgreSQL and Redis, behind a real server.

A worker SIGKILLed mid-job: the job is delivered again and its effect happens once. Two schedulers: one
reminder, which reaches the user's socket. A moved event: the reminder moves. Generated images, video and
audio go through processing; corrupt files fail cleanly. Failing jobs retry, then become dead letters an
admin retries. `/metrics` shows what the tests caused."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
import signal
import uuid
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest

from channels.client import RealtimeClient
from jobs.broker import RedisJobQueue
from tests.jobs import media_files
from tests.jobs.conftest import JOBS_REDIS_URL, JobCluster, JobProcess
from tests.realtime.harness import Person, person
from tests.waiting import eventually, is_notification_sentinel, post_notification_sentinel

pytestmark = pytest.mark.slow


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


async def db(cluster: JobCluster) -> asyncpg.Connection:
    return await asyncpg.connect(cluster.database_url)


async def queue(cluster: JobCluster) -> RedisJobQueue:
    """The cluster's job queue (in its processes' Redis key space)."""
    q = RedisJobQueue(JOBS_REDIS_URL, redeliver_after=3, consumer="test-producer",
                      prefix=cluster.env.get("REDIS_PREFIX", "cm:"))
    await q.startup()
    return q


async def make_admin(cluster: JobCluster, who: Person) -> Person:
    conn = await db(cluster)
    await conn.execute("UPDATE users SET is_admin = true WHERE id = $1", uuid.UUID(who.id))
    await conn.close()
    return who


async def test_killed_worker_job_is_delivered_again_and_its_effect_happens_once(cluster: JobCluster) -> None:
    async with httpx.AsyncClient(base_url=cluster.api.url, timeout=30) as api:
        user = await person(api, "probe")
    q = await queue(cluster)
    conn = await db(cluster)
    try:
        first = cluster.worker()
        # Killed after the commit, before the acknowledgement: the redelivery must find the key and do nothing.
        after_commit = await q.enqueue("ops.probe", {"key": "after", "user_id": user.id, "after": 2.0})
        # Killed before the commit: the redelivery does the work, once.
        before_commit = await q.enqueue("ops.probe", {"key": "before", "user_id": user.id, "before": 2.0})

        async def effect(key: str) -> int:
            return int(await conn.fetchval("SELECT count(*) FROM notifications WHERE reference_type = 'probe' "
                                           "AND notification_metadata->>'key' = $1", key))

        async def deliveries(task_id: str) -> int:
            return int(await q.redis.get(f"{q.deliveries}{task_id}:0") or 0)

        await eventually(lambda: effect("after"), what="the first probe's commit")
        await eventually(lambda: deliveries(before_commit), what="the second probe to start")
        first.kill()  # both are asleep: one after its commit, one before
        assert await effect("before") == 0
        cluster.worker()
        # XAUTOCLAIM hands both unacknowledged jobs to the new worker after JOB_REDELIVER_SECONDS.
        await eventually(lambda: effect("before"), what="the second probe's effect")
        await eventually(lambda: _stream_empty(q), what="both jobs acknowledged")
        assert await effect("after") == 1 and await effect("before") == 1
        assert await deliveries(after_commit) == 2 and await deliveries(before_commit) == 2
    finally:
        await conn.close()
        await q.shutdown()


async def _stream_empty(q: RedisJobQueue) -> bool:
    depth = await q.depth()
    return depth.waiting == 0 and depth.running == 0


async def _event(api: httpx.AsyncClient, owner: Person, start: datetime, *guests: Person) -> dict[str, Any]:
    r = await api.post("/events", headers=owner.headers, json={
        "title": "Design review", "startTime": iso(start), "endTime": iso(start + timedelta(minutes=30)),
        "participantIds": [g.id for g in guests]})
    assert r.status_code == 201, r.text
    event: dict[str, Any] = r.json()
    for g in guests:
        r = await api.put(f"/events/{event['id']}/participants/{g.id}", headers=g.headers,
                          json={"status": "confirmed"})
        assert r.status_code == 200, r.text
    return event


async def _frames(client: RealtimeClient, into: list[dict[str, Any]]) -> None:
    async for frame in client:
        into.append(frame)


async def _barrier(api: httpx.AsyncClient, who: Person, frames: list[dict[str, Any]]) -> None:
    """Wait until `frames` (read from a socket joined to `user:<who>`) holds a message `who` publishes on that
    topic now: by then it holds everything published on it before."""
    text = await post_notification_sentinel(api, who.headers)
    await eventually(lambda: any(is_notification_sentinel(f, who.id, text) for f in frames),
                     what=f"the sentinel on user:{who.id}")


@contextlib.asynccontextmanager
async def _paused(job: JobProcess) -> AsyncIterator[None]:
    """`job` stopped (SIGSTOP, until the kernel reports it stopped), then continued."""
    assert job.proc is not None
    pid = job.proc.pid
    job.proc.send_signal(signal.SIGSTOP)
    try:
        def stopped() -> bool:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("T", "t")

        await eventually(stopped, what=f"{job.worker_id} to stop")
        yield
    finally:
        job.proc.send_signal(signal.SIGCONT)


async def test_two_schedulers_send_one_reminder_that_reaches_the_socket(cluster: JobCluster) -> None:
    async with httpx.AsyncClient(base_url=cluster.api.url, timeout=30) as api:
        owner, guest = await person(api, "host"), await person(api, "guest")
        frames: list[dict[str, Any]] = []
        q = await queue(cluster)
        async with RealtimeClient(cluster.api.ws_url, token=guest.token, origin="http://localhost:3000") as ws:
            await ws.join(f"user:{guest.id}")
            reader = asyncio.create_task(_frames(ws, frames))
            cluster.worker()
            schedulers = cluster.scheduler(), cluster.scheduler()
            # Due in 3-4 s: 15 minutes (the default preference) before the start.
            start = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=15, seconds=4)
            event = await _event(api, owner, start, guest)
            due = start - timedelta(minutes=15)

            def reminders(event_id: str) -> list[dict[str, Any]]:
                return [f for f in frames if f.get("event") == "reminder" and f["data"]["eventId"] == event_id]

            await eventually(lambda: reminders(event["id"]), what="the reminder on the socket")
            # Each scheduler in turn, the other one stopped, claims and sends a reminder that is due at once (an
            # event starting in less than its 15 minutes' notice): both have ticked since the first went out.
            claimers = []
            for active, stopped in (schedulers, schedulers[::-1]):
                async with _paused(stopped):
                    soon = datetime.now(UTC) + timedelta(minutes=15) - timedelta(seconds=1)
                    sentinel = await _event(api, owner, soon, guest)
                    await eventually(functools.partial(reminders, sentinel["id"]),
                                     what=f"the reminder sent by {active.worker_id}")
                conn = await db(cluster)
                claimers.append(await conn.fetchval("SELECT claimed_by FROM reminders WHERE event_id = $1 AND "
                                                    "user_id = $2", uuid.UUID(sentinel["id"]), uuid.UUID(guest.id)))
                await conn.close()
            assert claimers == [s.worker_id for s in schedulers]
            # Every job those ticks queued has finished, and everything published on the guest's topic before
            # the barrier has reached the socket.
            await eventually(lambda: _stream_empty(q), what="every queued job to finish")
            await _barrier(api, guest, frames)
            reader.cancel()
        await q.shutdown()
        found = reminders(event["id"])
        assert len(found) == 1 and found[0]["data"]["dueAt"] == iso(due)
        conn = await db(cluster)
        rows = await conn.fetch("SELECT user_id, sent_at, claimed_by FROM reminders WHERE event_id = $1",
                                uuid.UUID(event["id"]))
        notes = await conn.fetch("SELECT user_id FROM notifications WHERE type = 'event_reminder' AND "
                                 "reference_id = $1", uuid.UUID(event["id"]))
        await conn.close()
        assert len(rows) == 2 and all(r["sent_at"] is not None for r in rows)
        assert all(r["sent_at"] >= due for r in rows)  # not early (how soon after is for the benches)
        assert all(r["claimed_by"].startswith("scheduler-") for r in rows)
        assert sorted(str(n["user_id"]) for n in notes) == sorted([owner.id, guest.id])
        unread = (await api.get("/notifications/unread-count", headers=guest.headers)).json()
        assert unread >= 2  # the invitation and the reminder


async def test_moving_an_event_moves_its_reminder(cluster: JobCluster) -> None:
    async with httpx.AsyncClient(base_url=cluster.api.url, timeout=30) as api:
        owner = await person(api, "mover")
        far = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=3)
        event = await _event(api, owner, far)
        conn = await db(cluster)

        async def dues() -> list[datetime]:
            rows = await conn.fetch("SELECT due_at FROM reminders WHERE event_id = $1 AND sent_at IS NULL",
                                    uuid.UUID(event["id"]))
            return [r["due_at"] for r in rows]

        assert await dues() == [far - timedelta(minutes=15)]
        soon = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=15, seconds=3)
        moved = {"startTime": iso(soon), "endTime": iso(soon + timedelta(hours=1))}
        r = await api.put(f"/events/{event['id']}", headers=owner.headers, json=moved)
        assert r.status_code == 200, r.text
        assert await dues() == [soon - timedelta(minutes=15)]
        cluster.worker()
        cluster.scheduler()

        async def sent() -> Any:
            return await conn.fetchrow("SELECT due_at, sent_at FROM reminders WHERE event_id = $1 AND sent_at IS "
                                       "NOT NULL", uuid.UUID(event["id"]))

        row = await eventually(sent, what="the moved reminder to be sent")
        assert row["due_at"] == soon - timedelta(minutes=15)
        count = await conn.fetchval("SELECT count(*) FROM notifications WHERE type = 'event_reminder' AND "
                                    "reference_id = $1", uuid.UUID(event["id"]))
        assert count == 1  # never for the old time
        await conn.close()


async def _upload(api: httpx.AsyncClient, who: Person, data: bytes, name: str, event_id: str) -> dict[str, Any]:
    r = await api.post("/media/upload", headers=who.headers, files={"file": (name, data, "application/octet-stream")},
                       data={"eventId": event_id})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    assert body["status"] == "processing"
    return body


async def test_generated_media_is_processed_and_corrupt_files_fail_cleanly(cluster: JobCluster) -> None:
    upload_dir = Path(cluster.env["DATA_DIR"]) / "uploads"
    async with httpx.AsyncClient(base_url=cluster.api.url, timeout=30) as api:
        owner, member = await person(api, "uploader"), await person(api, "viewer")
        event = await _event(api, owner, datetime(2031, 5, 4, 9, 0, tzinfo=UTC), member)
        mine: list[dict[str, Any]] = []
        room: list[dict[str, Any]] = []
        async with RealtimeClient(cluster.api.ws_url, token=owner.token, origin="http://localhost:3000") as a, \
                RealtimeClient(cluster.api.ws_url, token=member.token, origin="http://localhost:3000") as b:
            await a.join(f"user:{owner.id}")
            await b.join(f"event:{event['id']}")
            readers = [asyncio.create_task(_frames(a, mine)), asyncio.create_task(_frames(b, room))]
            cluster.worker()
            files = {"image": media_files.image(320, 180), "video": media_files.video(64, 48),
                     "wav": media_files.audio("wav", "pcm_s16le"), "mp3": media_files.audio("mp3", "libmp3lame"),
                     "corrupt_png": media_files.corrupt_png(), "corrupt_mp4": media_files.corrupt_mp4()}
            ids = {k: (await _upload(api, owner, v, f"{k}.bin", event["id"]))["id"] for k, v in files.items()}

            async def settled() -> dict[str, dict[str, Any]] | None:
                out = {k: (await api.get(f"/media/{i}", headers=member.headers)).json() for k, i in ids.items()}
                return out if all(m["status"] != "processing" for m in out.values()) else None

            media = await eventually(settled, timeout=40, what="every upload to settle")
            # A job publishes after its commit, and is acknowledged after that: once none is queued or running,
            # every frame is published, and the barriers on both topics make sure the sockets have them.
            q = await queue(cluster)
            await eventually(lambda: _stream_empty(q), what="every queued job to finish")
            await q.shutdown()
            await _barrier(api, owner, mine)
            await b.push(f"event:{event['id']}", "chat.send", {"text": "sentinel"})
            await eventually(lambda: any(f.get("event") == "chat.message" for f in room), what="the room's sentinel")
            for task in readers:
                task.cancel()
        image, video, wav, mp3 = media["image"], media["video"], media["wav"], media["mp3"]
        assert image["status"] == "ready" and image["aspectRatio"] == "16:9"
        assert image["mediaMetadata"]["width"] == 320 and image["mediaMetadata"]["height"] == 180
        thumb = await api.get(image["thumbnailUrl"])
        assert thumb.status_code == 200 and thumb.content[:3] == b"\xff\xd8\xff"  # a JPEG
        assert video["status"] == "ready" and video["duration"] == "0:02" and video["aspectRatio"] == "4:3"
        assert video["mediaMetadata"]["videoCodec"] == "mpeg4" and video["mediaMetadata"]["durationSeconds"] == 2.0
        assert (await api.get(video["mediaMetadata"]["posterUrl"])).status_code == 200
        assert video["thumbnailUrl"] is not None
        for sound, codec in ((wav, "pcm_s16le"), (mp3, "mp3float")):
            assert sound["status"] == "ready" and sound["mediaMetadata"]["audioCodec"] == codec
            assert abs(sound["mediaMetadata"]["durationSeconds"] - 1.5) < 0.1 and sound["duration"] == "0:02"
            assert sound["thumbnailUrl"] is None
        for bad in ("corrupt_png", "corrupt_mp4"):
            m = media[bad]
            assert m["status"] == "failed" and "cannot be decoded" in m["mediaMetadata"]["error"]
            assert m["thumbnailUrl"] is None and "derivedKeys" not in m["mediaMetadata"]
            # Nothing half-written: no derived file of a failed item exists.
            assert list((upload_dir / "media" / "derived").glob(f"{m['id']}-*")) == []
        # The room heard processing → ready | failed for each; the uploader saw progress.
        for key, mid in ids.items():
            events = [f["event"] for f in room if f.get("data", {}).get("id") == mid]
            final = "media.failed" if key.startswith("corrupt") else "media.ready"
            assert events == ["media.processing", final], (key, events)
        stages = [f["data"]["stage"] for f in mine if f.get("event") == "job.progress"
                  and f["data"]["mediaId"] == ids["image"]]
        assert stages == ["reading", "analyzing", "storing", "done"]


async def test_failing_jobs_retry_then_dead_letter_that_an_admin_retries(cluster: JobCluster) -> None:
    async with httpx.AsyncClient(base_url=cluster.api.url, timeout=30) as api:
        admin = await make_admin(cluster, await person(api, "ops"))
        plain = await person(api, "plain")
        q = await queue(cluster)
        cluster.worker()
        key = uuid.uuid4().hex
        await q.enqueue("ops.probe", {"key": key, "user_id": plain.id, "fail": True})

        async def dead() -> list[dict[str, Any]]:
            body = (await api.get("/admin/jobs", headers=admin.headers)).json()
            return [d for d in body["deadLetters"] if d["arguments"].get("key") == key]

        letters = await eventually(dead, what="the dead letter")
        # JOB_MAX_RETRIES=2: the first run and two retries with backoff.
        assert letters[0]["attempts"] == 3 and letters[0]["reason"] == "failed"
        assert "asked to fail" in letters[0]["error"]
        overview = (await api.get("/admin/jobs", headers=admin.headers)).json()
        assert overview["workersAlive"] >= 1 and overview["queue"]["broker"] == "redis"
        assert any(f["task"] == "ops.probe" and "asked to fail" in f["error"] for f in overview["recentFailures"])
        assert (await api.get("/admin/jobs", headers=plain.headers)).status_code == 403
        assert (await api.post(f"/admin/jobs/dead/{letters[0]['id']}/retry", headers=plain.headers)).status_code == 403
        r = await api.post(f"/admin/jobs/dead/{letters[0]['id']}/retry", headers=admin.headers)
        assert r.status_code == 200, r.text
        again = await api.post(f"/admin/jobs/dead/{letters[0]['id']}/retry", headers=admin.headers)
        assert again.status_code == 409
        # Retried with fresh retries: it fails three more times and lands in the list again.
        await eventually(lambda: _count_at_least(dead(), 1, fresh_of=letters[0]["id"]),
                         what="the retried job's new dead letter")
        await q.shutdown()


async def _count_at_least(letters: Awaitable[list[dict[str, Any]]], n: int, fresh_of: str) -> bool:
    return len([d for d in await letters if d["id"] != fresh_of]) >= n


def _metric(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def test_metrics_show_what_the_tests_caused(cluster: JobCluster) -> None:
    async with httpx.AsyncClient(base_url=cluster.api.url, timeout=30) as api:
        cluster.worker()
        q = await queue(cluster)
        before = (await api.get("/metrics")).text
        for _ in range(5):
            await q.enqueue("ops.noop", {})

        async def counted() -> bool:
            text = (await api.get("/metrics")).text
            return _metric(text, "conversme_jobs_total", task="ops.noop", outcome="ok") >= \
                _metric(before, "conversme_jobs_total", task="ops.noop", outcome="ok") + 5

        await eventually(counted, what="five no-op jobs in /metrics")
        text = (await api.get("/metrics")).text
        assert (await api.get("/metrics")).headers["content-type"].startswith("text/plain")
        # Only what this test caused itself: what earlier tests caused may have been counted by a worker that
        # has since stopped, and its figures expire with it.
        assert _metric(text, "conversme_job_duration_seconds_count", task="ops.noop") >= 5
        assert _metric(text, "conversme_job_start_delay_seconds_count", task="ops.noop") >= 5
        assert _metric(text, "conversme_job_workers_alive") >= 1
        assert re.search(r'conversme_job_queue_depth\{state="waiting"\} \d', text)
        assert _metric(text, "conversme_http_requests_total", route="/metrics", status="200") >= 2
        assert "conversme_ws_connections " in text and "conversme_topics " in text
        await q.shutdown()
