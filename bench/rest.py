"""REST benchmark: a real `conversme serve` process on a fresh PostgreSQL database, measured over HTTP/1.1.

    .venv/bin/python bench/rest.py [--requests N] [--concurrency C] [--events E] [--repeats R] [--seconds S]

Creates a database, migrates it, seeds E events for a benchmark user (bench/seed_data.py), starts the server
with production argon2 settings, then measures GET /health (the baseline), GET /events/{id}, GET
/calendar/events (one month), PUT /processes/steps/{id} (toggle completed), POST /auth/token, and GET /health
while logins run. Each measurement is closed-loop: C users send requests back to back, each on its own
keep-alive connection, until N requests are done or S seconds have passed; then the same at one user for the
unloaded latency. Every measurement runs R times; the run with the median throughput is reported. Before each
run of an operation, GET /health runs again (at least BESIDE_REQUESTS requests), and the operation's ratio to
/health is the median of those pairs: the machine's speed moves within minutes. The load
generator shares the machine with the server, so the server's own CPU time (/proc/<pid>/stat) is reported
too: requests per server CPU-second do not depend on the client's cost or on other load on the machine.
Everything it made (database, server, temp dir, Redis keys) is removed at the end, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlencode

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg  # type: ignore[import-untyped]
import httpx

from adapters.security import Passwords
from bench.rest_load import (
    Client,
    ClientFactory,
    DbCpu,
    HttpxClient,
    Op,
    RawClient,
    Sample,
    machine_busy,
    measure,
)
from bench.seed_data import Seeded, SeedPlan, seed
from persistence.database import create_engine
from server.settings import Settings, normalize_database_url

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent / "conversme"
PG_ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
SERIAL_SECONDS = 3.0
SERIAL_REQUESTS = 200
# `GET /health` measured right before each operation, for that operation's ratio: the machine's speed moves by up
# to 2x within minutes (the same build's /health cost 0.075 and 0.14 ms in one run), so a ratio of two
# measurements taken minutes apart says more about the machine than about the code. At least this many requests:
# 2,000 of them take 0.17 s, 17 ticks of /proc's CPU clock.
BESIDE_REQUESTS = 10_000
WARMUP_SECONDS = 1.0
PASSWORD = "correct horse battery staple"
QUIET_SHARE = 0.25       # "quiet": the rest of the machine uses less than a quarter of all cores
SETTLE_STEP = 0.5


class Settler:
    """Before each measurement, wait (bounded) for other work on the shared machine to calm down."""

    def __init__(self, per_measurement: float, budget: float) -> None:
        self.per_measurement = per_measurement
        self.budget = budget
        self.waited = 0.0
        self.cores = os.cpu_count() or 1

    async def __call__(self) -> None:
        began = time.perf_counter()
        while min(self.per_measurement, self.budget - self.waited) > time.perf_counter() - began:
            m0 = machine_busy()
            await asyncio.sleep(SETTLE_STEP)
            if (machine_busy() - m0) / (SETTLE_STEP * self.cores) < QUIET_SHARE:
                break
        self.waited += time.perf_counter() - began


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- the system under test -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Stack:
    """Everything the benchmark creates, so that cleanup can remove exactly that."""

    dbname: str = field(default_factory=lambda: f"conversme_bench_{secrets.token_hex(5)}")
    tmp: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="conversme-bench-")))
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    db_created: bool = False
    redis_keys: list[str] = field(default_factory=list)

    @property
    def database_url(self) -> str:
        return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{self.dbname}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        defaults = Settings()  # the production argon2 parameters: login cost is part of what is measured
        keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")}
        return {
            **keep, "DATABASE_URL": self.database_url, "REDIS_URL": REDIS_URL,
            "SECRET_KEY": secrets.token_urlsafe(48), "DEBUG": "false", "LOG_LEVEL": "warning",
            "DATA_DIR": str(self.tmp / "data"), "API_WORKERS": "1",
            "ARGON2_TIME_COST": str(defaults.argon2_time_cost),
            "ARGON2_MEMORY_COST": str(defaults.argon2_memory_cost),
            "ARGON2_PARALLELISM": str(defaults.argon2_parallelism),
            # The limiter would (rightly) stop a login flood; the benchmark measures the login itself.
            "LOGIN_RATE_PER_IP": "1000000000", "LOGIN_RATE_PER_ACCOUNT": "1000000000",
        }

    async def create_database(self) -> None:
        conn = await asyncpg.connect(PG_ADMIN_URL)
        try:
            await conn.execute(f'CREATE DATABASE "{self.dbname}"')
            self.db_created = True
        finally:
            await conn.close()

    def migrate(self) -> None:
        # cwd is the temp dir: a developer's ./.env must not change what is measured.
        r = subprocess.run([str(BIN), "migrate"], env=self.env(), cwd=self.tmp, capture_output=True, text=True,
                           timeout=300)
        if r.returncode != 0:
            raise RuntimeError(f"conversme migrate failed:\n{r.stderr[-3000:]}")

    def start(self, timeout: float = 60.0) -> None:
        logfile = (self.tmp / "server.log").open("ab")
        self.proc = subprocess.Popen([str(BIN), "serve", "--port", str(self.port)], env=self.env(), cwd=self.tmp,
                                     stdout=logfile, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited:\n{self.server_log()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server did not start:\n{self.server_log()}")
            time.sleep(0.1)

    def server_log(self) -> str:
        path = self.tmp / "server.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def cleanup(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.db_created:
            async def drop() -> None:
                conn = await asyncpg.connect(PG_ADMIN_URL)
                try:
                    await conn.execute(f'DROP DATABASE IF EXISTS "{self.dbname}" WITH (FORCE)')
                finally:
                    await conn.close()
            try:
                asyncio.run(drop())
                self.db_created = False
            except Exception as exc:
                log(f"could not drop database {self.dbname}: {exc!r}")
        if self.redis_keys:
            try:
                from redis import Redis

                client = Redis.from_url(REDIS_URL)
                for i in range(0, len(self.redis_keys), 500):
                    client.delete(*self.redis_keys[i:i + 500])
                client.close()
            except Exception as exc:
                log(f"could not delete the benchmark's Redis keys: {exc!r}")
        shutil.rmtree(self.tmp, ignore_errors=True)


# --- operations ----------------------------------------------------------------------------------------------


def operations(data: Seeded, token: str, month: tuple[str, str], step_pool: int) -> dict[str, Op]:
    auth = {"Authorization": f"Bearer {token}"}
    events = list(data.visible_event_ids)
    steps = data.step_ids[:step_pool]
    state = dict.fromkeys(steps, False)  # the seeded steps are open
    calendar_path = "/calendar/events?" + urlencode({"start_date": month[0], "end_date": month[1]})
    compact_path = calendar_path + "&view=compact"

    async def health(c: Client, i: int) -> tuple[int, bytes]:
        return await c.send("GET", "/health")

    async def event(c: Client, i: int) -> tuple[int, bytes]:
        return await c.send("GET", f"/events/{events[(i * 7919) % len(events)]}", headers=auth)

    async def calendar(c: Client, i: int) -> tuple[int, bytes]:
        return await c.send("GET", calendar_path, headers=auth)

    async def compact(c: Client, i: int) -> tuple[int, bytes]:
        return await c.send("GET", compact_path, headers=auth)

    async def step(c: Client, i: int) -> tuple[int, bytes]:
        sid = steps[i % len(steps)]  # the pool is far larger than the concurrency: no two requests share a row
        state[sid] = not state[sid]
        return await c.send("PUT", f"/processes/steps/{sid}", json={"completed": state[sid]}, headers=auth)

    async def login(c: Client, i: int) -> tuple[int, bytes]:
        return await c.send("POST", "/auth/token", form={"username": data.email, "password": data.password})

    return {
        "health": Op("health", "GET /health (baseline)", health),
        "event": Op("event", "GET /events/{id}", event),
        "calendar": Op("calendar", f"GET /calendar/events (one month, {month[0][:7]})", calendar),
        "compact": Op("compact", f"GET /calendar/events?view=compact (one month, {month[0][:7]})", compact),
        "step": Op("step", "PUT /processes/steps/{id} (toggle)", step),
        "login": Op("login", "POST /auth/token (argon2id)", login),
    }


# --- reporting -----------------------------------------------------------------------------------------------


def median_run(samples: list[Sample], key: Callable[[Sample], float]) -> Sample:
    ordered = sorted(samples, key=key)
    return ordered[(len(ordered) - 1) // 2]


def fmt(value: float, digits: int = 1) -> str:
    return "n/a" if math.isnan(value) else f"{value:,.{digits}f}"


def cpu_per_request(s: Sample) -> float:
    return s.server_cpu / s.requests if s.requests else math.nan


def paired_ratios(runs: list[Sample], beside: list[Sample]) -> list[float]:
    """Each run's server CPU per request against that of the `GET /health` run just before it."""
    return [cpu_per_request(s) / cpu_per_request(h) for s, h in zip(runs, beside, strict=True)
            if cpu_per_request(h) > 0]


