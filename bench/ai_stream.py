"""Live AI streaming benchmark: how much latency the server adds to each streamed token.

Setup (all on this machine): the fake OpenAI-compatible upstream (tests/fakes/openai_server.py) in its own
process, streaming at a fixed token rate; two `conversme serve` instances sharing PostgreSQL and Redis;
N members of one live session, half connected to each instance. Each prompt streams T tokens; the upstream
records when it sent each chunk, every member records when each `ai.delta` arrived (same wall clock), and
the difference is the latency the server path adds: the openai client's parsing, the hub's Redis publish,
the pub/sub hop to both instances, the fan-out, and the WebSocket write (plus the reading client's own
scheduling: this one process reads all the members' sockets, one after the other, with its cyclic GC off
so that its own pauses are not counted as the server's).

    .venv/bin/python -m bench.ai_stream [--members 50] [--streams 6] [--tokens 100] [--rate 50]

Needs PostgreSQL (TEST_PG_ADMIN_URL, default postgresql://postgres@127.0.0.1:5432/postgres) and Redis
(TEST_REDIS_URL). Bounded: it stops after --streams prompts, and everything it started is stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx
import orjson
from websockets.asyncio.client import connect

from tests.realtime.harness import ServerProcess, event_with, free_port, migrate, person, server_env

PG_ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/14")


class Member:
    """A bare WebSocket member: records the arrival time of every ai.delta, doing as little as possible."""

    def __init__(self, url: str, token: str, topic: str) -> None:
        self.url, self.token, self.topic = url, token, topic
        self.arrivals: list[tuple[str, int, float]] = []  # (streamId, index, wall time)
        self.ended: dict[str, asyncio.Event] = {}
        self._task: asyncio.Task[None] | None = None
        self.joined = asyncio.Event()

    async def run(self) -> None:
        async with connect(self.url, max_size=2**24, ping_interval=None) as ws:
            await ws.send(orjson.dumps({"op": "auth", "ref": "1", "token": self.token}).decode())
            await ws.recv()
            await ws.send(orjson.dumps({"op": "join", "ref": "2", "topic": self.topic}).decode())
            async for raw in ws:
                now = time.time()
                text = raw if isinstance(raw, str) else raw.decode()
                if '"event":"ai.delta"' in text[:200]:
                    frame = orjson.loads(text)
                    self.arrivals.append((frame["data"]["streamId"], frame["data"]["index"], now))
                elif '"ref":"2"' in text:
                    self.joined.set()
                elif '"event":"ai.' in text[:200] and '"ai.started"' not in text[:200]:
                    stream = orjson.loads(text)["data"]["streamId"]
                    self.ended.setdefault(stream, asyncio.Event()).set()

    def start(self) -> None:
        self._task = asyncio.create_task(self.run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def start_upstream(port: int, rate: float) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "tests.fakes.openai_server", "--port", str(port), "--rate",
                             str(rate)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    db = f"conversme_bench_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(PG_ADMIN_URL)
    await conn.execute(f'CREATE DATABASE "{db}"')
    await conn.close()
    upstream_port = free_port()
    upstream = start_upstream(upstream_port, args.rate)
    servers: list[ServerProcess] = []
    members: list[Member] = []
    try:
        data = Path(tempfile.mkdtemp(prefix="ai-bench-"))
        env = server_env(PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{db}", REDIS_URL, data,
                         OPENAI_API_KEY="bench", OPENAI_BASE_URL=f"http://127.0.0.1:{upstream_port}/v1",
                         OPENAI_MODEL="fake", AI_TOKENS_PER_MINUTE_USER="0", AI_TOKENS_PER_MINUTE_SESSION="0",
                         LOG_LEVEL="warning")
        migrate(env)
        servers = [ServerProcess(env).start(), ServerProcess(env).start()]
        async with httpx.AsyncClient(base_url=servers[0].url, timeout=60) as api:
            owner = await person(api, "owner")
            people = [await person(api, f"m{i}") for i in range(args.members - 1)]
            event = await event_with(api, owner, *people, template=True)
            r = await api.post("/live/contexts", headers=owner.headers, json={"eventId": event["id"]})
            context = r.json()["id"]
        topic = f"live:{context}"
        for i, who in enumerate([owner, *people]):
            members.append(Member(servers[i % 2].ws_url, who.token, topic))
        for m in members:
            m.start()
        await asyncio.wait_for(asyncio.gather(*(m.joined.wait() for m in members)), 30)
        # This process hosts all the members: its own GC pauses would show up as server latency. Measure
        # with the cyclic GC off here (the servers run as they do in production).
        gc.collect()
        gc.freeze()
        gc.disable()
        tags: dict[str, str] = {}
        started = time.time()
        # The prompter must join to push; it reads only its replies (the stream is measured at the members).
        async with connect(servers[0].ws_url, ping_interval=None, close_timeout=1) as prompter:
            await prompter.send(orjson.dumps({"op": "auth", "ref": "a", "token": owner.token}).decode())
            await prompter.recv()
            await prompter.send(orjson.dumps({"op": "join", "ref": "j", "topic": topic}).decode())
            while '"ref":"j"' not in await prompter.recv():
                pass
            for n in range(args.streams):
                tag = f"[id:{uuid.uuid4().hex[:10]}]"
                await prompter.send(orjson.dumps({"op": "push", "ref": f"p{n}", "topic": topic, "event": "ai.prompt",
                                                  "data": {"text": f"bench {tag} [n:{args.tokens}]"}}).decode())
                while True:
                    reply = orjson.loads(await prompter.recv())
                    if reply.get("ref") == f"p{n}":
                        break
                assert reply["ok"], reply
                stream = reply["data"]["streamId"]
                tags[stream] = tag
                await asyncio.wait_for(asyncio.gather(*(m.ended.setdefault(stream, asyncio.Event()).wait()
                                                        for m in members)), 60)
                if args.verbose:
                    print(f"stream {n}: ended for every member {time.time() - started:.2f} s after the start")
            elapsed = time.time() - started
        gc.enable()
        async with httpx.AsyncClient(timeout=30) as client:
            recorded = (await client.get(f"http://127.0.0.1:{upstream_port}/_control/requests")).json()
        sent: dict[str, list[float]] = {}
        for req in recorded:
            for stream, tag in tags.items():
                if any(tag in str(msg.get("content")) for msg in req["body"].get("messages", [])[-1:]):
                    sent[stream] = req["send_times"]
        samples = [(stream, index, (arrived - sent[stream][index]) * 1000) for m in members
                   for stream, index, arrived in m.arrivals if stream in sent and index < len(sent[stream])]
        latencies = [ms for _, _, ms in samples]
        if args.verbose:
            worst = sorted(samples, key=lambda s: -s[2])[:200]
            print("worst (stream, index) → ms:", sorted({(s[:6], i) for s, i, _ in worst}))
            by_instance: dict[int, list[float]] = {0: [], 1: []}
            for n, m in enumerate(members):
                by_instance[n % 2] += [(a - sent[s][i]) * 1000 for s, i, a in m.arrivals if s in sent]
            print("p99 by instance:", {k: round(percentile(v, 99), 1) for k, v in by_instance.items()})
        delivered = sum(len(m.arrivals) for m in members)
        expected = args.members * args.streams * args.tokens
        return {"members": args.members, "streams": args.streams, "tokens": args.tokens, "rate": args.rate,
                "delivered": delivered, "expected": expected, "elapsed": elapsed,
                "p50": percentile(latencies, 50), "p90": percentile(latencies, 90),
                "p99": percentile(latencies, 99), "max": max(latencies), "mean": statistics.fmean(latencies),
                "deltas_per_s": delivered / elapsed}
    finally:
        for m in members:
            await m.stop()
        for s in servers:
            s.stop()
        upstream.terminate()
        upstream.wait(10)
        conn = await asyncpg.connect(PG_ADMIN_URL)
        await conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description="latency the server adds to streamed AI tokens")
    parser.add_argument("--members", type=int, default=50)
    parser.add_argument("--streams", type=int, default=6)
    parser.add_argument("--tokens", type=int, default=100)
    parser.add_argument("--rate", type=float, default=50.0, help="upstream tokens per second")
    parser.add_argument("--verbose", action="store_true", help="print which tokens were the slowest")
    result = asyncio.run(run(parser.parse_args()))
    print(f"\nLive AI streaming: {result['members']} members on 2 instances (Redis), {result['streams']} streams of "
          f"{result['tokens']} tokens at {result['rate']:g} tokens/s from the upstream\n")
    print("| metric | value |")
    print("|---|---|")
    print(f"| deltas delivered | {result['delivered']} of {result['expected']} |")
    print(f"| deltas/s delivered (all members) | {result['deltas_per_s']:.0f} |")
    for key in ("p50", "p90", "p99", "max", "mean"):
        print(f"| added latency {key} (upstream send → member receive) | {result[key]:.2f} ms |")


if __name__ == "__main__":
    main()
