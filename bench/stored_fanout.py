"""Stored chat fanned out to a full room, against the lean baseline in the same run, source tree by source tree.

    .venv/bin/python bench/stored_fanout.py --tree before=/tmp/wb-before --tree after=/work/wt-write
        [--subscribers 400] [--rate 200] [--seconds 10] [--sat-seconds 10] [--window 50] [--repeat 3]

bench/ws_fanout.py measures saturation by injecting messages into the hub (the fan-out alone); this one sends
`chat.send` pushes — stored, then fanned out — for both of its modes, with bench/ws_fanout.py's machinery (its
Node load generator, lean baseline and percentiles). Per tree (`label=path`: that tree's code, run with this
interpreter, cwd and PYTHONPATH set to the tree): a fresh database, two instances sharing Redis, S members of
one event room split over them, two lean servers; then --repeat rounds of

- rate: one sender pushes `chat.send` at R/s for T s; deliveries/s, lost, duplicated, p99 (push sent -> each
  member has it) — and the lean baseline publishing the same rate right after;
- saturation: `chat.send` pushes as fast as a window of W in flight (measured at a probe member) allows;
  deliveries per server CPU-second (both instances) — and the lean baseline's, right after.

Prints medians and ranges per tree, and the ratios to the lean baseline of the same round. Not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import asyncpg  # type: ignore[import-untyped]  # noqa: E402
import httpx  # noqa: E402
from redis.asyncio import Redis  # noqa: E402

from bench.stored_write import Tree, parse_tree  # noqa: E402
from bench.ws_fanout import (  # noqa: E402
    PG_ADMIN,
    REDIS_URL,
    LeanServer,
    ensure_loadgen,
    lean_rate_mode,
    make_people,
    rate_mode,
    saturate,
)
from channels.client import RealtimeClient  # noqa: E402
from tests.realtime.harness import ServerProcess, server_env  # noqa: E402


class Sender(RealtimeClient):
    """Sends pushes without waiting for their replies; keeps none of the room's messages."""

    def _dispatch(self, frame: dict[str, Any]) -> None:
        if frame.get("op") == "msg":
            return
        super()._dispatch(frame)

    async def send_push(self, topic: str, ref: int, text: str) -> None:
        await self.send_raw(json.dumps({"op": "push", "ref": str(ref), "topic": topic, "event": "chat.send",
                                        "data": {"text": text}}))


