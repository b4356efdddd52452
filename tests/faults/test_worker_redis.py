"""Workers and schedulers outlive Redis. On a private Redis (the shared one is never touched), with the shared
PostgreSQL, a real API server, `conversme worker` and `conversme scheduler`: Redis restarted empty while the
worker idles, Redis killed with jobs queued and brought back from its snapshot, Redis refusing the worker's
reads. Each time the same worker process takes jobs again, every job's effect happens once, and its heartbeat
and `/metrics` say whether it is receiving. In process: a receiver that ends for any other reason is started
again."""

from __future__ import annotations

import contextlib
import signal
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx
import orjson
import pytest
import redis.asyncio as aioredis
from redis.exceptions import RedisError
from taskiq import AckableMessage

from adapters.storage import LocalStorage
from channels.hub import create_hub
from handlers.context import Outcome
from jobs.broker import RedisJobQueue
from jobs.local_queue import LocalBroker, LocalJobQueue
from jobs.metrics import WORKERS, MemoryJobStats
from jobs.runtime import JobRuntime
from jobs.worker import JobService, utc_now
from persistence.database import create_engine, create_sessionmaker
from tests.conftest import fresh_pg_database
from tests.faults.services import PrivateRedis
from tests.jobs import media_files
from tests.jobs.conftest import FAST, JobProcess
from tests.realtime.harness import Person, ServerProcess, migrate, person, server_env
from tests.waiting import eventually

pytestmark = pytest.mark.slow


@dataclass
class Stack:
    """One API server, one worker and one scheduler sharing a private Redis and a PostgreSQL database."""

    redis: PrivateRedis
    env: dict[str, str]
    database_url: str
    api: ServerProcess
    worker: JobProcess
    scheduler: JobProcess

    @property
    def prefix(self) -> str:
        return self.env["REDIS_PREFIX"]

    def queue(self) -> RedisJobQueue:
        return RedisJobQueue(self.redis.url, redeliver_after=4, consumer="test-producer", prefix=self.prefix)


