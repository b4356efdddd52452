"""Job system benchmark: one real `conversme worker` (and one `conversme scheduler`) on PostgreSQL and Redis.

1. 10,000 no-op jobs enqueued as fast as one producer can: enqueue rate, jobs/s through one worker, and the
   enqueue-to-start delay (p50/p99, estimated from the worker's histogram as Prometheus would).
2. The same, paced below capacity (the delay a job sees when the queue is not backed up).
3. 1,000 thumbnail jobs (`media.process` on a 1280x720 PNG): jobs/s and start delay.
4. 300 reminders falling due over ~20 s: the scheduler's delay from due time to the stored notification.

    .venv/bin/python -m bench.jobs [--pg-admin URL] [--redis URL] [--noop 10000] [--thumbs 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import redis.asyncio as aioredis
from PIL import Image
from sqlalchemy import insert

from jobs.broker import RedisJobQueue
from jobs.metrics import BUCKETS, Snapshot, create_stats
from persistence import migrate
from persistence.database import create_engine
from persistence.enums import MediaStatus, MediaType, ParticipantStatus
from persistence.models import Event, EventParticipant, Media, Reminder, User

BIN = Path(sys.executable).parent / "conversme"


def quantile(snap: Snapshot, before: Snapshot, task: str, q: float) -> float:
    """histogram_quantile over the delta of two snapshots (linear inside a bucket)."""
    def buckets(s: Snapshot) -> dict[str, float]:
        return {le: v for t, le, v in s.by("delay_b") if t == task}

    now, old = buckets(snap), buckets(before)
    edges = [*map(repr, BUCKETS), "+Inf"]
    counts = [now.get(e, 0.0) - old.get(e, 0.0) for e in edges]
    total = sum(counts)
    if not total:
        return float("nan")
    rank, seen, lower = q * total, 0.0, 0.0
    for edge, count in zip(edges, counts, strict=True):
        upper = float(edge) if edge != "+Inf" else lower
        if seen + count >= rank and count:
            return lower + (upper - lower) * (rank - seen) / count
        seen += count
        lower = upper
    return lower


async def wait_for(check: Callable[[], Awaitable[bool]], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark phase did not finish")
        await asyncio.sleep(0.05)


async def drained(q: RedisJobQueue) -> bool:
    d = await q.depth()
    return d.waiting == 0 and d.running == 0 and d.delayed == 0


async def noop_burst(q: RedisJobQueue, stats: Any, n: int) -> dict[str, float]:
    before = await stats.snapshot()
    started = time.perf_counter()
    for i in range(0, n, 500):
        await asyncio.gather(*(q.enqueue("ops.noop", {}) for _ in range(min(500, n - i))))
    enqueued = time.perf_counter() - started
    await wait_for(lambda: drained(q), 600)
    total = time.perf_counter() - started
    snap = await stats.snapshot()
    return {"jobs": n, "enqueue_per_s": n / enqueued, "jobs_per_s": n / total, "seconds": total,
            "p50_start_delay_s": quantile(snap, before, "ops.noop", 0.5),
            "p99_start_delay_s": quantile(snap, before, "ops.noop", 0.99)}


async def noop_paced(q: RedisJobQueue, stats: Any, rate: int, seconds: float) -> dict[str, float]:
    before = await stats.snapshot()
    n = int(rate * seconds)
    started = time.perf_counter()
    for i in range(n):
        await q.enqueue("ops.noop", {})
        ahead = started + (i + 1) / rate - time.perf_counter()
        if ahead > 0:
            await asyncio.sleep(ahead)
    await wait_for(lambda: drained(q), 120)
    snap = await stats.snapshot()
    return {"jobs": n, "rate_per_s": rate, "p50_start_delay_s": quantile(snap, before, "ops.noop", 0.5),
            "p99_start_delay_s": quantile(snap, before, "ops.noop", 0.99)}


async def thumbnails(q: RedisJobQueue, stats: Any, pg: str, upload_dir: Path, n: int) -> dict[str, float]:
    img = Image.effect_noise((1280, 720), 64).convert("RGB")
    buf = io.BytesIO()
    img.save(buf, "PNG")
    key = "media/bench-source.png"
    (upload_dir / "media").mkdir(parents=True, exist_ok=True)
    (upload_dir / key).write_bytes(buf.getvalue())
    engine = create_engine(pg)
    ids = [uuid.uuid4() for _ in range(n)]
    now = datetime.now(UTC)
    async with engine.begin() as conn:
        await conn.execute(insert(Media), [
            {"id": i, "type": MediaType.IMAGE, "url": f"/uploads/{key}", "storage_key": key, "mime_type": "image/png",
             "file_size": len(buf.getvalue()), "status": MediaStatus.PROCESSING, "media_metadata": {},
             "created_at": now} for i in ids])
    await engine.dispose()
    before = await stats.snapshot()
    started = time.perf_counter()
    await asyncio.gather(*(q.enqueue("media.process", {"media_id": str(i)}) for i in ids))
    await wait_for(lambda: drained(q), 900)
    total = time.perf_counter() - started
    conn = await asyncpg.connect(pg.replace("+asyncpg", ""))
    ready = await conn.fetchval("SELECT count(*) FROM media WHERE status = 'ready'")
    await conn.close()
    snap = await stats.snapshot()
    return {"jobs": n, "ready": ready, "jobs_per_s": n / total, "seconds": total, "png_bytes": len(buf.getvalue()),
            "p50_start_delay_s": quantile(snap, before, "media.process", 0.5),
            "p99_start_delay_s": quantile(snap, before, "media.process", 0.99)}


async def reminder_delays(pg: str, n: int, spread: float) -> dict[str, float]:
    engine = create_engine(pg)
    now = datetime.now(UTC)
    users = [{"id": uuid.uuid4(), "name": f"u{i}", "handle": f"bench_{uuid.uuid4().hex[:10]}",
              "email": f"{uuid.uuid4().hex[:12]}@bench.test", "user_metadata": {}, "created_at": now}
             for i in range(n)]
    events, parts, rems = [], [], []
    for i, u in enumerate(users):
        due = now + timedelta(seconds=3 + spread * i / n)
        start = due + timedelta(minutes=15)
        eid = uuid.uuid4()
        events.append({"id": eid, "title": f"e{i}", "start_time": start, "end_time": start + timedelta(minutes=30),
                       "event_metadata": {}, "created_by_id": u["id"], "created_at": now})
        parts.append({"event_id": eid, "user_id": u["id"], "role": "organizer",
                      "status": ParticipantStatus.CONFIRMED, "joined_at": now})
        rems.append({"id": uuid.uuid4(), "event_id": eid, "user_id": u["id"], "due_at": due, "created_at": now})
    async with engine.begin() as conn:
        await conn.execute(insert(User), users)
        await conn.execute(insert(Event), events)
        await conn.execute(insert(EventParticipant), parts)
        await conn.execute(insert(Reminder), rems)
    await engine.dispose()
    conn = await asyncpg.connect(pg.replace("+asyncpg", ""))

    async def all_sent() -> bool:
        return int(await conn.fetchval("SELECT count(*) FROM notifications WHERE type = 'event_reminder'")) >= n

    await wait_for(all_sent, spread + 60)
    rows = await conn.fetch("SELECT extract(epoch FROM n.created_at - r.due_at) AS d FROM reminders r JOIN "
                            "notifications n ON n.reference_id = r.event_id AND n.user_id = r.user_id")
    await conn.close()
    delays = sorted(float(r["d"]) for r in rows)
    return {"reminders": len(delays), "p50_s": delays[len(delays) // 2], "p99_s": delays[int(len(delays) * 0.99) - 1],
            "max_s": delays[-1]}


def spawn(role: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([str(BIN), role, "--name", f"bench-{role}"], env=env, stdout=log.open("ab"),
                            stderr=subprocess.STDOUT)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pg-admin", default=os.environ.get("TEST_PG_ADMIN_URL",
                                                             "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--noop", type=int, default=10_000)
    parser.add_argument("--thumbs", type=int, default=1_000)
    parser.add_argument("--reminders", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    name = f"conversme_bench_jobs_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(args.pg_admin)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    pg = args.pg_admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + f"/{name}"
    r = aioredis.Redis.from_url(args.redis)
    await r.flushdb()
    await r.aclose()
    data = Path(tempfile.mkdtemp(prefix="bench-jobs-"))
    env = {**os.environ, "DATABASE_URL": pg, "REDIS_URL": args.redis, "DATA_DIR": str(data),
           "SECRET_KEY": "bench-secret-key-that-is-long-enough-0123456789", "LOG_LEVEL": "warning",
           "WORKER_CONCURRENCY": str(args.concurrency), "SCHEDULER_INTERVAL": "0.5"}
    engine = create_engine(pg)
    await migrate.upgrade(engine)
    await engine.dispose()
    procs = [spawn("worker", env, data / "worker.log")]
    q = RedisJobQueue(args.redis, redeliver_after=180, consumer="bench-producer")
    await q.startup()
    stats = create_stats(args.redis)
    results: dict[str, Any] = {"worker_concurrency": args.concurrency, "cpus": os.cpu_count()}
    try:
        await wait_for(lambda: _alive(stats), 30)
        results["noop_burst"] = await noop_burst(q, stats, args.noop)
        results["noop_paced"] = await noop_paced(q, stats, 200, 5)
        results["thumbnails"] = await thumbnails(q, stats, pg, data / "uploads", args.thumbs)
        procs.append(spawn("scheduler", env, data / "scheduler.log"))
        results["reminders"] = await reminder_delays(pg, args.reminders, 20.0)
    finally:
        for p in procs:
            p.terminate()
            p.wait(30)
        await q.shutdown()
        await stats.close()
        admin = await asyncpg.connect(args.pg_admin)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    for phase, figures in results.items():
        if isinstance(figures, dict):
            print(phase + ": " + ", ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}"
                                          for k, v in figures.items()))
        else:
            print(f"{phase}: {figures}")


async def _alive(stats: Any) -> bool:
    return bool((await stats.snapshot()).workers)


if __name__ == "__main__":
    asyncio.run(main())
