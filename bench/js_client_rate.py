"""The TypeScript client (clients/js) under a fast room: one Node client joined to one topic while a publisher
delivers R msgs/s into it for T s (default 1,000/s for 20 s). Prints what the client measured: the sustained
rate it received, lag p50/p99 (receive time - the msg's server `ts`), and its CPU per message. Prints numbers;
it is not a test.

    (cd clients/js && npm ci && npm run build)
    .venv/bin/python bench/js_client_rate.py [--rate 1000] [--seconds 20] [--no-baseline] [--json FILE]

A second run (skip it with --no-baseline) receives the same load over a bare WebSocket that only parses each
frame: the difference in CPU per message is what the client itself costs.

The path: a real `conversme serve` (PostgreSQL + Redis) and its Redis hub. The publisher appends to a `live:`
topic's log through the hub (`RedisHub.publish`: the Lua append, history and pub/sub the AI streams use), so
the server fans out every entry to the client exactly as it does AI deltas. Event rooms are sequenced by a
PostgreSQL transaction per change (~3 ms of server CPU each, docs/performance.md), which this 2-core machine
cannot sustain at 1,000/s beside the client: the live topic is the path that reaches the rate.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
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

from channels.redis_hub import RedisHub  # noqa: E402
from tests.realtime.harness import ServerProcess, migrate, server_env  # noqa: E402

PG_ADMIN = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
RECEIVER = ROOT / "bench" / "js_client_rate.mjs"
CLIENT_DIST = ROOT / "clients" / "js" / "dist" / "conversme.js"


async def sign_up(api: httpx.AsyncClient) -> dict[str, str]:
    handle = f"rate_{uuid.uuid4().hex[:8]}"
    email = f"{handle}@bench.example"
    r = await api.post("/users", json={"email": email, "password": "bench password", "name": handle, "handle": handle})
    r.raise_for_status()
    t = await api.post("/auth/token", data={"username": email, "password": "bench password"})
    t.raise_for_status()
    return {"id": r.json()["id"], "token": t.json()["accessToken"]}


async def publish(hub: RedisHub, topic: str, rate: int, seconds: float) -> tuple[int, float]:
    """`rate` msgs/s for `seconds`, paced on the clock: what is due is sent at once, a few appends in flight
    (one append after another tops out near the target rate on this machine)."""
    total = int(rate * seconds)
    start = time.perf_counter()
    sent = 0
    while sent < total:
        due = min(total, int((time.perf_counter() - start) * rate) + 1)
        while sent < due:
            batch = range(sent, min(due, sent + 20))
            await asyncio.gather(*(hub.publish(topic, "bench.tick", {"seq": i, "text": "x" * 100}) for i in batch))
            sent += len(batch)
        pause = start + sent / rate - time.perf_counter()
        if pause > 0:
            await asyncio.sleep(pause)
    return sent, time.perf_counter() - start


async def receive(node: str, server: ServerProcess, hub: RedisHub, token: str, topic: str, rate: int,
                  seconds: float, raw: bool) -> dict[str, Any]:
    """One run: the Node receiver joins `topic`, the publisher sends, the receiver reports."""
    receiver = await asyncio.create_subprocess_exec(
        node, "--experimental-websocket", str(RECEIVER), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "CONVERSME_WS": server.ws_url, "CONVERSME_TOKEN": token, "CONVERSME_TOPIC": topic,
             "BENCH_RAW": "1" if raw else "0"})
    assert receiver.stdout is not None and receiver.stdin is not None
    try:
        ready = (await asyncio.wait_for(receiver.stdout.readline(), 60)).decode().strip()
        if ready != "READY":
            raise SystemExit(f"receiver: {ready!r}")
        published, elapsed = await publish(hub, topic, rate, seconds)
        receiver.stdin.write(f"DONE {published}\n".encode())
        await receiver.stdin.drain()
        figures: dict[str, Any] = json.loads(await asyncio.wait_for(receiver.stdout.readline(), 120))
        figures.update(published=published, publish_seconds=round(elapsed, 2), publish_rate=round(published / elapsed))
        return figures
    finally:
        if receiver.returncode is None:
            receiver.kill()
            await receiver.wait()


async def main(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    node = shutil.which("node")
    if not node:
        raise SystemExit("node is required (Node 20+)")
    if not CLIENT_DIST.exists():
        raise SystemExit(f"{CLIENT_DIST} is missing: (cd clients/js && npm ci && npm run build)")
    work = Path(tempfile.mkdtemp(prefix="js_client_rate_"))
    dbname = f"bench_jsrate_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(PG_ADMIN)
    await admin.execute(f'CREATE DATABASE "{dbname}"')
    await admin.close()
    env = server_env(PG_ADMIN.rsplit("/", 1)[0] + f"/{dbname}", REDIS_URL, work,
                     WS_MAX_QUEUE_BYTES=str(4 * 1024 * 1024))
    server: ServerProcess | None = None
    hub = RedisHub(REDIS_URL, "bench-publisher", prefix=env["REDIS_PREFIX"])
    results: dict[str, dict[str, Any]] = {}
    try:
        migrate(env)
        server = ServerProcess(env).start()
        await hub.start()
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as api:
            user = await sign_up(api)
            for mode in ("client", "raw") if args.baseline else ("client",):
                r = await api.post("/live/contexts", headers={"Authorization": f"Bearer {user['token']}"}, json={})
                r.raise_for_status()
                results[mode] = await receive(node, server, hub, user["token"], f"live:{r.json()['id']}", args.rate,
                                              args.seconds, raw=mode == "raw")
        return results
    finally:
        await hub.close()
        if server is not None:
            server.stop()
        admin = await asyncpg.connect(PG_ADMIN)
        await admin.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        await admin.close()
        shutil.rmtree(work, ignore_errors=True)


def report(f: dict[str, Any], title: str) -> str:
    rows = [
        ("published", f"{f['published']:,} at {f['publish_rate']:,}/s over {f['publish_seconds']} s"),
        ("received", f"{f['received']:,} (gaps {f['gaps']}, out of order {f['backwards']})"),
        ("sustained rate received", f"{f['rate']:,}/s (per second: min {f['rate_min_1s']}, "
                                    f"median {f['rate_median_1s']})"),
        ("lag p50 / p99 / max", f"{f['lag_p50_ms']} / {f['lag_p99_ms']} / {f['lag_max_ms']} ms"),
        ("lag p50, last 1,000 msgs", f"{f['lag_p50_last_1000_ms']} ms"),
        ("client CPU", f"{f['cpu_us_per_msg']} µs per msg ({f['cpu_share'] * 100:.1f} % of a core)"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join([title, *(f"  {k.ljust(width)}  {v}" for k, v in rows)])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--no-baseline", dest="baseline", action="store_false",
                        help="skip the second run over a bare WebSocket (the baseline for the client's own cost)")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    results = asyncio.run(main(args))
    titles = {"client": "clients/js Client (Topic.on('*'))", "raw": "baseline: a bare WebSocket + JSON.parse"}
    print(f"{args.rate:,} msgs/s x {args.seconds:g} s into one joined live topic")
    for mode, figures in results.items():
        print(report(figures, titles[mode]))
    print(json.dumps(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