def loaded_table(labels: dict[str, str], runs: dict[str, list[Sample]], beside: dict[str, list[Sample]],
                 cores: int) -> str:
    base = median_run(runs["health"], lambda s: s.rps)
    base_cpu = cpu_per_request(base)
    lines = [
        "| operation | requests | req/s | p50 ms | p90 ms | p99 ms | errors | KiB/resp | server CPU ms/req "
        "| req per server CPU-s | server CPU vs /health | vs /health just before, median (each run) | DB CPU ms/req "
        "| client CPU ms/req | other load | all runs' req/s |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    for key, samples in runs.items():
        paired = paired_ratios(samples, beside[key]) if key in beside else []
        paired_cell = (f"{fmt(statistics.median(paired), 1)}x ({' / '.join(fmt(x, 1) for x in paired)})"
                       if paired else "")
        s = median_run(samples, lambda x: x.rps)
        n = max(1, s.requests)
        per_req = s.server_cpu / n
        lines.append(
            f"| {labels[key]} | {s.requests} | {fmt(s.rps)} | {fmt(s.pct(50))} | {fmt(s.pct(90))} | {fmt(s.pct(99))} "
            f"| {s.errors} | {fmt(s.bytes / 1024 / n, 1)} | {fmt(per_req * 1000, 2)} "
            f"| {fmt(1 / per_req if per_req > 0 else math.nan, 0)} | {fmt(per_req / base_cpu, 0)}x | {paired_cell} "
            f"| {fmt(s.db_cpu * 1000 / n, 2)} | {fmt(s.client_cpu * 1000 / n, 2)} "
            f"| {fmt(100 * s.other_cpu / (s.span * cores), 0)}% | {' / '.join(fmt(x.rps, 1) for x in samples)} |"
        )
    return "\n".join(lines)


def during_table(samples: list[Sample], concurrency: int) -> str:
    s = median_run(samples, lambda x: x.pct(50))
    return ("| probe | requests | p50 ms | p90 ms | p99 ms | max ms | errors | all runs' p50 ms |\n"
            "|---|--:|--:|--:|--:|--:|--:|---|\n"
            f"| GET /health, 1 user, while {concurrency} users log in | {s.requests} | {fmt(s.pct(50))} "
            f"| {fmt(s.pct(90))} | {fmt(s.pct(99))} | {fmt(s.pct(100))} | {s.errors} "
            f"| {' / '.join(fmt(x.pct(50), 1) for x in samples)} |")


def serial_table(labels: dict[str, str], runs: dict[str, list[Sample]]) -> str:
    lines = ["| operation | requests | p50 ms | p90 ms | p99 ms | errors | server CPU ms/req | all runs' p50 ms |",
             "|---|--:|--:|--:|--:|--:|--:|---|"]
    for key, samples in runs.items():
        s = median_run(samples, lambda x: x.pct(50))
        lines.append(f"| {labels[key]} | {s.requests} | {fmt(s.pct(50))} | {fmt(s.pct(90))} | {fmt(s.pct(99))} "
                     f"| {s.errors} | {fmt(s.server_cpu * 1000 / max(1, s.requests), 2)} "
                     f"| {' / '.join(fmt(x.pct(50), 1) for x in samples)} |")
    return "\n".join(lines)


def describe_environment() -> dict[str, str]:
    async def pg() -> str:
        conn = await asyncpg.connect(PG_ADMIN_URL)
        try:
            return str(await conn.fetchval("SHOW server_version"))
        finally:
            await conn.close()

    try:
        rev = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True,
                             text=True, timeout=10).stdout.strip()
    except OSError:
        rev = "unknown"
    return {"postgres": asyncio.run(pg()), "revision": rev or "unknown"}


