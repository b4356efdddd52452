"""Connection storms: connect + authenticate + join, memory per idle joined connection, and a reconnect storm
after an instance dies — conversme against the lean Starlette + Redis baseline (bench/lean_server.py), in one
run. Prints numbers; it is not a test.

    .venv/bin/python -m bench.ws_storm [--clients 5000] [--room-size 50] [--parallel 100] [--rate 50]
        [--baselines lean,websockets] [--json FILE]

1. lean:     N connections to one lean instance, P at a time (connect, join a room by query string): rate,
             p50/p99 per connection, server RSS per idle connection. Run before and after 2 and 3 (the machine's
             load moves within minutes); the ratios use the mean of the two. --baselines lean,websockets also
             runs the websockets-library baseline (bench/websockets_server.py) the same way, before and after.
2. connect:  N connections to conversme instance A, P at a time: connect, `auth` (a token of its own sign-in
             session per client), `join` of an event room of --room-size members (the access check, presence,
             position): the same figures.
3. storm:    two real server processes, A and B, share PostgreSQL and Redis. While one member per room sends
             `chat.send` lines through B (--rate lines/s in all), A is killed (SIGKILL: a crash, no drain). Every
             client reconnects to B with the Python client's backoff and joins again with `since` = the last
             offset it saw. Timed from the kill until the last client's join was answered. Then nothing may be
             missing: each client's last offset must equal its room's head in the database, with no offset
             skipped, none twice, every resume `recovered`, and every line B acknowledged is a committed row.
With --py-spy BIN, py-spy samples A while the clients connect and B during the storm (collapsed stacks in
--profile-dir: connect-a.txt, storm-b.txt). People, sessions and rooms are written straight into a scratch
database (bench/ws_people.py), so no argon2 login runs before the benchmark.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ws_fanout import BASELINES, LeanServer, cpu_seconds, rss_kib  # noqa: E402
from bench.ws_people import Room, StormClients, ensure_loadgen, scratch_database, seed  # noqa: E402
from server.settings import Settings  # noqa: E402
from tests.conftest import SECRET  # noqa: E402
from tests.realtime.harness import ServerProcess, migrate, server_env  # noqa: E402

PG_ADMIN = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


class Sampler:
    """py-spy recording one server process (--py-spy): collapsed stacks, one line per stack with its count."""

    def __init__(self, binary: str | None, pid: int, out: Path) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        if binary:
            self.proc = subprocess.Popen([binary, "record", "-p", str(pid), "-o", str(out), "--format", "raw",
                                          "-r", "250", "--nonblocking"], stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL)
            print(f"py-spy recording pid {pid} into {out}", flush=True)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGINT)  # py-spy writes what it has and exits
            self.proc.wait(60)


def connect_figures(ready: dict[str, Any], rss_before: int, rss_after: int, cpu_s: float) -> dict[str, Any]:
    n = ready["ready"]
    return {"server_cpu_ms_per_connection": round(cpu_s * 1000 / n, 2) if n else None,
            "connections": n, "failed": ready["failed"], "seconds": round(ready["seconds"], 2),
            "per_second": round(ready["perSecond"], 1), "p50_ms": round(ready["p50"], 1),
            "p99_ms": round(ready["p99"], 1), "max_ms": round(ready["max"], 1),
            "kib_per_connection": round((rss_after - rss_before) / n, 1) if n else None}


async def settle() -> None:
    await asyncio.sleep(3)  # idle: heartbeats, presence upkeep and the relay have run a round


async def lean_phase(args: argparse.Namespace, work: Path, topics: list[str], kind: str = "lean") -> dict[str, Any]:
    lean = LeanServer(work, kind).start()
    assert lean.proc is not None
    clients = StormClients({"conns": [{"topic": t} for t in topics], "lean": True, "parallel": args.parallel,
                            "urls": [f"ws://127.0.0.1:{lean.port}/ws"] * 2})
    try:
        await asyncio.sleep(1)
        before, cpu0 = rss_kib(lean.proc.pid), cpu_seconds(lean.proc.pid)
        ready = await clients.connect()
        cpu = cpu_seconds(lean.proc.pid) - cpu0
        await settle()
        out = connect_figures(ready, before, rss_kib(lean.proc.pid), cpu)
        await clients.stop()
        return out
    finally:
        clients.kill()
        lean.stop()


async def publisher(url: str, rooms: list[Room], rate: float, stop: asyncio.Event, acked: dict[str, int],
                    failed: list[str]) -> None:
    """chat.send's REST twin through instance B, one line at a time round the rooms at `rate` lines/s."""
    async with httpx.AsyncClient(base_url=url, timeout=30) as api:
        sent, start = 0, time.perf_counter()
        while not stop.is_set():
            room = rooms[sent % len(rooms)]
            delay = start + sent / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                r = await api.post(f"/events/{room.event_id}/chat", json={"text": f"storm line {sent}"},
                                   headers={"Authorization": f"Bearer {room.owner.token}"})
                if r.status_code == 201:
                    acked[room.topic] = acked.get(room.topic, 0) + 1
                else:
                    failed.append(f"{r.status_code} {r.text[:100]}")
            except httpx.HTTPError as exc:
                failed.append(repr(exc))
            sent += 1


