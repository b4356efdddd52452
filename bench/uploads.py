"""Upload → ready throughput: real `conversme serve` and two `conversme worker` processes on PostgreSQL and Redis,
with the files in a bucket (moto's S3 server process on loopback) and, in the same run for comparison, in the
local directory.

Per backend: a fresh database and Redis key space, one API, two workers (each on a data directory of its own on
the bucket; sharing one on the local backend, as they must). N images are uploaded by C concurrent clients; the
clock runs from the first upload to the last item `ready` (read from PostgreSQL). Printed: uploads accepted per
second, items ready per second, per-item latency upload → ready (p50/p99, from the rows' timestamps), and the
CPU seconds the API and the workers spent.

    .venv/bin/python -m bench.uploads [--uploads 200] [--clients 8] [--size 1280x720] [--worker-concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx
from redis.asyncio import Redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jobs.metrics import create_stats  # noqa: E402
from tests.jobs.conftest import JobProcess  # noqa: E402
from tests.jobs.media_files import image  # noqa: E402
from tests.realtime.harness import ServerProcess, migrate, person, server_env  # noqa: E402
from tests.storage.s3server import S3Server, start_s3_server  # noqa: E402

PG_ADMIN = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


async def wait_for(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def run_backend(kind: str, args: argparse.Namespace, s3: S3Server, work: Path) -> dict[str, Any]:
    dbname = f"conversme_bench_uploads_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(PG_ADMIN)
    await admin.execute(f'CREATE DATABASE "{dbname}"')
    await admin.close()
    db_url = PG_ADMIN.rsplit("/", 1)[0] + f"/{dbname}"
    extra = s3.env(s3.new_bucket()) if kind == "s3" else {}
    base = server_env(db_url, REDIS_URL, work / kind / "api", LOG_LEVEL="warning",
                      WORKER_CONCURRENCY=str(args.worker_concurrency), **extra)
    procs: list[Any] = []
    try:
        (work / kind / "api").mkdir(parents=True)
        migrate(base)
        api = ServerProcess(base).start()
        procs.append(api)
        for i in range(2):
            # On the bucket each worker has a disk of its own; locally they must share the API's.
            own = work / kind / f"worker{i}" if kind == "s3" else work / kind / "api"
            own.mkdir(parents=True, exist_ok=True)
            procs.append(JobProcess("worker", {**base, "DATA_DIR": str(own)}).start())
        stats = create_stats(REDIS_URL, base["REDIS_PREFIX"])

        async def both_alive() -> bool:
            return len((await stats.snapshot()).workers) >= 2

        await wait_for(both_alive, 120, "two workers")
        await stats.close()
        width, height = (int(v) for v in args.size.split("x"))
        files = [image(width, height) for _ in range(min(args.uploads, 8))]
        async with httpx.AsyncClient(base_url=api.url, timeout=120) as client:
            who = await person(client, "bench")
            gate = asyncio.Semaphore(args.clients)

            async def upload(i: int) -> None:
                async with gate:
                    r = await client.post("/media/upload", headers=who.headers,
                                          files={"file": (f"{i}.png", files[i % len(files)], "image/png")})
                    r.raise_for_status()

            cpu_before = {p.proc.pid: cpu_seconds(p.proc.pid) for p in procs}
            started = time.monotonic()
            await asyncio.gather(*(upload(i) for i in range(args.uploads)))
            accepted = time.monotonic() - started
            conn = await asyncpg.connect(db_url)

            async def all_ready() -> bool:
                done = await conn.fetchval("SELECT count(*) FROM media WHERE status <> 'processing'")
                return bool(int(done) >= args.uploads)

            await wait_for(all_ready, 600, "every upload to be processed")
            elapsed = time.monotonic() - started
            rows = await conn.fetch("SELECT status, extract(epoch FROM updated_at - created_at) AS s FROM media")
            await conn.close()
        cpu = {pid: cpu_seconds(pid) - before for pid, before in cpu_before.items()}
        api_pid = procs[0].proc.pid
        failed = sum(r["status"] != "ready" for r in rows)
        latencies = [float(r["s"]) for r in rows]
        return {"backend": kind, "uploads": args.uploads, "failed": failed,
                "accepted_per_s": args.uploads / accepted, "ready_per_s": args.uploads / elapsed,
                "p50_s": percentile(latencies, 0.5), "p99_s": percentile(latencies, 0.99),
                "api_cpu_s": cpu[api_pid], "workers_cpu_s": sum(v for k, v in cpu.items() if k != api_pid),
                "bucket_objects": len(s3.objects(extra["STORAGE_URL"][5:])) if kind == "s3" else None}
    finally:
        for p in reversed(procs):
            p.stop()
        admin = await asyncpg.connect(PG_ADMIN)
        await admin.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        await admin.close()
        redis = Redis.from_url(REDIS_URL)
        keys = [k async for k in redis.scan_iter(match=f"{base['REDIS_PREFIX']}*", count=1000)]
        if keys:
            await redis.unlink(*keys)
        await redis.aclose()


async def main(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-uploads-"))
    s3 = start_s3_server(work)
    results = []
    try:
        for kind in args.backends.split(","):
            results.append(await run_backend(kind, args, s3, work))
            print(f"{kind} done", file=sys.stderr)
    finally:
        s3.stop()
    print(f"{args.uploads} uploads of a {args.size} PNG, {args.clients} clients, 1 API, 2 workers x "
          f"{args.worker_concurrency}, {os.cpu_count()} CPUs")
    cols = ["backend", "failed", "accepted_per_s", "ready_per_s", "p50_s", "p99_s", "api_cpu_s", "workers_cpu_s",
            "bucket_objects"]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in results:
        print("| " + " | ".join(f"{r[c]:.2f}" if isinstance(r[c], float) else str(r[c]) for c in cols) + " |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, default=200)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--worker-concurrency", type=int, default=8)
    parser.add_argument("--backends", default="s3,local")
    asyncio.run(main(parser.parse_args()))
