"""Where connect + authenticate + join spends its time, and what an idle joined connection holds.

Runs one conversme server inside this process (uvicorn, the same settings as `conversme serve`) on a scratch
PostgreSQL database and Redis, and opens N connections to it from the Node storm client
(bench/loadgen/storm.mjs: connect, `auth`, `join` of an event room of --room-size members, 100 at a time).

    .venv/bin/python -m bench.ws_conn_profile --mode memory  [--clients 1000]   # tracemalloc, per connection
    .venv/bin/python -m bench.ws_conn_profile --mode profile [--clients 1000]   # cProfile of the storm

memory:  a tracemalloc snapshot before and after the connections are open and idle; the difference divided
         by N, by source line and by file (what one connection holds: buffers, tasks, dicts per topic), and
         the RSS difference per connection (tracemalloc's own bookkeeping inflates RSS; read the traced
         bytes, and bench/ws_storm.py for RSS without tracing).
profile: cProfile over the whole storm, the top functions by own time and by cumulative time.
Prints numbers; it is not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import os
import pstats
import shutil
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import uvicorn  # noqa: E402

from bench.ws_people import StormClients, ensure_loadgen, scratch_database, seed  # noqa: E402
from server.app import create_app  # noqa: E402
from server.cli import WS_PROTOCOLS  # noqa: E402
from server.settings import load_settings  # noqa: E402
from tests.conftest import SECRET  # noqa: E402
from tests.realtime.harness import free_port, migrate, server_env  # noqa: E402

PG_ADMIN = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def main(args: argparse.Namespace) -> None:
    ensure_loadgen()
    work = Path(tempfile.mkdtemp(prefix="ws_conn_profile_"))
    try:
        async with scratch_database(PG_ADMIN) as db_url:
            env = server_env(db_url, REDIS_URL, work)
            migrate(env)
            people, _rooms = await seed(db_url, SECRET, args.clients, args.room_size)
            os.environ.update(env)
            port = free_port()
            settings = load_settings()
            # As `conversme serve` runs it (server/cli.py), or with --ws one of uvicorn's protocols.
            config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning",
                                    ws=WS_PROTOCOLS[args.ws], ws_per_message_deflate=False, lifespan="on",
                                    proxy_headers=False, server_header=False, ws_max_size=64 * 1024,
                                    ws_ping_interval=settings.ws_heartbeat,
                                    ws_ping_timeout=settings.ws_heartbeat_timeout)
            server = uvicorn.Server(config)
            serving = asyncio.create_task(server.serve())
            while not server.started:  # noqa: ASYNC110 - a benchmark waiting for its own server
                await asyncio.sleep(0.05)
            url = f"ws://127.0.0.1:{port}/ws"
            clients = StormClients({"conns": [{"token": p.token, "topic": p.topic} for p in people],
                                    "urls": [url, url], "parallel": args.parallel})
            try:
                if args.mode == "memory":
                    await memory(args, clients)
                else:
                    await profile(args, clients)
            finally:
                clients.kill()
                server.should_exit = True
                await serving
    finally:
        shutil.rmtree(work, ignore_errors=True)


async def memory(args: argparse.Namespace, clients: StormClients) -> None:
    gc.collect()
    tracemalloc.start(args.frames)
    rss0 = rss_kib()
    before = tracemalloc.take_snapshot()
    ready = await clients.connect()
    await asyncio.sleep(3)  # idle: heartbeats and presence upkeep have run their first rounds
    gc.collect()
    after = tracemalloc.take_snapshot()
    rss1 = rss_kib()
    n = ready["ready"]
    await clients.stop()
    filters = [tracemalloc.Filter(False, tracemalloc.__file__)]
    before, after = before.filter_traces(filters), after.filter_traces(filters)
    total = sum(s.size_diff for s in after.compare_to(before, "filename"))
    print(f"\n{n} idle connections (authenticated, joined an event room of {args.room_size}); "
          f"traced Python memory {total / n / 1024:.1f} KiB per connection; "
          f"RSS {(rss1 - rss0) / n:.1f} KiB per connection (with tracemalloc's overhead)\n")
    print("| bytes per connection | objects per connection | where (file) |\n|--:|--:|---|")
    for stat in after.compare_to(before, "filename")[:args.top]:
        print(f"| {stat.size_diff / n:,.0f} | {stat.count_diff / n:.1f} | {short(stat.traceback[0].filename)} |")
    print("\n| bytes per connection | objects per connection | where (line) |\n|--:|--:|---|")
    for stat in after.compare_to(before, "lineno")[:args.top]:
        frame = stat.traceback[0]
        print(f"| {stat.size_diff / n:,.0f} | {stat.count_diff / n:.1f} | {short(frame.filename)}:{frame.lineno} |")
    if args.frames > 1:
        print("\nThe largest allocations with the project's frames that led to them:")
        for stat in after.compare_to(before, "traceback")[:args.top // 2]:
            ours = [f"{short(f.filename)}:{f.lineno}" for f in stat.traceback if "site-packages" not in f.filename]
            print(f"- {stat.size_diff / n:,.0f} B/conn at {short(stat.traceback[0].filename)}:"
                  f"{stat.traceback[0].lineno} <- {' <- '.join(ours[:4]) or '(library only)'}")


async def profile(args: argparse.Namespace, clients: StormClients) -> None:
    prof = cProfile.Profile()
    started = time.perf_counter()
    prof.enable()
    ready = await clients.connect()
    prof.disable()
    elapsed = time.perf_counter() - started
    await clients.stop()
    print(f"\n{ready['ready']} connections (connect + auth + join, {args.parallel} at a time) in {elapsed:.1f} s: "
          f"{ready['perSecond']:.0f}/s, p50 {ready['p50']:.0f} ms, p99 {ready['p99']:.0f} ms "
          f"(under cProfile, which slows Python down: compare profiles, not these timings)\n")
    for key in ("tottime", "cumulative"):
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats(key).print_stats(args.top)
        print(f"### by {key}\n")
        print("\n".join(line for line in out.getvalue().splitlines() if line.strip())[:20000])
    if args.save:
        prof.dump_stats(args.save)
        print(f"\nsaved to {args.save} (python -m pstats {args.save})")


def short(path: str) -> str:
    for marker in ("site-packages/", str(ROOT) + "/", "/lib/python3"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=["memory", "profile"], default="memory")
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--ws", choices=sorted(WS_PROTOCOLS), default="lean",
                        help="as `conversme serve --ws`")
    parser.add_argument("--room-size", type=int, default=50)
    parser.add_argument("--parallel", type=int, default=100)
    parser.add_argument("--frames", type=int, default=1, help="memory: traceback depth (more is slower)")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--save", help="profile: also write the pstats file here")
    asyncio.run(main(parser.parse_args()))