async def storm_phase(args: argparse.Namespace, env: dict[str, str], db_url: str, people: list[Any],
                      rooms: list[Room]) -> tuple[dict[str, Any], dict[str, Any]]:
    a, b = ServerProcess(env).start(), ServerProcess(env).start()
    assert a.proc is not None
    clients = StormClients({"conns": [{"token": p.token, "topic": p.topic} for p in people],
                            "urls": [a.ws_url, b.ws_url], "parallel": args.parallel})
    stop, acked, failed = asyncio.Event(), dict[str, int](), list[str]()
    try:
        await asyncio.sleep(1)
        before, cpu0 = rss_kib(a.proc.pid), cpu_seconds(a.proc.pid)
        sampler = Sampler(args.py_spy, a.proc.pid, args.profile_dir / "connect-a.txt")
        ready = await clients.connect()
        cpu = cpu_seconds(a.proc.pid) - cpu0
        sampler.stop()
        await settle()
        connect = connect_figures(ready, before, rss_kib(a.proc.pid), cpu)
        print("conversme connect:", json.dumps(connect), flush=True)
        sending = asyncio.create_task(publisher(b.url, rooms, args.rate, stop, acked, failed))
        await asyncio.sleep(2)  # lines flow to the clients on A before it dies
        assert b.proc is not None
        sampler = Sampler(args.py_spy, b.proc.pid, args.profile_dir / "storm-b.txt")
        assert clients.proc is not None
        b_cpu0, client_cpu0 = cpu_seconds(b.proc.pid), cpu_seconds(clients.proc.pid)
        killed_at = time.time() * 1000
        a.proc.send_signal(signal.SIGKILL)
        resumed = await clients.wait_resumed(timeout=args.timeout)
        b_cpu = cpu_seconds(b.proc.pid) - b_cpu0
        client_cpu = cpu_seconds(clients.proc.pid) - client_cpu0
        sampler.stop()
        await asyncio.sleep(2)  # lines keep flowing to the resumed clients on B
        stop.set()
        await sending
        db = await asyncpg.connect(db_url)
        try:
            heads = {r["topic"]: r["head"] for r in await db.fetch(
                "SELECT topic, head FROM topic_heads WHERE topic = ANY($1::text[])", [r.topic for r in rooms])}
            rows = {r["topic"]: r["n"] for r in await db.fetch(
                "SELECT topic, count(*) AS n FROM topic_log WHERE topic = ANY($1::text[]) GROUP BY topic",
                [r.topic for r in rooms])}
        finally:
            await db.close()
        # Every line is committed by now (the sender has its answers): wait for each client to see its room's
        # head; what is still short after a generous wait was not delivered.
        still_behind = await clients.wait_heads(heads, 60)
        done = await clients.stop()
        behind = sum(max(0, heads.get(c["topic"], 0) - c["last"]) for c in done["conns"])
        storm = {
            "clients": len(people), "rooms": len(rooms),
            "all_resumed_s": round((resumed["lastResumedAt"] - killed_at) / 1000, 2),
            "p50_resumed_s": round((resumed["resumedP50At"] - killed_at) / 1000, 2),
            "p99_resumed_s": round((resumed["resumedP99At"] - killed_at) / 1000, 2),
            "reconnect_attempts": resumed["reconnectAttempts"],
            "b_server_cpu_s_until_all_resumed": round(b_cpu, 2),
            "client_cpu_s_until_all_resumed": round(client_cpu, 2),
            "lines_acknowledged": sum(acked.values()), "lines_failed": len(failed),
            "committed_rows": sum(rows.values()),
            "acknowledged_not_committed": sum(max(0, n - rows.get(t, 0)) for t, n in acked.items()),
            "missed_offsets": done["gaps"] + behind, "gaps": done["gaps"], "behind": behind,
            "clients_behind": len(still_behind), "duplicates": done["duplicates"],
            "not_recovered": done["notRecovered"], "never_resumed": sum(1 for c in done["conns"] if not c["resumes"]),
        }
        if failed:
            storm["first_failures"] = failed[:3]
        if still_behind:
            storm["first_behind"] = still_behind[:5]
        return connect, storm
    finally:
        stop.set()
        clients.kill()
        a.stop()
        b.stop()