@pytest.fixture(scope="module")
async def database(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    async with fresh_pg_database("worker_redis") as url:
        migrate(server_env(url, "memory://", tmp_path_factory.mktemp("migrate")))
        yield url


@pytest.fixture
def stack(database: str, tmp_path: Path) -> Iterator[Stack]:
    redis = PrivateRedis(tmp_path / "redis").start()
    env = server_env(database, redis.url, tmp_path / "data", **FAST)
    api = worker = scheduler = None
    try:
        api = ServerProcess(env).start()
        worker, scheduler = JobProcess("worker", env).start(), JobProcess("scheduler", env).start()
        yield Stack(redis, env, database, api, worker, scheduler)
    finally:
        for name, proc in (("worker", worker), ("scheduler", scheduler), ("api", api)):
            if proc is not None:
                proc.stop()
                print(f"--- {name} log (tail) ---\n{proc.log()[-4000:]}")  # shown when the test failed
        redis.stop()


# --- what the test looks at -------------------------------------------------------------------------------------

async def heartbeat(stack: Stack) -> dict[str, Any] | None:
    """The worker's last heartbeat as stored in Redis (None while Redis is away or before the first one)."""
    client = aioredis.Redis(port=stack.redis.port, socket_timeout=5)
    try:
        raw = await client.hget(stack.prefix + WORKERS, stack.worker.worker_id)
    except RedisError:
        return None
    finally:
        await client.aclose()
    found: dict[str, Any] | None = orjson.loads(raw) if raw else None
    return found


def beating(stack: Stack, *, receiving: bool, reconnects: int | None = None,
            min_reconnects: int = 0) -> Callable[[], Awaitable[dict[str, Any] | None]]:
    """The worker's heartbeat once it says `receiving` (and has that many reconnects)."""

    async def check() -> dict[str, Any] | None:
        beat = await heartbeat(stack)
        if beat is None or beat.get("receiving") is not receiving or beat.get("reconnects", 0) < min_reconnects:
            return None
        return beat if reconnects is None or beat["reconnects"] == reconnects else None

    return check


def metric(text: str, name: str, **labels: str) -> float | None:
    for line in text.splitlines():
        if (line.startswith(name + "{") or line.startswith(name + " ")) and \
                all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def scraped(api: httpx.AsyncClient, name: str, value: float, **labels: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        r = await api.get("/metrics")
        return r.status_code == 200 and metric(r.text, name, **labels) == value

    return check


def media_ready(api: httpx.AsyncClient, who: Person, media_id: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        r = await api.get(f"/media/{media_id}", headers=who.headers)
        assert r.status_code == 200, r.text
        return bool(r.json()["status"] == "ready")

    return check


async def upload_image(api: httpx.AsyncClient, who: Person, event_id: str) -> str:
    r = await api.post("/media/upload", headers=who.headers, data={"eventId": event_id},
                       files={"file": ("photo.png", media_files.image(160, 90), "application/octet-stream")})
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "processing"
    media_id: str = r.json()["id"]
    return media_id


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


async def new_event(api: httpx.AsyncClient, owner: Person, start: datetime) -> str:
    r = await api.post("/events", headers=owner.headers, json={
        "title": "Retro", "startTime": iso(start), "endTime": iso(start + timedelta(minutes=30))})
    assert r.status_code == 201, r.text
    event_id: str = r.json()["id"]
    return event_id


async def reminder_sent(conn: asyncpg.Connection, event_id: str) -> bool:
    """The owner's reminder of `event_id` is sent and its notification stored (exactly one)."""
    sent = await conn.fetchval("SELECT sent_at IS NOT NULL FROM reminders WHERE event_id = $1", uuid.UUID(event_id))
    notes = await conn.fetchval("SELECT count(*) FROM notifications WHERE type = 'event_reminder' AND "
                                "reference_id = $1", uuid.UUID(event_id))
    assert notes <= 1, f"{notes} reminders for one event"
    return bool(sent) and notes == 1


async def probe_effects(conn: asyncpg.Connection, keys: list[str]) -> dict[str, int]:
    """How many notifications each `ops.probe` of `keys` stored (a key absent: none)."""
    rows = await conn.fetch("SELECT notification_metadata->>'key' AS key, count(*) AS n FROM notifications "
                            "WHERE reference_type = 'probe' AND notification_metadata->>'key' = ANY($1) GROUP BY 1",
                            keys)
    return {r["key"]: int(r["n"]) for r in rows}


def probes_done(conn: asyncpg.Connection, keys: list[str]) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return set(await probe_effects(conn, keys)) == set(keys)

    return check


async def drained(q: RedisJobQueue) -> bool:
    try:
        depth = await q.depth()
    except RedisError:
        return False
    return (depth.waiting, depth.running, depth.delayed) == (0, 0, 0)


@contextlib.asynccontextmanager
async def stopped(job: JobProcess) -> AsyncIterator[None]:
    """`job` held with SIGSTOP (until the kernel reports it stopped: it reads nothing, runs nothing), continued
    on exit."""
    assert job.proc is not None
    pid = job.proc.pid
    job.proc.send_signal(signal.SIGSTOP)
    try:
        def is_stopped() -> bool:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("T", "t")

        await eventually(is_stopped, what=f"{job.worker_id} to stop")
        yield
    finally:
        job.proc.send_signal(signal.SIGCONT)


async def acl(client: aioredis.Redis, rule: str) -> None:
    """Change what the default user (every process here) may run: `-xreadgroup` refuses the worker's reads."""
    command: Any = client.execute_command  # untyped in redis-py
    await command("ACL", "SETUSER", "default", rule)


def alive(job: JobProcess) -> bool:
    return job.proc is not None and job.proc.poll() is None


# --- the tests --------------------------------------------------------------------------------------------------

async def test_redis_restarted_empty_while_the_worker_idles(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.api.url, timeout=30) as api:
        owner = await person(api, "idle")
        event_id = await new_event(api, owner, datetime(2031, 6, 1, 9, 0, tzinfo=UTC))
        await eventually(beating(stack, receiving=True, reconnects=0), what="the worker receiving")
        before = await upload_image(api, owner, event_id)
        await eventually(media_ready(api, owner, before), what="an upload before the restart")

        # Gone with the data: the stream, the consumer group, the heartbeats. The processes stay up.
        stack.redis.restart(empty=True)

        after = await upload_image(api, owner, event_id)
        # Due now: it starts within the default 15 minutes' notice.
        due_now = await new_event(api, owner, datetime.now(UTC) + timedelta(minutes=15) - timedelta(seconds=1))
        await eventually(media_ready(api, owner, after), what="the upload after the restart")
        conn = await asyncpg.connect(stack.database_url)
        try:
            await eventually(lambda: reminder_sent(conn, due_now), what="the reminder after the restart")
        finally:
            await conn.close()
        r = await api.get("/notifications", headers=owner.headers)
        assert r.status_code == 200, r.text
        assert any(n["type"] == "event_reminder" for n in r.json()["items"]), r.text
        beat = await eventually(beating(stack, receiving=True, min_reconnects=1), what="a heartbeat after it")
        # The same processes did all of it: nothing was restarted but Redis.
        assert stack.worker.proc is not None and beat["pid"] == stack.worker.proc.pid
        assert alive(stack.worker) and alive(stack.scheduler)


async def test_jobs_queued_when_redis_died_run_once_after_it_returns_with_its_data(stack: Stack) -> None:
    q = stack.queue()
    await q.startup()
    conn = await asyncpg.connect(stack.database_url)
    try:
        async with httpx.AsyncClient(base_url=stack.api.url, timeout=30) as api:
            owner = await person(api, "queued")
            event_id = await new_event(api, owner, datetime(2031, 6, 2, 9, 0, tzinfo=UTC))
            later = await new_event(api, owner, datetime.now(UTC) + timedelta(days=2))
            await eventually(beating(stack, receiving=True, reconnects=0), what="the worker receiving")
            keys = [uuid.uuid4().hex for _ in range(6)]
            async with stopped(stack.worker):  # jobs wait in the stream, none has run
                for key in keys:
                    await q.enqueue("ops.probe", {"key": key, "user_id": owner.id})
                media_id = await upload_image(api, owner, event_id)
                stack.redis.snapshot()  # what the restart brings back
                stack.redis.kill()
            # While Redis is away a reminder falls due: the scheduler claims it, cannot enqueue it, and keeps trying.
            await conn.execute("UPDATE reminders SET due_at = now() WHERE event_id = $1", uuid.UUID(later))
            await eventually(lambda: "cannot read jobs" in stack.worker.log(), what="the worker to notice")
            await eventually(lambda: "scheduler tick failed" in stack.scheduler.log(), what="the scheduler to notice")
            assert await probe_effects(conn, keys) == {}

            stack.redis.restart()  # from the snapshot

            await eventually(probes_done(conn, keys), what="every probe's effect")
            await eventually(media_ready(api, owner, media_id), what="the upload processed")
            await eventually(lambda: reminder_sent(conn, later), what="the reminder that fell due meanwhile")
            # Nothing left queued, running or delayed: every job has finished, so the counts are final.
            await eventually(lambda: drained(q), what="the queue to drain")
            assert await probe_effects(conn, keys) == {key: 1 for key in keys}
            assert await reminder_sent(conn, later)
            await eventually(beating(stack, receiving=True, min_reconnects=1), what="a heartbeat after it")
            assert alive(stack.worker) and alive(stack.scheduler)
    finally:
        await conn.close()
        await q.shutdown()


async def test_heartbeat_and_metrics_show_a_worker_that_cannot_read(stack: Stack) -> None:
    """Redis up but refusing the worker's reads (an ACL): the only way to hold a worker off the queue while
    its heartbeat can still be written, so that `receiving: false` can be seen rather than inferred."""
    wid = stack.worker.worker_id
    admin = aioredis.Redis(port=stack.redis.port, socket_timeout=5)
    q = stack.queue()
    await q.startup()
    conn = await asyncpg.connect(stack.database_url)
    try:
        async with httpx.AsyncClient(base_url=stack.api.url, timeout=30) as api:
            owner = await person(api, "watched")
            await eventually(beating(stack, receiving=True, reconnects=0), what="the worker receiving")
            await eventually(scraped(api, "conversme_job_worker_receiving", 1, worker=wid), what="the gauge at 1")

            await acl(admin, "-xreadgroup")
            beat = await eventually(beating(stack, receiving=False), what="the heartbeat saying not receiving")
            assert "NOPERM" in beat["lastError"] or "permission" in beat["lastError"].lower(), beat
            await eventually(scraped(api, "conversme_job_worker_receiving", 0, worker=wid), what="the gauge at 0")
            key = uuid.uuid4().hex
            await q.enqueue("ops.probe", {"key": key, "user_id": owner.id})

            await acl(admin, "+xreadgroup")
            await eventually(beating(stack, receiving=True, reconnects=1), what="the heartbeat receiving again")
            await eventually(scraped(api, "conversme_job_worker_receiving", 1, worker=wid), what="the gauge back at 1")
            await eventually(scraped(api, "conversme_job_worker_reconnects_total", 1, worker=wid),
                             what="one reconnect counted")
            await eventually(probes_done(conn, [key]), what="the job queued meanwhile")
    finally:
        await conn.close()
        await q.shutdown()
        await admin.aclose()


class EndsOnce(LocalBroker):
    """The in-process broker, except that its first read loop ends with an error that is not Redis's."""

    def __init__(self) -> None:
        super().__init__()
        self.listens = 0

    async def listen(self) -> AsyncGenerator[AckableMessage, None]:
        self.listens += 1
        if self.listens == 1:
            raise RuntimeError("the read loop broke")
        async for message in super().listen():
            yield message


async def test_a_receiver_that_ends_is_started_again(tmp_path: Path) -> None:
    queue = LocalJobQueue()
    queue.broker = EndsOnce()
    queue.status = queue.broker.status
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'jobs.db'}")
    hub = create_hub("memory://", "test")

    async def announce(outcome: Outcome[Any]) -> None:
        return None

    rt = JobRuntime(sessionmaker=create_sessionmaker(engine), hub=hub, announce=announce,
                    storage=LocalStorage(tmp_path), private_storage=LocalStorage(tmp_path), clock=utc_now,
                    queue=queue, stats=MemoryJobStats(), worker_id="supervised")
    await queue.startup()
    service = JobService(rt, concurrency=2, role="worker")
    service.start()
    try:
        await rt.enqueue("ops.noop", {})
        await eventually(lambda: service.middleware.done == 1, what="the job after the receiver's restart")
        info = service.info()
        assert (info["receiving"], info["reconnects"], info["receiverRestarts"]) == (True, 1, 1)
        assert "the read loop broke" in info["lastError"]
    finally:
        await service.stop(grace=5)
        await queue.shutdown()
        await engine.dispose()