async def one_tree(args: argparse.Namespace, tree: Tree) -> dict[str, list[dict[str, Any]]]:
    work = Path(tempfile.mkdtemp(prefix="stored_fanout_"))
    dbname = f"bench_sf_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(PG_ADMIN)
    await conn.execute(f'CREATE DATABASE "{dbname}"')
    await conn.close()
    env = server_env(PG_ADMIN.rsplit("/", 1)[0] + f"/{dbname}", REDIS_URL, work, WS_PUSH_RATE="100000",
                     WS_PUSH_BURST="100000", WS_MAX_QUEUE_BYTES=str(4 * 1024 * 1024), DB_POOL_SIZE="20",
                     PYTHONPATH=str(tree.path))
    command = (args.python, "-m", "server.cli", "serve")
    servers: list[ServerProcess] = []
    leans: list[LeanServer] = []
    out: dict[str, list[dict[str, Any]]] = {"rate": [], "rate_lean": [], "sat": [], "sat_lean": []}
    here = os.getcwd()
    try:
        os.chdir(tree.path)  # `python -m` puts the cwd first on sys.path: the tree's own code is served
        r = await asyncio.to_thread(subprocess.run, [args.python, "-m", "server.cli", "migrate"],
                                    env=env, capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            raise RuntimeError(f"{tree.label}: migrate failed: {r.stderr[-2000:]}")
        servers = [ServerProcess(env, command=command).start(), ServerProcess(env, command=command).start()]
        os.chdir(here)
        leans = [LeanServer(work).start(), LeanServer(work).start()]
        pids = [s.proc.pid for s in servers if s.proc]
        lean_pids = [s.proc.pid for s in leans if s.proc]
        async with httpx.AsyncClient(base_url=servers[0].url, timeout=120) as api:
            people = await make_people(api, args.subscribers + 1)
            owner, subs = people[0], people[1:]
            r2 = await api.post("/events", headers={"Authorization": f"Bearer {owner['token']}"},
                                json={"title": "Fan-out", "startTime": "2030-01-01T09:00:00Z",
                                      "endTime": "2030-01-01T10:00:00Z"})
            r2.raise_for_status()
            event_id = r2.json()["id"]
        db = await asyncpg.connect(PG_ADMIN.rsplit("/", 1)[0] + f"/{dbname}")
        await db.executemany(
            "INSERT INTO event_participants (event_id, user_id, role, status, joined_at) "
            "VALUES ($1, $2, 'participant', 'confirmed', now())",
            [(uuid.UUID(event_id), uuid.UUID(s["id"])) for s in subs])
        await db.close()
        topic = f"event:{event_id}"
        redis = Redis.from_url(REDIS_URL)
        pad = "x" * 100
        for round_no in range(args.repeat):
            out["rate"].append(await rate_mode(args, servers, owner, subs, topic))
            out["rate_lean"].append(await lean_rate_mode(args, leans, len(subs)))
            conns = [{"url": servers[i % 2].ws_url, "token": s["token"], "topic": topic} for i, s in enumerate(subs)]
            sender = Sender(servers[0].ws_url, owner["token"], reconnect=False)
            async with sender:
                await sender.join(topic)

                async def push(i: int, sender: Sender = sender) -> None:
                    # The load generator reads `seq`/`ts` of bench frames; a chat line carries them in its text.
                    await sender.send_push(topic, i, f"{time.time() * 1000:.3f}|{pad}")

                out["sat"].append(await saturate(args, [], conns, "conversme", push, servers[1].ws_url,
                                                 owner["token"], topic, pids))

            async def publish_lean(i: int) -> None:
                await redis.publish("lean:bench", json.dumps(
                    {"op": "msg", "data": {"seq": i, "ts": time.time() * 1000, "pad": pad}}))

            lean_conns = [{"url": leans[i % 2].ws_url} for i in range(len(subs))]
            out["sat_lean"].append(await saturate(args, [], lean_conns, "lean", publish_lean, leans[1].ws_url, None,
                                                  topic, lean_pids))
            print(f"{tree.label} round {round_no + 1}: " + json.dumps({k: v[-1] for k, v in out.items()}),
                  file=sys.stderr, flush=True)
        await redis.aclose()
    finally:
        os.chdir(here)
        for s in servers:
            s.stop()
        for lean in leans:
            lean.stop()
        with contextlib.suppress(Exception):
            conn = await asyncpg.connect(PG_ADMIN)
            await conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
            await conn.close()
        shutil.rmtree(work, ignore_errors=True)
    return out


def spread(values: list[float], fmt: str = "{:.0f}") -> str:
    return f"{fmt.format(statistics.median(values))} [{fmt.format(min(values))}-{fmt.format(max(values))}]"


async def main(args: argparse.Namespace) -> None:
    ensure_loadgen()
    results = {tree.label: await one_tree(args, tree) for tree in args.tree}
    print(f"\n## Stored chat fan-out — {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, "
          f"{args.subscribers} members on 2 instances, median [min-max] of {args.repeat} rounds\n")
    print(f"| tree | rate {args.rate}/s: delivered/offered | p99 ms | lean p99 ms | p99 / lean p99 | "
          f"saturation deliveries per CPU-s | lean | ratio to lean |")
    print("|---|--:|--:|--:|--:|--:|--:|--:|")
    for label, r in results.items():
        offered = [x["published"] * args.subscribers for x in r["rate"]]
        delivered = [x["deliveries"] / o for x, o in zip(r["rate"], offered, strict=True)]
        lost = sum(x["lost"] for x in r["rate"])
        p99 = [float(x["p99_ms"] or 0) for x in r["rate"]]
        lean_p99 = [float(x["p99_ms"] or 0) for x in r["rate_lean"]]
        sat = [float(x["deliveries_per_cpu_s"] or 0) for x in r["sat"]]
        sat_lean = [float(x["deliveries_per_cpu_s"] or 0) for x in r["sat_lean"]]
        print(f"| {label} | {spread(delivered, '{:.3f}')} (lost {lost}) | {spread(p99, '{:.0f}')} | "
              f"{spread(lean_p99, '{:.0f}')} | "
              f"{spread([a / b for a, b in zip(p99, lean_p99, strict=True)], '{:.2f}')} | "
              f"{spread(sat)} | {spread(sat_lean)} | "
              f"{spread([a / b for a, b in zip(sat, sat_lean, strict=True)], '{:.2f}')} |")
    print("\n" + json.dumps(results))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tree", type=parse_tree, action="append", required=True, metavar="LABEL=PATH")
    parser.add_argument("--subscribers", type=int, default=400)
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--sat-seconds", type=int, default=10)
    parser.add_argument("--window", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--loadgens", type=int, default=2, help="Node load-generator processes")
    parser.add_argument("--python", default=str(ROOT / ".venv" / "bin" / "python"))
    asyncio.run(main(parser.parse_args()))