# --- the run ---------------------------------------------------------------------------------------------------


@dataclass
class Results:
    labels: dict[str, str]
    loaded: dict[str, list[Sample]]
    beside: dict[str, list[Sample]]  # `GET /health` measured right before each run of each operation
    during: list[Sample]
    serial: dict[str, list[Sample]]
    data: Seeded
    month: tuple[str, str]
    steps: int
    server_tracebacks: int
    settled: float


async def benchmark(stack: Stack, args: argparse.Namespace) -> Results:
    await stack.create_database()
    log(f"database {stack.dbname} created; migrating")
    await asyncio.to_thread(stack.migrate)
    defaults = Settings()
    password_hash = await Passwords(defaults.argon2_time_cost, defaults.argon2_memory_cost,
                                    defaults.argon2_parallelism).hash(PASSWORD)
    plan = SeedPlan(events=args.events, other_events=args.other_events)
    engine = create_engine(normalize_database_url(stack.database_url))
    try:
        data = await seed(engine, plan, PASSWORD, password_hash)
    finally:
        await engine.dispose()
    log(f"seeded in {data.seconds:.1f}s: " + ", ".join(f"{k} {v}" for k, v in data.rows.items()))
    month = (plan.month[0].isoformat(), plan.month[1].isoformat())
    steps = min(len(data.step_ids), max(args.concurrency * 32, 512))
    # What the server leaves in the shared Redis: the hub's keys of the toggled steps' event rooms, and the
    # login limiter's counters. Removed at the end.
    rooms = {data.step_event[s] for s in data.step_ids[:steps]}
    stack.redis_keys = [f"cm:{k}:event:{e}" for e in rooms for k in ("o", "e", "s")] + [
        f"conversme:rl:login:acct:{data.email}", "conversme:rl:login:ip:127.0.0.1"]
    await asyncio.to_thread(stack.start)
    log(f"server pid {stack.pid} on {stack.url}; client {args.client}")

    shared = httpx.AsyncClient(base_url=stack.url, timeout=120, limits=httpx.Limits(
        max_connections=2 * args.concurrency + 1, max_keepalive_connections=2 * args.concurrency + 1))
    factory: ClientFactory = (lambda: HttpxClient(shared)) if args.client == "httpx" else (
        lambda: RawClient("127.0.0.1", stack.port))
    admin = await asyncpg.connect(PG_ADMIN_URL)
    db = DbCpu(admin, stack.dbname)
    settle = Settler(args.settle, args.settle_budget)
    loaded: dict[str, list[Sample]] = {}
    beside: dict[str, list[Sample]] = {}
    serial: dict[str, list[Sample]] = {}
    during: list[Sample] = []
    labels: dict[str, str] = {}
    try:
        for rep in range(1, args.repeats + 1):
            client = factory()
            code, body = await client.send("POST", "/auth/token", form={"username": data.email,
                                                                        "password": PASSWORD})
            await client.close()
            if code != 200:
                raise RuntimeError(f"benchmark login failed: {code} {body[:300]!r}")
            ops = operations(data, json.loads(body)["accessToken"], month, steps)
            if args.ops:
                ops = {k: o for k, o in ops.items() if k in args.ops or k in ("health", "login")}
            labels = {k: o.label for k, o in ops.items()}
            for key, op in ops.items():
                if key not in ("health", "login"):
                    await settle()
                    h = await measure(factory, stack.pid, db, ops["health"], max(args.requests, BESIDE_REQUESTS),
                                      args.concurrency, args.seconds, WARMUP_SECONDS)
                    beside.setdefault(key, []).append(h)
                await settle()
                s = await measure(factory, stack.pid, db, op, args.requests, args.concurrency, args.seconds,
                                  WARMUP_SECONDS)
                loaded.setdefault(key, []).append(s)
                log(f"run {rep}/{args.repeats} {op.label:42s} c={args.concurrency}: {s.requests} req, "
                    f"{s.rps:.1f} req/s, p50 {s.pct(50):.1f} ms, p99 {s.pct(99):.1f} ms, server CPU "
                    f"{s.server_cpu * 1000 / max(1, s.requests):.2f} ms/req, errors {s.errors} {s.statuses}")
            await settle()
            s = await measure(factory, stack.pid, db, ops["health"], args.requests, 1, args.seconds, WARMUP_SECONDS,
                              background=(ops["login"], args.concurrency))
            during.append(s)
            log(f"run {rep}/{args.repeats} GET /health during logins: {s.requests} req, p50 {s.pct(50):.1f} ms, "
                f"p99 {s.pct(99):.1f} ms, max {s.pct(100):.1f} ms")
            for key, op in ops.items():
                await settle()
                s = await measure(factory, stack.pid, db, op, min(args.requests, SERIAL_REQUESTS), 1,
                                  SERIAL_SECONDS, WARMUP_SECONDS / 2)
                serial.setdefault(key, []).append(s)
                log(f"run {rep}/{args.repeats} {op.label:42s} c=1: {s.requests} req, p50 {s.pct(50):.1f} ms")
    finally:
        await admin.close()
        await shared.aclose()
    return Results(labels, loaded, beside, during, serial, data, month, steps, stack.server_log().count("Traceback"),
                   settle.waited)


