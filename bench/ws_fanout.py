"""WebSocket fan-out benchmark: two conversme instances sharing Redis vs a lean Starlette + Redis baseline,
measured in the same run. Prints numbers; it is not a test.

    .venv/bin/python bench/ws_fanout.py [--subscribers 400] [--rate 200] [--seconds 10] [--idle 5000]

Modes (all by default):
- rate:        one publisher pushes `chat.send` at R msgs/s for T s (stored, then fanned out) to S subscribers,
               half on each instance; deliveries/s, latency p50/p99, lost and duplicated messages.
- saturation:  messages injected through the hub's Redis log as fast as a bounded window (W in flight,
               measured at a probe subscriber) allows, for ours and for the baseline; deliveries per server
               CPU-second and the ratio.
- idle:        N idle authenticated connections (half per instance, each joined to its user topic): server RSS
               per connection, and the same for the baseline (unauthenticated).
The load generator is Node (bench/loadgen), which leaves more CPU to the servers than a Python client.
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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx
from redis.asyncio import Redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from channels.client import RealtimeClient  # noqa: E402
from channels.redis_hub import RedisHub  # noqa: E402
from tests.realtime.harness import ServerProcess, free_port, migrate, server_env  # noqa: E402

PG_ADMIN = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
LOADGEN = ROOT / "bench" / "loadgen"
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


BASELINES = ("lean", "websockets")  # bench/lean_server.py (uvicorn + Starlette), bench/websockets_server.py


class LeanServer:
    """A baseline server: `lean` (Starlette under uvicorn) or `websockets` (the library's own server). Both take
    the room from the query string and relay the Redis channel `lean:<room>`, so the load generators treat them
    alike (protocol "lean")."""

    def __init__(self, data: Path, kind: str = "lean") -> None:
        self.port = free_port()
        self.data = data
        self.kind = kind
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws?room=bench"

    def start(self) -> LeanServer:
        log = (self.data / f"{self.kind}-{self.port}.log").open("ab")
        if self.kind == "websockets":
            command = [sys.executable, "-m", "bench.websockets_server", "--port", str(self.port)]
        else:
            command = [sys.executable, "-m", "uvicorn", "bench.lean_server:app", "--port", str(self.port),
                       "--log-level", "warning", "--ws", "websockets-sansio", "--ws-per-message-deflate", "false",
                       "--no-server-header"]
        self.proc = subprocess.Popen(command, cwd=ROOT, env={**os.environ, "REDIS_URL": REDIS_URL}, stdout=log,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(OSError):
                import socket
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.kind} baseline server did not start")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:  # a busy machine: do not leave it running
                self.proc.kill()
                self.proc.wait(10)


class Loadgen:
    """One Node process holding many sockets; speaks JSON lines."""

    def __init__(self, job: dict[str, Any]) -> None:
        self.job = job
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> dict[str, Any]:
        self.proc = await asyncio.create_subprocess_exec(
            "node", str(LOADGEN / "loadgen.mjs"), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            cwd=LOADGEN, limit=64 * 1024 * 1024)
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write((json.dumps(self.job) + "\n").encode())
        await self.proc.stdin.drain()
        line = await asyncio.wait_for(self.proc.stdout.readline(), 300)
        if not line:
            raise RuntimeError("load generator died while connecting")
        result: dict[str, Any] = json.loads(line)
        return result

    async def wait_seen(self, n: int, seconds: float) -> int:
        """Wait until every connection has seen `n` messages, at most `seconds`; how many are still short."""
        assert self.proc and self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(f"wait {n} {int(seconds * 1000)}\n".encode())
        await self.proc.stdin.drain()
        line = await asyncio.wait_for(self.proc.stdout.readline(), seconds + 60)
        behind: int = json.loads(line)["behind"]
        return behind

    async def stop(self) -> dict[str, Any]:
        assert self.proc and self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(b"stop\n")
        await self.proc.stdin.drain()
        line = await asyncio.wait_for(self.proc.stdout.readline(), 120)
        await self.proc.wait()
        result: dict[str, Any] = json.loads(line)
        return result


class LoadgenPool:
    """The subscribers spread over several Node processes (one Node thread tops out near 50k frames/s)."""

    def __init__(self, job: dict[str, Any], processes: int) -> None:
        conns = job["conns"]
        self.parts = [Loadgen({**job, "conns": conns[i::processes]}) for i in range(processes) if conns[i::processes]]

    async def start(self) -> dict[str, Any]:
        results = await asyncio.gather(*[p.start() for p in self.parts])
        return {"ready": sum(r["ready"] for r in results), "seconds": max(r["seconds"] for r in results)}

    async def wait_seen(self, n: int, seconds: float) -> int:
        return sum(await asyncio.gather(*[p.wait_seen(n, seconds) for p in self.parts]))

    async def stop(self) -> dict[str, Any]:
        results = await asyncio.gather(*[p.stop() for p in self.parts])
        merged: dict[str, Any] = {"deliveries": 0, "duplicates": 0, "outOfOrder": 0, "errors": 0, "ranges": [],
                                  "lat": []}
        for r in results:
            for key in ("deliveries", "duplicates", "outOfOrder", "errors"):
                merged[key] += r[key]
            merged["ranges"] += r["ranges"]
        # Percentiles over the union, weighted by each part's sample count (parts are equal in size).
        p50s = [r["p50"] for r in results if r["p50"] is not None]
        p99s = [r["p99"] for r in results if r["p99"] is not None]
        merged["p50"] = statistics.median(p50s) if p50s else None  # idle runs measure no latency
        merged["p99"] = max(p99s) if p99s else None
        return merged


def ensure_loadgen() -> None:
    if not (LOADGEN / "node_modules" / "ws").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=LOADGEN, check=True)


async def make_people(api: httpx.AsyncClient, n: int) -> list[dict[str, str]]:
    sem = asyncio.Semaphore(16)

    async def one(i: int) -> dict[str, str]:
        async with sem:
            handle = f"b{i}_{uuid.uuid4().hex[:6]}"
            email = f"{handle}@bench.example"
            r = await api.post("/users", json={"email": email, "password": "bench password", "name": handle,
                                               "handle": handle})
            r.raise_for_status()
            t = await api.post("/auth/token", data={"username": email, "password": "bench password"})
            t.raise_for_status()
            return {"id": r.json()["id"], "token": t.json()["accessToken"]}

    return list(await asyncio.gather(*[one(i) for i in range(n)]))


def summarize(stats: dict[str, Any], published: int) -> dict[str, Any]:
    lost = sum(max(0, published - r["seen"]) for r in stats["ranges"])
    return {"deliveries": stats["deliveries"], "lost": lost, "duplicates": stats["duplicates"],
            "out_of_order": stats["outOfOrder"], "p50_ms": stats["p50"], "p99_ms": stats["p99"],
            "errors": stats["errors"]}


async def rate_mode(args: argparse.Namespace, servers: list[ServerProcess], owner: dict[str, str],
                    subs: list[dict[str, str]], topic: str, hub: RedisHub | None = None,
                    rate: int | None = None) -> dict[str, Any]:
    rate = rate or args.rate
    conns = [{"url": servers[i % 2].ws_url, "token": s["token"], "topic": topic} for i, s in enumerate(subs)]
    gen = LoadgenPool({"mode": "subscribe", "protocol": "conversme", "conns": conns}, args.loadgens)
    await gen.start()
    pids = [s.proc.pid for s in servers if s.proc]
    cpu0 = sum(cpu_seconds(p) for p in pids)
    async with RealtimeClient(servers[0].ws_url, owner["token"]) as pub:
        await pub.join(topic)
        interval = 1.0 / rate
        start = time.perf_counter()
        published = 0
        while published < rate * args.seconds:
            target = start + published * interval
            delay = target - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            text = f"{time.time() * 1000:.3f}|{'x' * 100}"
            if hub is not None:  # --via hub: only the fan-out path (what a committed change costs after commit)
                await hub.publish(topic, "chat.message", {"text": text})
            else:
                await pub._ws.send(json.dumps({"op": "push", "ref": str(published), "topic": topic,  # type: ignore[union-attr]
                                               "event": "chat.send", "data": {"text": text}}))
            published += 1
        elapsed = time.perf_counter() - start
        # The publisher is a member too: once its own copy of the last message is back, the stream is out.
        got = 0
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(120):
                while got < published:
                    await pub.next(event="chat.message", timeout=120)
                    got += 1
        drained = time.perf_counter() - start
        await asyncio.sleep(2)
    cpu = sum(cpu_seconds(p) for p in pids) - cpu0
    out = summarize(await gen.stop(), published)
    out.update(published=published, seconds=round(elapsed, 2), drained_after_s=round(drained, 2),
               deliveries_per_s=round(out["deliveries"] / drained), server_cpu_s=round(cpu, 2))
    return out


async def lean_rate_mode(args: argparse.Namespace, leans: list[LeanServer], n: int,
                         rate: int | None = None) -> dict[str, Any]:
    rate = rate or args.rate
    conns = [{"url": leans[i % 2].ws_url} for i in range(n)]
    gen = LoadgenPool({"mode": "subscribe", "protocol": "lean", "conns": conns}, args.loadgens)
    await gen.start()
    pids = [s.proc.pid for s in leans if s.proc]
    from websockets.asyncio.client import connect

    # A member of our own, as conversme's publisher is: once it has the last message, the stream is out (on a
    # busy machine that is seconds after the last publish, and a fixed wait would count the rest as lost).
    # No keepalive pings: on a machine at load 30 a pong came later than 20 s and closed the probe.
    async with connect(leans[1].ws_url, compression=None, max_queue=None, ping_interval=None) as probe:
        cpu0 = sum(cpu_seconds(p) for p in pids)
        redis = Redis.from_url(REDIS_URL)
        interval = 1.0 / rate
        start = time.perf_counter()
        published = 0
        while published < rate * args.seconds:
            delay = start + published * interval - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await redis.publish("lean:bench", json.dumps(
                {"op": "msg", "data": {"seq": published, "ts": time.time() * 1000, "text": "x" * 100}}))
            published += 1
        elapsed = time.perf_counter() - start
        got = 0
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(120):
                while got < published:
                    await probe.recv()
                    got += 1
        drained = time.perf_counter() - start
        await asyncio.sleep(2)
        await redis.aclose()
    cpu = sum(cpu_seconds(p) for p in pids) - cpu0
    out = summarize(await gen.stop(), published)
    out.update(published=published, seconds=round(elapsed, 2), drained_after_s=round(drained, 2),
               deliveries_per_s=round(out["deliveries"] / drained), server_cpu_s=round(cpu, 2))
    return out


async def saturate(args: argparse.Namespace, urls: list[str], conns: list[dict[str, Any]], protocol: str,
                   publish: Any, probe_url: str, probe_token: str | None, topic: str,
                   pids: list[int]) -> dict[str, Any]:
    gen = LoadgenPool({"mode": "subscribe", "protocol": protocol, "conns": conns}, args.loadgens)
    await gen.start()
    seen = 0
    done = asyncio.Event()

    async def probe() -> None:
        nonlocal seen
        if probe_token is not None:
            async with RealtimeClient(probe_url, probe_token, reconnect=False) as c:
                await c.join(topic)
                ready.set()
                while not done.is_set():
                    with contextlib.suppress(TimeoutError):
                        await c.next(timeout=0.5)
                        seen += 1
        else:
            from websockets.asyncio.client import connect
            async with connect(probe_url) as ws:
                ready.set()
                while not done.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(ws.recv(), 0.5)
                        seen += 1

    ready = asyncio.Event()
    task = asyncio.create_task(probe())
    await ready.wait()
    cpu0 = sum(cpu_seconds(p) for p in pids)
    start = time.perf_counter()
    published = 0
    while time.perf_counter() - start < args.sat_seconds:
        while published - seen >= args.window:  # noqa: ASYNC110 - a bounded window, polled
            await asyncio.sleep(0.0005)
        await publish(published)
        published += 1
    while seen < published and time.perf_counter() - start < args.sat_seconds + 10:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    elapsed = time.perf_counter() - start
    cpu = sum(cpu_seconds(p) for p in pids) - cpu0
    done.set()
    await task
    # The probe is one subscriber: the others (on the other instance too) may still be receiving the tail. What
    # has not arrived after a generous wait is lost; before, a busy run counted frames in flight as lost.
    await gen.wait_seen(published, 30)
    out = summarize(await gen.stop(), published)
    out.update(published=published, seconds=round(elapsed, 2), server_cpu_s=round(cpu, 2),
               deliveries_per_s=round(out["deliveries"] / elapsed),
               deliveries_per_cpu_s=round(out["deliveries"] / cpu) if cpu else None)
    return out


async def idle_mode(args: argparse.Namespace, urls: list[str], tokens: list[dict[str, str]], protocol: str,
                    pids: list[int]) -> dict[str, Any]:
    await asyncio.sleep(1)
    before = [rss_kib(p) for p in pids]
    conns = [{"url": urls[i % len(urls)], "token": tokens[i % len(tokens)]["token"],
              "topic": f"user:{tokens[i % len(tokens)]['id']}" if args.idle_join else None}
             for i in range(args.idle)]
    gen = LoadgenPool({"mode": "idle", "protocol": protocol, "conns": conns, "parallel": 100}, args.loadgens)
    ready = await gen.start()
    await asyncio.sleep(3)
    after = [rss_kib(p) for p in pids]
    await gen.stop()
    per_conn = (sum(after) - sum(before)) / args.idle
    return {"connections": args.idle, "connect_seconds": round(ready["seconds"], 1),
            "rss_before_kib": sum(before), "rss_after_kib": sum(after), "kib_per_connection": round(per_conn, 1)}


def table(rows: Sequence[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


async def main(args: argparse.Namespace) -> dict[str, Any]:
    ensure_loadgen()
    baselines = [b for b in args.baselines.split(",") if b]
    unknown = set(baselines) - set(BASELINES)
    if unknown:
        raise SystemExit(f"unknown baselines: {', '.join(sorted(unknown))} (known: {', '.join(BASELINES)})")
    sat_via = [v for v in args.sat_via.split(",") if v]
    work = Path(tempfile.mkdtemp(prefix="ws_fanout_"))
    dbname = f"bench_ws_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(PG_ADMIN)
    await conn.execute(f'CREATE DATABASE "{dbname}"')
    await conn.close()
    env = server_env(PG_ADMIN.rsplit("/", 1)[0] + f"/{dbname}", REDIS_URL, work, WS_PUSH_RATE="100000",
                     WS_PUSH_BURST="100000", WS_MAX_QUEUE_BYTES=str(4 * 1024 * 1024), DB_POOL_SIZE="20")
    servers: list[ServerProcess] = []
    others: dict[str, list[LeanServer]] = {}
    # The servers' own key space: a hub with another prefix would publish where no instance listens.
    hub = RedisHub(REDIS_URL, "bench", prefix=env["REDIS_PREFIX"])
    results: dict[str, Any] = {"baselines": baselines}
    try:
        migrate(env)
        servers = [ServerProcess(env).start(), ServerProcess(env).start()]
        others = {b: [LeanServer(work, b).start(), LeanServer(work, b).start()] for b in baselines}
        pids = [s.proc.pid for s in servers if s.proc]
        await hub.start()
        async with httpx.AsyncClient(base_url=servers[0].url, timeout=60) as api:
            people = await make_people(api, args.subscribers + 1)
            owner, subs = people[0], people[1:]
            auth = {"Authorization": f"Bearer {owner['token']}"}
            r = await api.post("/events", headers=auth, json={"title": "Fan-out", "startTime": "2030-01-01T09:00:00Z",
                                                              "endTime": "2030-01-01T10:00:00Z"})
            r.raise_for_status()
            event_id = r.json()["id"]
            db = await asyncpg.connect(PG_ADMIN.rsplit("/", 1)[0] + f"/{dbname}")
            await db.executemany(
                "INSERT INTO event_participants (event_id, user_id, role, status, joined_at) "
                "VALUES ($1, $2, 'participant', 'confirmed', now())",
                [(uuid.UUID(event_id), uuid.UUID(s["id"])) for s in subs])
            await db.close()
            # A hub-sequenced topic for what only the fan-out costs: an event room is sequenced by the database
            # (its log is written in the change's transaction), so a frame published into the hub by hand would
            # not fit it. A live session of the event: every participant may join it.
            r = await api.post("/live/contexts", headers=auth, json={"eventId": event_id})
            r.raise_for_status()
            live_topic = f"live:{r.json()['id']}"
        topic = f"event:{event_id}"
        modes = set(args.modes.split(","))
        if "rate" in modes:
            results["rate"] = []
            for rate in (int(x) for x in str(args.rate).split(",")):
                row: dict[str, Any] = {"rate": rate, "via": args.via}
                if args.via == "hub":
                    row["ours"] = await rate_mode(args, servers, owner, subs, live_topic, hub, rate)
                else:
                    row["ours"] = await rate_mode(args, servers, owner, subs, topic, None, rate)
                print(f"rate {rate} ours:", json.dumps(row["ours"]), flush=True)
                for b in baselines:
                    row[b] = await lean_rate_mode(args, others[b], len(subs), rate)
                    print(f"rate {rate} {b}:", json.dumps(row[b]), flush=True)
                results["rate"].append(row)
        if "saturation" in modes:
            sat: dict[str, list[dict[str, Any]]] = {f"ours_{v}": [] for v in sat_via} | {b: [] for b in baselines}
            redis = Redis.from_url(REDIS_URL)
            payload_pad = "x" * 100
            async with RealtimeClient(servers[0].ws_url, owner["token"]) as pub:
                await pub.join(topic)
                for _ in range(args.repeat):
                    for via in sat_via:
                        if via == "hub":  # the fan-out alone: frames straight into the hub's log of a live topic
                            async def publish_ours(i: int) -> None:
                                await hub.publish(live_topic, "bench.tick",
                                                  {"seq": i, "ts": time.time() * 1000, "pad": payload_pad})
                            sat_topic = live_topic
                        else:  # stored chat: `chat.send` pushes, each a transaction, then fanned out
                            async def publish_ours(i: int) -> None:
                                await pub.send_raw(json.dumps({
                                    "op": "push", "ref": str(i), "topic": topic, "event": "chat.send",
                                    "data": {"text": f"{time.time() * 1000:.3f}|{payload_pad}"}}))
                            sat_topic = topic
                        conns = [{"url": servers[i % 2].ws_url, "token": s["token"], "topic": sat_topic}
                                 for i, s in enumerate(subs)]
                        sat[f"ours_{via}"].append(await saturate(args, [], conns, "conversme", publish_ours,
                                                                 servers[1].ws_url, owner["token"], sat_topic, pids))
                        print(f"saturation ours ({via}):", json.dumps(sat[f"ours_{via}"][-1]), flush=True)
                    for b in baselines:
                        lean_conns = [{"url": others[b][i % 2].ws_url} for i in range(len(subs))]

                        async def publish_lean(i: int) -> None:
                            await redis.publish("lean:bench", json.dumps(
                                {"op": "msg", "data": {"seq": i, "ts": time.time() * 1000, "pad": payload_pad}}))

                        sat[b].append(await saturate(args, [], lean_conns, "lean", publish_lean, others[b][1].ws_url,
                                                     None, topic, [s.proc.pid for s in others[b] if s.proc]))
                        print(f"saturation {b}:", json.dumps(sat[b][-1]), flush=True)
            await redis.aclose()
            results["saturation"] = sat
        if "idle" in modes:
            results["idle"] = {"ours": await idle_mode(args, [s.ws_url for s in servers], subs, "conversme", pids)}
            print("idle ours:", json.dumps(results["idle"]["ours"]), flush=True)
            for b in baselines:
                results["idle"][b] = await idle_mode(args, [s.ws_url for s in others[b]], subs, "lean",
                                                     [s.proc.pid for s in others[b] if s.proc])
                print(f"idle {b}:", json.dumps(results["idle"][b]), flush=True)
    finally:
        await hub.close()
        for s in servers:
            s.stop()
        for group in others.values():
            for other in group:
                other.stop()
        with contextlib.suppress(Exception):
            conn = await asyncpg.connect(PG_ADMIN)
            await conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
            await conn.close()
        shutil.rmtree(work, ignore_errors=True)
    report(args, results)
    return results


LABELS = {"lean": "lean baseline (Starlette + Redis)", "websockets": "websockets-library baseline (+ Redis)"}


def report(args: argparse.Namespace, results: dict[str, Any]) -> None:
    baselines = results["baselines"]
    print(f"\n## WebSocket fan-out — {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, "
          f"{args.subscribers} subscribers on 2 instances\n")
    for row in results.get("rate", []):
        rows = [(f"rate {row['rate']}/s x {args.seconds}s", "published", "deliveries/s", "p50 ms", "p99 ms",
                 "lost", "duplicated", "server CPU-s")]
        ours = ("conversme (hub publish: fan-out only)" if row["via"] == "hub"
                else "conversme (chat.send push: stored, then fanned out)")
        for label, r in ((ours, row["ours"]), *((LABELS[b], row[b]) for b in baselines)):
            rows.append((label, str(r["published"]), str(r["deliveries_per_s"]), f"{r['p50_ms']:.1f}",
                         f"{r['p99_ms']:.1f}", str(r["lost"]), str(r["duplicates"]), str(r["server_cpu_s"])))
        print(table(rows))
        print()
    if "saturation" in results:
        sat = results["saturation"]
        sat_rows = [(f"saturation (window {args.window}), median of {args.repeat}", "deliveries/s",
                 "deliveries per server CPU-s", "p99 ms", "lost", "duplicated")]
        names = {"ours_hub": "conversme, hub publish (fan-out only)",
                 "ours_push": "conversme, chat.send (stored, then fanned out)"} | LABELS
        per_cpu = {k: statistics.median(x["deliveries_per_cpu_s"] or 0 for x in runs) for k, runs in sat.items()}
        for key, runs in sat.items():
            sat_rows.append((names[key], str(statistics.median(x["deliveries_per_s"] for x in runs)), str(per_cpu[key]),
                         f"{statistics.median(x['p99_ms'] for x in runs):.1f}", str(sum(x["lost"] for x in runs)),
                         str(sum(x["duplicates"] for x in runs))))
        print(table(sat_rows))
        for key in (k for k in sat if k.startswith("ours_")):
            for b in baselines:
                if per_cpu[b]:
                    print(f"ratio {names[key]} / {b} (deliveries per server CPU-second): "
                          f"{per_cpu[key] / per_cpu[b]:.2f}")
        print()
    if "idle" in results:
        idle = results["idle"]
        idle_rows = [("idle connections", "count", "server RSS per connection (KiB)"),
                ("conversme (authenticated" + (", joined user topic)" if args.idle_join else ")"),
                 str(idle["ours"]["connections"]), str(idle["ours"]["kib_per_connection"]))]
        idle_rows += [(LABELS[b] + " (no auth)", str(idle[b]["connections"]), str(idle[b]["kib_per_connection"]))
                 for b in baselines]
        print(table(idle_rows))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", type=int, default=400)
    parser.add_argument("--rate", default="200", help="messages/s in the rate mode; a comma list runs each (200)")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--sat-seconds", type=int, default=10)
    parser.add_argument("--window", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--idle", type=int, default=5000)
    parser.add_argument("--modes", default="rate,saturation,idle")
    parser.add_argument("--loadgens", type=int, default=2, help="Node load-generator processes")
    parser.add_argument("--idle-join", action="store_true",
                        help="idle mode: each connection also joins its user topic (hub state per topic)")
    parser.add_argument("--via", choices=["push", "hub"], default="push",
                        help="rate mode: publish by chat.send pushes (stored, full path) or straight into the hub log")
    parser.add_argument("--sat-via", default="hub",
                        help="saturation: 'hub' (frames into a live topic's hub log: the fan-out alone), 'push' "
                             "(chat.send into the event room: stored, then fanned out), or both: 'hub,push'")
    parser.add_argument("--baselines", default="lean",
                        help=f"baseline servers measured in the same run, comma-separated ({', '.join(BASELINES)})")
    parser.add_argument("--json", type=Path, help="also write the results here")
    ns = parser.parse_args()
    out = asyncio.run(main(ns))
    if ns.json:
        ns.json.write_text(json.dumps(out, indent=2))