async def main(args: argparse.Namespace) -> dict[str, Any]:
    ensure_loadgen()
    baselines = [b for b in args.baselines.split(",") if b]
    if "lean" not in baselines or set(baselines) - set(BASELINES):
        raise SystemExit(f"--baselines: 'lean' and any of {', '.join(BASELINES)}")
    work = Path(tempfile.mkdtemp(prefix="ws_storm_"))
    try:
        async with scratch_database(PG_ADMIN) as db_url:
            env = server_env(db_url, REDIS_URL, work, DB_POOL_SIZE=str(args.pool_size))
            migrate(env)
            people, rooms = await seed(db_url, SECRET, args.clients, args.room_size)
            # The baselines before and after ours: on a shared machine the load moves within minutes.
            topics = [p.topic for p in people]
            results: dict[str, Any] = {}
            for b in baselines:
                results[f"{b}_before"] = await lean_phase(args, work, topics, b)
                print(f"{b} connect:", json.dumps(results[f"{b}_before"]), flush=True)
            results["connect"], results["storm"] = await storm_phase(args, env, db_url, people, rooms)
            print("storm:", json.dumps(results["storm"]), flush=True)
            for b in reversed(baselines):
                results[f"{b}_after"] = await lean_phase(args, work, topics, b)
                print(f"{b} connect:", json.dumps(results[f"{b}_after"]), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(args, results)
    return results


def report(args: argparse.Namespace, r: dict[str, Any]) -> None:
    ours, storm = r["connect"], r["storm"]
    runs = (r["lean_before"], r["lean_after"])
    lean = {k: sum(x[k] for x in runs) / 2 for k in ("per_second", "p50_ms", "p99_ms", "failed",
                                                      "kib_per_connection", "server_cpu_ms_per_connection")}
    print(f"\n## Connection storm — {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores, "
          f"{args.clients} clients in rooms of {args.room_size}, {args.parallel} connecting at a time\n")
    print("| | connections/s | p50 ms | p99 ms | failed | server CPU ms per connection | RSS per idle connection |\n"
          "|---|--:|--:|--:|--:|--:|--:|")
    print(f"| conversme: connect + auth + join (instance A) | {ours['per_second']} | {ours['p50_ms']} | "
          f"{ours['p99_ms']} | {ours['failed']} | {ours['server_cpu_ms_per_connection']} | "
          f"{ours['kib_per_connection']} KiB |")
    for name in (k.rsplit("_", 1)[0] for k in r if k.endswith("_before")):
        for label in ("before", "after"):
            x = r[f"{name}_{label}"]
            print(f"| {name} baseline ({label}): connect + join by query | {x['per_second']} | {x['p50_ms']} | "
                  f"{x['p99_ms']} | {x['failed']} | {x['server_cpu_ms_per_connection']} | "
                  f"{x['kib_per_connection']} KiB |")
    print(f"| conversme / lean (mean of both) | {ours['per_second'] / lean['per_second']:.2f}x | "
          f"{ours['p50_ms'] / lean['p50_ms']:.2f}x | {ours['p99_ms'] / lean['p99_ms']:.2f}x | | "
          f"{ours['server_cpu_ms_per_connection'] / lean['server_cpu_ms_per_connection']:.2f}x | "
          f"{ours['kib_per_connection'] / lean['kib_per_connection']:.2f}x |\n")
    print("| reconnect storm (A killed) | value |\n|---|--:|")
    for key, value in storm.items():
        print(f"| {key.replace('_', ' ')} | {value} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=5000)
    parser.add_argument("--room-size", type=int, default=50)
    parser.add_argument("--parallel", type=int, default=100)
    parser.add_argument("--rate", type=float, default=50, help="chat lines/s sent through B during the storm")
    parser.add_argument("--pool-size", type=int, default=Settings().db_pool_size,
                        help="DB_POOL_SIZE of the servers (the server's default)")
    parser.add_argument("--timeout", type=float, default=300, help="give up waiting for the resumes after this")
    parser.add_argument("--baselines", default="lean",
                        help=f"baseline servers run before and after ours, comma-separated ({', '.join(BASELINES)}); "
                             "the ratios are against lean")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--py-spy", help="a py-spy binary: sample A while clients connect, B during the storm")
    parser.add_argument("--profile-dir", type=Path, default=Path("."), help="where --py-spy writes its stacks")
    ns = parser.parse_args()
    out = asyncio.run(main(ns))
    if ns.json:
        Path(ns.json).write_text(json.dumps(out, indent=2))