def report(args: argparse.Namespace, argv: list[str], started: datetime, r: Results) -> None:
    cores = os.cpu_count() or 1
    env = describe_environment()
    d = Settings()
    print(f"## REST benchmark, {started:%Y-%m-%d %H:%M} UTC\n")
    print(f"- command: `.venv/bin/python bench/rest.py {' '.join(argv)}`")
    print(f"- code: `{env['revision']}`; machine: {cores} cores (nproc), Python {platform.python_version()}, "
          f"PostgreSQL {env['postgres']}, Redis {REDIS_URL}; one server process (`conversme serve`: uvicorn, "
          "1 worker, uvloop + httptools)")
    print(f"- argon2id: time_cost {d.argon2_time_cost}, memory_cost {d.argon2_memory_cost} KiB, parallelism "
          f"{d.argon2_parallelism} (the production defaults)")
    print(f"- data: {len(r.data.visible_event_ids)} events visible to the benchmark user over 3 months, "
          f"+{len(r.data.hidden_event_ids)} other users' events in the same months; rows: "
          + ", ".join(f"{k} {v}" for k, v in r.data.rows.items()))
    print(f"- calendar range {r.month[0]} .. {r.month[1]}; step toggles over {r.steps} steps; event reads over "
          "all visible events")
    print(f"- load: `{args.client}` client, {args.concurrency} users (closed loop, one keep-alive connection "
          f"each); a measurement is at most {args.requests} requests or {args.seconds:g} s, after a "
          f"{WARMUP_SECONDS:g} s warm-up; {args.repeats} runs; **the run with the median req/s is shown** "
          "(the unloaded table: the median p50)")
    print(f"- before each measurement the run waited until the rest of the machine used under "
          f"{QUIET_SHARE:.0%} of its CPU, at most {args.settle:g} s each and {args.settle_budget:g} s in all: "
          f"{r.settled:.0f} s spent waiting")
    print("- server CPU = utime+stime of the server process; DB CPU = the benchmark database's PostgreSQL "
          "backends (a lower bound); other load = the rest of the machine's CPU, as a share of all "
          f"{cores} cores (other processes: noise)")
    print(f"- tracebacks in the server log: {r.server_tracebacks}\n")
    print(f"### Under load: {args.concurrency} concurrent users\n")
    print(loaded_table(r.labels, r.loaded, r.beside, cores))
    print("\n\"vs /health just before\": each run of an operation is preceded by a run of `GET /health` "
          f"(at least {BESIDE_REQUESTS:,} requests); the ratio of the two, so the machine's speed at that moment "
          "cancels out.")
    print("\n### Event-loop check: /health latency while logins run\n")
    print(during_table(r.during, args.concurrency))
    print(f"\n### Unloaded: 1 user (at most {SERIAL_REQUESTS} requests or {SERIAL_SECONDS:g} s)\n")
    print(serial_table(r.labels, r.serial))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per measurement at most (2000)")
    parser.add_argument("--concurrency", type=int, default=16, help="users in the closed loop (16)")
    parser.add_argument("--events", type=int, default=3000, help="events the benchmark user sees (3000)")
    parser.add_argument("--other-events", type=int, default=None, help="other users' events (as --events)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of every measurement; median shown (3)")
    parser.add_argument("--seconds", type=float, default=10.0, help="time cap per measurement (10)")
    parser.add_argument("--client", choices=("raw", "httpx"), default="raw",
                        help="raw: minimal asyncio HTTP/1.1 client, cheap on CPU (default); httpx: cross-check")
    parser.add_argument("--settle", type=float, default=10.0,
                        help="wait up to this long before each measurement for other load to calm down (10)")
    parser.add_argument("--settle-budget", type=float, default=90.0, help="total waiting allowed (90)")
    parser.add_argument("--ops", type=lambda v: set(v.split(",")), default=None,
                        help="measure only these (comma-separated keys: event,calendar,compact,step); /health and "
                             "logins always run")
    parser.add_argument("--json", type=Path, help="also write every run's numbers to this file")
    args = parser.parse_args(argv)
    if args.other_events is None:
        args.other_events = args.events

    def on_term(signum: int, frame: Any) -> NoReturn:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    started = datetime.now(UTC)
    stack = Stack()
    try:
        results = asyncio.run(benchmark(stack, args))
    except KeyboardInterrupt:
        log("interrupted; cleaning up")
        return 130
    finally:
        stack.cleanup()
        log("cleaned up: server stopped, database dropped, temp dir and Redis keys removed")
    report(args, sys.argv[1:] if argv is None else argv, started, results)
    if args.json:
        args.json.write_text(json.dumps({
            "started": started.isoformat(), "args": {k: str(v) for k, v in vars(args).items()},
            "loaded": {k: [s.summary() for s in v] for k, v in results.loaded.items()},
            "beside": {k: [s.summary() for s in v] for k, v in results.beside.items()},
            "during": [s.summary() for s in results.during],
            "serial": {k: [s.summary() for s in v] for k, v in results.serial.items()},
        }, indent=2, default=str))
    samples = [*results.during, *(s for v in (*results.loaded.values(), *results.beside.values()) for s in v),
               *(s for v in results.serial.values() for s in v)]
    return 1 if any(s.errors for s in samples) else 0


if __name__ == "__main__":
    try:
        import uvloop  # the load generator should cost as little CPU as it can

        uvloop.install()
    except ImportError:  # pragma: no cover
        pass
    sys.exit(main())
