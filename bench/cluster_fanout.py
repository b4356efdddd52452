"""Fan-out on a Redis Cluster against one Redis, in the same run: three conversme instances with the room's
subscribers spread over them, messages injected through the hub's log as fast as a bounded window allows
(the saturation mode of bench/ws_fanout.py). Prints deliveries per server CPU-second, p50/p99, lost and
duplicated messages for each backend. It is not a test.

    .venv/bin/python bench/cluster_fanout.py [--subscribers 300] [--sat-seconds 10] [--window 50] [--repeat 2]

The cluster is private (three masters on free loopback ports, started and removed here, tests/cluster/nodes.py);
"one Redis" is a private redis-server too, so both runs pay the same loopback costs. PostgreSQL is private as
well (tests/faults/services.py): a shared server busy with test suites refuses connections ("too many clients")."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ws_fanout import ensure_loadgen, make_people, saturate, table  # noqa: E402
from channels.client import RealtimeClient  # noqa: E402
from tests.cluster.nodes import PrivateCluster  # noqa: E402
from tests.faults.services import PrivatePostgres, PrivateRedis  # noqa: E402
from tests.realtime.harness import ServerProcess, migrate, server_env  # noqa: E402

INSTANCES = 3


async def run_backend(args: argparse.Namespace, label: str, redis_url: str, work: Path,
                      pg: PrivatePostgres) -> list[dict[str, Any]]:
    dbname = f"bench_cl_{uuid.uuid4().hex[:8]}"
    db_url = pg.createdb(dbname)
    env = server_env(db_url, redis_url, work / label, WS_PUSH_RATE="100000", WS_PUSH_BURST="100000",
                     WS_MAX_QUEUE_BYTES=str(4 * 1024 * 1024), DB_POOL_SIZE="20")
    servers: list[ServerProcess] = []
    runs: list[dict[str, Any]] = []
    try:
        migrate(env)
        servers = [ServerProcess(env).start() for _ in range(INSTANCES)]
        pids = [s.proc.pid for s in servers if s.proc]
        async with httpx.AsyncClient(base_url=servers[0].url, timeout=60) as api:
            people = await make_people(api, args.subscribers + 1)
            owner, subs = people[0], people[1:]
            r = await api.post("/events", headers={"Authorization": f"Bearer {owner['token']}"},
                               json={"title": "Fan-out", "startTime": "2030-01-01T09:00:00Z",
                                     "endTime": "2030-01-01T10:00:00Z"})
            r.raise_for_status()
            event_id = r.json()["id"]
        db = await asyncpg.connect(db_url)
        await db.executemany(
            "INSERT INTO event_participants (event_id, user_id, role, status, joined_at) "
            "VALUES ($1, $2, 'participant', 'confirmed', now())",
            [(uuid.UUID(event_id), uuid.UUID(s["id"])) for s in subs])
        await db.close()
        topic = f"event:{event_id}"
        pad = "x" * 100
        # Real `chat.send` pushes on the first instance (each stored, then fanned out through Redis to all three):
        # an event room is sequenced by the database, so a message injected into the hub by hand would not fit
        # its log. Both backends pay the same database cost per message.
        async with RealtimeClient(servers[0].ws_url, owner["token"]) as pub:
            await pub.join(topic)

            async def publish(i: int) -> None:
                await pub.send_raw(json.dumps({"op": "push", "ref": str(i), "topic": topic, "event": "chat.send",
                                               "data": {"text": f"{time.time() * 1000:.3f}|{pad}"}}))

            for _ in range(args.repeat):
                conns = [{"url": servers[i % INSTANCES].ws_url, "token": s["token"], "topic": topic}
                         for i, s in enumerate(subs)]
                runs.append(await saturate(args, [], conns, "conversme", publish, servers[-1].ws_url,
                                           owner["token"], topic, pids))
                print(f"{label}:", json.dumps(runs[-1]), flush=True)
    except Exception:
        for s in servers:  # what the servers said, before their directory goes
            print(f"--- {label} server {s.port}:\n{s.log()[-2000:]}", file=sys.stderr)
        raise
    finally:
        for s in servers:
            s.stop()
    return runs


async def main(args: argparse.Namespace) -> None:
    ensure_loadgen()
    work = Path(tempfile.mkdtemp(prefix="cluster_fanout_"))
    single = PrivateRedis(work / "single")
    cluster = PrivateCluster(replicas=0)
    pg = PrivatePostgres(work / "pg")
    results: dict[str, list[dict[str, Any]]] = {}
    try:
        pg.init().start()
        single.start()
        cluster.start()
        results["one Redis"] = await run_backend(args, "single", single.url, work, pg)
        results["Redis Cluster (3 masters, sharded pub/sub)"] = await run_backend(args, "cluster", cluster.url, work,
                                                                                 pg)
    finally:
        single.stop()
        cluster.stop()
        pg.destroy()
        shutil.rmtree(work, ignore_errors=True)
    rows = [(f"chat.send saturation, {args.subscribers} subscribers on {INSTANCES} instances (window {args.window})",
             "deliveries/s", "deliveries per server CPU-s", "p50 ms", "p99 ms", "lost", "duplicated")]
    for label, runs in results.items():
        rows.append((label, str(statistics.median(r["deliveries_per_s"] for r in runs)),
                     str(statistics.median(r["deliveries_per_cpu_s"] or 0 for r in runs)),
                     f"{statistics.median(r['p50_ms'] for r in runs):.1f}",
                     f"{statistics.median(r['p99_ms'] for r in runs):.1f}",
                     str(sum(r["lost"] for r in runs)), str(sum(r["duplicates"] for r in runs))))
    print(f"\n## Cluster fan-out — {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, median of {args.repeat}\n")
    print(table(rows))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", type=int, default=300)
    parser.add_argument("--sat-seconds", type=int, default=10)
    parser.add_argument("--window", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--loadgens", type=int, default=2, help="Node load-generator processes")
    asyncio.run(main(parser.parse_args()))
