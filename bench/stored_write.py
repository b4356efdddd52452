"""Stored write path benchmark: `chat.send` pushes into an event room, source tree against source tree.

    .venv/bin/python bench/stored_write.py --tree before=/tmp/bench-before --tree after=/work/main
        [--rounds 3] [--rate 50] [--seconds 20] [--sat-seconds 10] [--window 16] [--warmup 50] [--json FILE]
        [--settle 15] [--python .venv/bin/python]

For every tree (`label=path`, a source tree of conversme) and round: a fresh PostgreSQL database migrated with
that tree's own `migrate`, one API instance of that tree (`python -m server.cli serve`, this interpreter, with
PYTHONPATH and cwd set to the tree, so the tree's own code is imported: checked and printed) on PostgreSQL and
Redis (its own REDIS_PREFIX), two users, an event room, a sender and a subscriber over WebSocket
(channels.client.RealtimeClient of this repository). After a wait (bounded) for the shared machine to be
quiet, and a warm-up, it sends `chat.send` pushes

- at a steady rate (open loop: each push goes out at its scheduled time, whatever the replies do), then
- at saturation: as fast as one sender with up to --window pushes in flight gets them answered.

Measured per phase: the server process's CPU time (utime + stime, /proc/<pid>/stat) per stored chat message
(rows counted in the database), push latency (push sent -> reply received), delivery latency (push sent ->
the subscriber has the `chat.message`, matched by text), messages/s at saturation, and that every stored
message reached the subscriber (and the sender) exactly once. The PostgreSQL backends' CPU per message is a
lower bound (backends that exit mid-run are missed). The trees alternate (A, B, A, B, ...); the table shows
medians per tree and ratios to the first tree: this machine is shared and noisy, single runs are not.

Prints numbers; it is not a test. Bounded (every loop has a count or a deadline); everything it starts or
creates (servers, databases, Redis keys, temp dirs) is stopped or removed at the end, also on error or Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import hashlib
import itertools
import json
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

ROOT = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(ROOT))

import asyncpg  # type: ignore[import-untyped]  # noqa: E402
import httpx  # noqa: E402

from bench.rest_load import DbCpu, machine_busy, process_cpu  # noqa: E402
from channels.client import Closed, RealtimeClient, ReplyError  # noqa: E402

PG_ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
PACKAGES = ("server", "channels", "handlers", "persistence", "jobs", "migrations")
PASSWORD = "correct horse battery"
PAD = "x" * 100  # a chat line of ~110 characters
DELIVERY_WAIT = 30.0  # seconds after the last reply for every stored message to reach the subscriber
LATE_WAIT = 0.5  # then a little longer, so that a duplicate would be seen


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


# --- cleanup ---------------------------------------------------------------------------------------------------


@dataclass
class Leftovers:
    """Everything the benchmark created, so that cleanup removes exactly that (also after an error)."""

    tmp: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="stored-write-")))
    redis_prefix: str = field(default_factory=lambda: f"bench:{secrets.token_hex(5)}:")
    db_prefix: str = field(default_factory=lambda: f"bench_{secrets.token_hex(5)}")
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    databases: set[str] = field(default_factory=set)

    def cleanup(self) -> None:
        for proc in self.procs:
            stop_process(proc)
        for db in sorted(self.databases):
            try:
                asyncio.run(drop_database(db))
                self.databases.discard(db)
            except Exception as exc:
                log(f"could not drop database {db}: {exc!r}")
        try:
            deleted = asyncio.run(delete_redis_keys(self.redis_prefix))
            log(f"deleted {deleted} Redis keys under {self.redis_prefix}")
        except Exception as exc:
            log(f"could not delete the Redis keys under {self.redis_prefix}: {exc!r}")
        shutil.rmtree(self.tmp, ignore_errors=True)


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


async def drop_database(db: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    finally:
        await conn.close()


async def delete_redis_keys(prefix: str) -> int:
    from redis.asyncio import Redis

    client = Redis.from_url(REDIS_URL)
    deleted = 0
    try:
        batch: list[bytes] = []
        async for key in client.scan_iter(match=f"{prefix}*", count=1000):  # ends with the key space
            batch.append(key)
            if len(batch) >= 500:
                deleted += await client.delete(*batch)
                batch = []
        if batch:
            deleted += await client.delete(*batch)
    finally:
        await client.aclose()
    return deleted


# --- one tree's server -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tree:
    label: str
    path: Path

    @property
    def slug(self) -> str:
        return re.sub(r"[^a-z0-9]+", "_", self.label.lower())[:20] or "tree"


def parse_tree(value: str) -> Tree:
    label, sep, path = value.partition("=")
    if not sep or not label or not path:
        raise argparse.ArgumentTypeError(f"--tree takes LABEL=PATH, not {value!r}")
    tree = Tree(label, Path(path).resolve())
    if not (tree.path / "server" / "cli.py").is_file():
        raise argparse.ArgumentTypeError(f"{tree.path} is not a conversme source tree (no server/cli.py)")
    return tree


def describe_tree(tree: Tree) -> str:
    r = subprocess.run(["git", "-C", str(tree.path), "describe", "--always", "--dirty"], capture_output=True,
                       text=True, timeout=30)
    return r.stdout.strip() or "?"


def fingerprint(tree: Tree) -> str:
    """The tree's version (`git describe`) and a hash of its server code as it is on disk now: a tree edited
    while the benchmark runs shows up as two fingerprints."""
    digest = hashlib.sha1()
    for package in PACKAGES:
        for path in sorted((tree.path / package).rglob("*.py")):
            digest.update(str(path.relative_to(tree.path)).encode() + b"\0" + path.read_bytes() + b"\0")
    return f"{describe_tree(tree)}+{digest.hexdigest()[:8]}"


def tree_env(tree: Tree, dbname: str, redis_prefix: str, data_dir: Path) -> dict[str, str]:
    """The server's environment: this machine's basics, the tree on PYTHONPATH, the benchmark's own database
    and Redis key space. Nothing else from the caller's environment (no DATABASE_URL, PYTHON* or the like)."""
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ")}
    return {
        **keep, "PYTHONPATH": str(tree.path),
        "DATABASE_URL": PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{dbname}", "REDIS_URL": REDIS_URL,
        "REDIS_PREFIX": redis_prefix, "SECRET_KEY": secrets.token_urlsafe(48), "DEBUG": "false",
        "LOG_LEVEL": "warning", "DATA_DIR": str(data_dir), "API_WORKERS": "1", "SHUTDOWN_TIMEOUT": "6",
        # Setup only (two users log in once): cheap hashing, no login limits.
        "ARGON2_TIME_COST": "1", "ARGON2_MEMORY_COST": "1024", "ARGON2_PARALLELISM": "1",
        "LOGIN_RATE_PER_IP": "100000", "LOGIN_RATE_PER_ACCOUNT": "100000",
        # The per-connection push limit (10/s by default) would cap the sender: the write path is measured.
        "WS_PUSH_RATE": "100000", "WS_PUSH_BURST": "100000",
    }


def check_imports(python: str, tree: Tree, env: dict[str, str]) -> dict[str, str]:
    """Where the tree's packages come from, with exactly the server's interpreter, environment and cwd."""
    code = ("import importlib, json; print(json.dumps({n: importlib.import_module(n).__file__ for n in "
            f"{list(PACKAGES)!r}}}))")
    r = subprocess.run([python, "-c", code], env=env, cwd=tree.path, capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"{tree.label}: import check failed:\n{r.stderr[-2000:]}")
    found: dict[str, str] = json.loads(r.stdout)
    wrong = {n: f for n, f in found.items() if not Path(f).resolve().is_relative_to(tree.path)}
    if wrong:
        raise RuntimeError(f"{tree.label}: packages imported from outside {tree.path}: {wrong}")
    return found


def migrate(python: str, tree: Tree, env: dict[str, str]) -> str:
    r = subprocess.run([python, "-m", "server.cli", "migrate"], env=env, cwd=tree.path, capture_output=True,
                       text=True, timeout=300)
    if r.returncode != 0:
        raise RuntimeError(f"{tree.label}: migrate failed:\n{r.stderr[-3000:]}")
    return r.stdout.strip().splitlines()[-1] if r.stdout.strip() else "?"


def tail(path: Path, chars: int = 3000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else ""


def spawn_server(python: str, tree: Tree, env: dict[str, str], port: int, log_path: Path,
                 leftovers: Leftovers) -> subprocess.Popen[bytes]:
    with log_path.open("ab") as logfile:
        proc = subprocess.Popen([python, "-m", "server.cli", "serve", "--port", str(port)], env=env,
                                cwd=tree.path, stdout=logfile, stderr=subprocess.STDOUT)
    leftovers.procs.append(proc)
    return proc


async def start_server(python: str, tree: Tree, env: dict[str, str], log_path: Path, leftovers: Leftovers,
                       timeout: float = 60.0) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = spawn_server(python, tree, env, port, log_path, leftovers)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=1) as client:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{tree.label}: server exited:\n{tail(log_path)}")
            with contextlib.suppress(httpx.TransportError):
                if (await client.get(f"{url}/health")).status_code == 200:
                    return proc, url
            if time.monotonic() > deadline:
                raise RuntimeError(f"{tree.label}: server did not start:\n{tail(log_path)}")
            await asyncio.sleep(0.1)


# --- REST setup (as tests/realtime/harness.py: person, event_with with template=False) --------------------------


@dataclass
class Person:
    id: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def person(api: httpx.AsyncClient, name: str) -> Person:
    handle = f"{name}_{secrets.token_hex(4)}"
    email = f"{handle}@example.com"
    r = await api.post("/users", json={"email": email, "password": PASSWORD, "name": name, "handle": handle})
    if r.status_code != 201:
        raise RuntimeError(f"POST /users: {r.status_code} {r.text}")
    r2 = await api.post("/auth/token", data={"username": email, "password": PASSWORD})
    if r2.status_code != 200:
        raise RuntimeError(f"POST /auth/token: {r2.status_code} {r2.text}")
    return Person(r.json()["id"], r2.json()["accessToken"])


async def event_with(api: httpx.AsyncClient, owner: Person, member: Person) -> str:
    r = await api.post("/events", headers=owner.headers, json={
        "title": "Standup", "startTime": "2030-01-01T09:00:00Z", "endTime": "2030-01-01T10:00:00Z",
        "participantIds": [member.id]})
    if r.status_code not in (200, 201):
        raise RuntimeError(f"POST /events: {r.status_code} {r.text}")
    event_id: str = r.json()["id"]
    r = await api.put(f"/events/{event_id}/participants/{member.id}", headers=member.headers,
                      json={"status": "confirmed"})
    if r.status_code != 200:
        raise RuntimeError(f"PUT participant: {r.status_code} {r.text}")
    return event_id


# --- the clients -----------------------------------------------------------------------------------------------


class Recorder(RealtimeClient):
    """A RealtimeClient that timestamps, as each frame is read, every `chat.message` (by text, every copy, before
    the client's own dedupe) and every push reply that carries a chat line. Messages are not queued (nothing
    reads the inbox here, and it must not fill up); no reconnects: a dropped socket is a failed run."""

    def __init__(self, url: str, token: str) -> None:
        super().__init__(url, token, reconnect=False)
        self.arrivals: dict[str, list[float]] = {}
        self.replies: dict[str, float] = {}
        self.offsets: list[int] = []

    def _dispatch(self, frame: dict[str, Any]) -> None:
        now = time.perf_counter()
        op = frame.get("op")
        if op == "msg":
            if frame.get("event") == "chat.message":
                self.arrivals.setdefault(str(frame["data"]["text"]), []).append(now)
                self.offsets.append(int(frame["offset"]))
            return
        if op == "reply" and frame.get("ok"):
            text = (frame.get("data") or {}).get("text")
            if isinstance(text, str):
                self.replies.setdefault(text, now)
        super()._dispatch(frame)


def offset_breaks(offsets: list[int]) -> int:
    """Places where a receiver's offsets do not go up by exactly one (a gap, a repeat, or out of order)."""
    return sum(1 for a, b in itertools.pairwise(offsets) if b != a + 1)


# --- one phase -------------------------------------------------------------------------------------------------


@dataclass
class Phase:
    name: str
    sent: int
    ok: int
    errors: list[str]
    stored: int
    wall: float  # first push sent .. last reply
    span: float  # between the CPU snapshots: .. every stored message delivered
    server_cpu: float
    db_cpu: float
    client_cpu: float
    other_load: float  # the machine's busy share not ours (server, its DB backends, this process), 0..1
    push_ms: list[float]
    delivery_ms: list[float]
    lost: int
    duplicated: int
    sender_lost: int
    sender_duplicated: int
    unexpected: int  # delivered although the push failed

    @property
    def server_ms_per_msg(self) -> float:
        return self.server_cpu * 1000 / self.stored if self.stored else float("nan")

    @property
    def db_ms_per_msg(self) -> float:
        return self.db_cpu * 1000 / self.stored if self.stored else float("nan")

    @property
    def msgs_per_s(self) -> float:
        return self.ok / self.wall if self.wall else float("nan")

    def summary(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if k not in ("push_ms", "delivery_ms")}
        out.update(server_ms_per_msg=self.server_ms_per_msg, db_ms_per_msg=self.db_ms_per_msg,
                   msgs_per_s=self.msgs_per_s, push_p50=percentile(self.push_ms, 50),
                   push_p99=percentile(self.push_ms, 99), delivery_p50=percentile(self.delivery_ms, 50),
                   delivery_p99=percentile(self.delivery_ms, 99), errors=self.errors[:5])
        return out


@dataclass
class Room:
    sender: Recorder
    subscriber: Recorder
    topic: str
    event_id: str
    server_pid: int
    db: Any  # asyncpg connection to the run's database
    db_cpu: DbCpu


async def stored_count(room: Room) -> int:
    count: int = await room.db.fetchval("SELECT count(*) FROM chat_messages WHERE event_id = $1",
                                        uuid.UUID(room.event_id))
    return count


async def run_phase(room: Room, name: str, *, rate: float = 0.0, count: int = 0, seconds: float = 0.0,
                    window: int = 1) -> Phase:
    """`rate` > 0: `count` pushes, each at its scheduled time (open loop). Otherwise: `window` pushes in flight,
    each sender slot sending its next push when its last was answered, until `seconds` have passed."""
    sent_at: dict[str, float] = {}
    ok: list[str] = []
    errors: list[str] = []
    numbers = itertools.count()

    async def push_one() -> None:
        text = f"{name}:{next(numbers):06d} {PAD}"
        sent_at[text] = time.perf_counter()
        try:
            await room.sender.push(room.topic, "chat.send", {"text": text})  # times out after 10 s
            ok.append(text)
        except (ReplyError, Closed, TimeoutError) as exc:
            errors.append(f"{type(exc).__name__}: {exc}")

    stored0 = await stored_count(room)
    db0 = await room.db_cpu.snapshot()
    busy0, client0, cpu0 = machine_busy(), time.process_time(), process_cpu(room.server_pid)
    start = time.perf_counter()
    if rate > 0:
        tasks: list[asyncio.Task[None]] = []
        for i in range(count):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(push_one()))
        await asyncio.gather(*tasks)
    else:
        end = start + seconds

        async def slot() -> None:
            while time.perf_counter() < end:
                await push_one()

        await asyncio.gather(*(slot() for _ in range(window)))
    wall = time.perf_counter() - start
    # Every stored message at the subscriber (and the sender, also a member), within a deadline.
    pending = set(ok)
    deadline = time.perf_counter() + DELIVERY_WAIT
    while pending and time.perf_counter() < deadline:
        pending = {t for t in pending if t not in room.subscriber.arrivals or t not in room.sender.arrivals}
        if pending:
            await asyncio.sleep(0.005)
    cpu1, client1, busy1 = process_cpu(room.server_pid), time.process_time(), machine_busy()
    span = time.perf_counter() - start
    db1 = await room.db_cpu.snapshot()
    stored = await stored_count(room) - stored0
    await asyncio.sleep(LATE_WAIT)
    server_cpu, client_cpu, db_cpu = cpu1 - cpu0, client1 - client0, DbCpu.spent(db0, db1)
    cores = os.cpu_count() or 1
    other = max(0.0, (busy1 - busy0) - server_cpu - client_cpu - db_cpu) / (span * cores)
    sub, snd = room.subscriber.arrivals, room.sender.arrivals
    mine = set(sent_at)
    failed = mine - set(ok)
    return Phase(
        name=name, sent=len(sent_at), ok=len(ok), errors=errors, stored=stored, wall=wall, span=span,
        server_cpu=server_cpu, db_cpu=db_cpu, client_cpu=client_cpu, other_load=other,
        push_ms=[(room.sender.replies[t] - sent_at[t]) * 1000 for t in ok if t in room.sender.replies],
        delivery_ms=[(sub[t][0] - sent_at[t]) * 1000 for t in ok if t in sub],
        lost=sum(1 for t in ok if t not in sub), duplicated=sum(len(sub[t]) - 1 for t in mine if t in sub),
        sender_lost=sum(1 for t in ok if t not in snd),
        sender_duplicated=sum(len(snd[t]) - 1 for t in mine if t in snd),
        unexpected=sum(1 for t in failed if t in sub),
    )


async def settle(limit: float, quiet: float = 0.25, step: float = 0.5) -> tuple[float, float]:
    """Wait, at most `limit` seconds, until the machine is quiet (busy below `quiet` of all cores over `step`
    seconds): fewer of other people's test runs in the measurement. Returns (seconds waited, last busy share)."""
    cores = os.cpu_count() or 1
    start = time.perf_counter()
    share = 0.0
    for _ in range(max(1, int(limit / step))):
        busy0 = machine_busy()
        await asyncio.sleep(step)
        share = (machine_busy() - busy0) / (step * cores)
        if share < quiet:
            break
    return time.perf_counter() - start, share


# --- one run: a tree, a round ----------------------------------------------------------------------------------


@dataclass
class Run:
    tree: str
    round: int
    code: str  # fingerprint(): git describe + hash of the server code at the run's start
    rate: Phase
    saturation: Phase
    offset_breaks: int
    load_average: float


async def run_tree(args: argparse.Namespace, tree: Tree, round_no: int, leftovers: Leftovers,
                   verbose: bool) -> Run:
    tag = f"{tree.slug}_{round_no}"
    dbname = f"{leftovers.db_prefix}_{tag}"
    data_dir = leftovers.tmp / tag
    data_dir.mkdir(parents=True, exist_ok=True)
    env = tree_env(tree, dbname, f"{leftovers.redis_prefix}{tag}:", data_dir)
    admin = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{dbname}"')
        leftovers.databases.add(dbname)
    finally:
        await admin.close()
    proc: subprocess.Popen[bytes] | None = None
    clients: list[Recorder] = []
    db: Any = None
    try:
        imports = await asyncio.to_thread(check_imports, args.python, tree, env)
        revision = await asyncio.to_thread(migrate, args.python, tree, env)
        code = await asyncio.to_thread(fingerprint, tree)
        if verbose:
            log(f"{tree.label}: {tree.path} ({code}), {revision}; imported from: "
                + ", ".join(f"{n} {f}" for n, f in imports.items()))
        proc, url = await start_server(args.python, tree, env, data_dir / "server.log", leftovers)
        async with httpx.AsyncClient(base_url=url, timeout=60) as api:
            owner, member = await person(api, "sender"), await person(api, "subscriber")
            event_id = await event_with(api, owner, member)
        topic = f"event:{event_id}"
        ws_url = url.replace("http://", "ws://") + "/ws"
        subscriber, sender = Recorder(ws_url, member.token), Recorder(ws_url, owner.token)
        for client in (subscriber, sender):
            await client.connect()
            clients.append(client)
            await client.join(topic)
        db = await asyncpg.connect(env["DATABASE_URL"].replace("postgresql+asyncpg://", "postgresql://"))
        room = Room(sender, subscriber, topic, event_id, proc.pid, db, DbCpu(db, dbname))
        waited, busy = await settle(args.settle)
        if busy >= 0.25:
            log(f"  {tree.label} #{round_no}: the machine stayed busy ({busy:.0%} of all cores) for {waited:.0f} s; "
                "measuring anyway")
        load_average = os.getloadavg()[0]
        gc.collect()
        gc.freeze()
        gc.disable()  # this process's own GC pauses are not the server's latency
        try:
            if args.warmup:
                await run_phase(room, "warmup", rate=args.rate, count=args.warmup)
            rate = await run_phase(room, "rate", rate=args.rate, count=round(args.rate * args.seconds))
            saturation = await run_phase(room, "saturation", seconds=args.sat_seconds, window=args.window)
        finally:
            gc.enable()
        breaks = offset_breaks(subscriber.offsets) + offset_breaks(sender.offsets)
        if proc.poll() is not None:
            raise RuntimeError(f"{tree.label}: server died during the run")
        return Run(tree.label, round_no, code, rate, saturation, breaks, load_average)
    finally:
        for client in clients:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.close(), 10)
        if db is not None:
            with contextlib.suppress(Exception):
                await db.close()
        if proc is not None:
            await asyncio.to_thread(stop_process, proc)
            lines = tail(data_dir / "server.log", 1_000_000).splitlines()
            if lines:  # LOG_LEVEL=warning: whatever is there is a warning or an error
                log(f"{tree.label} round {round_no}: the server logged {len(lines)} lines; the last:\n"
                    + "\n".join(line[:300] for line in lines[-5:]))
        with contextlib.suppress(Exception):
            await drop_database(dbname)
            leftovers.databases.discard(dbname)
        with contextlib.suppress(Exception):
            deleted = await delete_redis_keys(env["REDIS_PREFIX"])
            if verbose:
                log(f"{tree.label}: deleted {deleted} Redis keys under {env['REDIS_PREFIX']}")


# --- report ----------------------------------------------------------------------------------------------------


Metric = tuple[str, Callable[[Run], float], int]
METRICS: list[Metric] = [
    ("server CPU ms/msg @rate", lambda r: r.rate.server_ms_per_msg, 2),
    ("push p50 ms @rate", lambda r: percentile(r.rate.push_ms, 50), 1),
    ("push p99 ms @rate", lambda r: percentile(r.rate.push_ms, 99), 1),
    ("delivery p50 ms @rate", lambda r: percentile(r.rate.delivery_ms, 50), 1),
    ("delivery p99 ms @rate", lambda r: percentile(r.rate.delivery_ms, 99), 1),
    ("msgs/s @sat", lambda r: r.saturation.msgs_per_s, 0),
    ("server CPU ms/msg @sat", lambda r: r.saturation.server_ms_per_msg, 2),
    ("push p99 ms @sat", lambda r: percentile(r.saturation.push_ms, 99), 1),
    ("delivery p99 ms @sat", lambda r: percentile(r.saturation.delivery_ms, 99), 1),
    ("DB CPU ms/msg @sat (≥)", lambda r: r.saturation.db_ms_per_msg, 2),
]


def fmt(value: float, digits: int) -> str:
    return "—" if value != value else f"{value:,.{digits}f}"  # NaN: no samples


def markdown(rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(rows[0]) + " |", "|---|" + "--:|" * (len(rows[0]) - 1)]
    lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    return "\n".join(lines)


def checks(runs: list[Run]) -> tuple[int, int, int]:
    lost = sum(p.lost + p.sender_lost for r in runs for p in (r.rate, r.saturation))
    duplicated = sum(p.duplicated + p.sender_duplicated for r in runs for p in (r.rate, r.saturation))
    other = sum(len(p.errors) + p.unexpected + abs(p.stored - p.ok) for r in runs for p in (r.rate, r.saturation))
    return lost, duplicated, other + sum(r.offset_breaks for r in runs)


def report(args: argparse.Namespace, trees: list[Tree], runs: list[Run], started: datetime) -> None:
    print(f"\n## Stored write path: `chat.send` into an event room — {started:%Y-%m-%d %H:%M} UTC, "
          f"{os.cpu_count()} cores, Python {sys.version.split()[0]}\n")
    print(f"One API instance per tree on PostgreSQL + Redis, one sender and one subscriber; rate: {args.rate:g} "
          f"msg/s for {args.seconds:g} s (open loop); saturation: {args.window} pushes in flight for "
          f"{args.sat_seconds:g} s. Medians of {args.rounds} alternating runs per tree.\n")
    header = ["tree", "runs", *(m[0] for m in METRICS), "lost / dup / other", "other load"]
    rows = [header]
    medians: dict[str, list[float]] = {}
    for tree in trees:
        mine = [r for r in runs if r.tree == tree.label]
        if not mine:
            continue
        medians[tree.label] = [statistics.median(get(r) for r in mine) for _, get, _ in METRICS]
        lost, dup, other = checks(mine)
        load = statistics.median(p.other_load for r in mine for p in (r.rate, r.saturation))
        codes = sorted({r.code for r in mine})
        rows.append([f"{tree.label} (`{', '.join(codes)}`)", str(len(mine)),
                     *(fmt(v, m[2]) for v, m in zip(medians[tree.label], METRICS, strict=True)),
                     f"{lost} / {dup} / {other}", f"{load:.0%}"])
    base = trees[0].label
    for tree in trees[1:]:
        if tree.label in medians and base in medians:
            ratios = [a / b if b else float("nan") for a, b in zip(medians[tree.label], medians[base], strict=True)]
            rows.append([f"**ratio {tree.label} / {base}**", "", *(f"**{fmt(v, 2)}**" for v in ratios), "", ""])
    print(markdown(rows))
    for tree in trees:
        codes = sorted({r.code for r in runs if r.tree == tree.label})
        if len({c.rsplit("+", 1)[-1] for c in codes}) > 1:  # the code hash, not only `git describe` (a commit)
            print(f"\n**Warning: the tree {tree.label} ({tree.path}) changed while the benchmark ran** "
                  f"({', '.join(codes)}): its runs measured different code.")
    print("\nEvery run, in the order run:\n")
    detail = [["run", "code", *(m[0] for m in METRICS), "stored @rate / @sat", "lost / dup / other", "other load",
               "load avg"]]
    for r in runs:
        lost, dup, other = checks([r])
        detail.append([f"{r.tree} #{r.round}", f"`{r.code}`", *(fmt(get(r), digits) for _, get, digits in METRICS),
                       f"{r.rate.stored} / {r.saturation.stored}", f"{lost} / {dup} / {other}",
                       f"{r.rate.other_load:.0%} / {r.saturation.other_load:.0%}", f"{r.load_average:.1f}"])
    print(markdown(detail))
    print("\n(lost / dup: stored messages that never reached, or reached more than once, the subscriber or the "
          "sender; other: failed pushes, delivered-but-failed pushes, stored rows ≠ ok replies, offset gaps. "
          "Other load: the machine's CPU not used by the server, its PostgreSQL backends or this process, as a "
          "share of all cores (rate / saturation). DB CPU is a lower bound.)")
    for r in runs:
        for p in (r.rate, r.saturation):
            if p.errors:
                print(f"\n{r.tree} #{r.round} {p.name}: {len(p.errors)} failed pushes, e.g. {p.errors[:3]}")


async def benchmark(args: argparse.Namespace, trees: list[Tree], leftovers: Leftovers) -> list[Run]:
    runs: list[Run] = []
    # Per run, setup and teardown included.
    budget = args.seconds + args.sat_seconds + args.settle + DELIVERY_WAIT * 3 + 240
    for round_no in range(1, args.rounds + 1):
        for tree in trees:
            log(f"round {round_no}/{args.rounds}: {tree.label}")
            async with asyncio.timeout(budget):
                run = await run_tree(args, tree, round_no, leftovers, verbose=round_no == 1)
            runs.append(run)
            log(f"  {tree.label} #{round_no}: " + ", ".join(f"{name} {fmt(get(run), d)}" for name, get, d in METRICS)
                + f"; lost/dup/other {checks([run])}")
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--tree", type=parse_tree, action="append", required=True, metavar="LABEL=PATH",
                        help="a conversme source tree (repeatable; ratios are against the first)")
    parser.add_argument("--rounds", type=int, default=3, help="runs per tree, alternating (3)")
    parser.add_argument("--rate", type=float, default=50.0, help="steady rate, pushes per second (50)")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the steady-rate phase (20)")
    parser.add_argument("--sat-seconds", type=float, default=10.0, help="length of the saturation phase (10)")
    parser.add_argument("--window", type=int, default=16, help="pushes in flight at saturation (16)")
    parser.add_argument("--warmup", type=int, default=50, help="unmeasured pushes at --rate first (50)")
    parser.add_argument("--settle", type=float, default=15.0,
                        help="before each run, wait up to this long for the machine to be quiet (15)")
    default_python = ROOT / ".venv" / "bin" / "python"
    parser.add_argument("--python", default=str(default_python if default_python.exists() else sys.executable),
                        help="the interpreter (and venv) every tree's server runs on")
    parser.add_argument("--json", type=Path, help="also write every run's numbers to this file")
    args = parser.parse_args(argv)
    trees: list[Tree] = args.tree
    if len({t.label for t in trees}) != len(trees):
        parser.error("--tree labels must differ")
    if args.rounds < 1 or args.rate <= 0 or args.seconds <= 0 or args.sat_seconds <= 0 or args.window < 1:
        parser.error("--rounds, --rate, --seconds, --sat-seconds and --window must be positive")

    def on_term(signum: int, frame: Any) -> NoReturn:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    started = datetime.now(UTC)
    leftovers = Leftovers()
    log(f"interpreter {args.python}; databases {leftovers.db_prefix}_*, Redis prefix {leftovers.redis_prefix}")
    try:
        runs = asyncio.run(benchmark(args, trees, leftovers))
    except KeyboardInterrupt:
        log("interrupted; cleaning up")
        return 130
    finally:
        leftovers.cleanup()
        log("cleaned up: servers stopped, databases dropped, Redis keys and temp dir removed")
    report(args, trees, runs, started)
    if args.json:
        args.json.write_text(json.dumps({
            "started": started.isoformat(), "args": {k: str(v) for k, v in vars(args).items()},
            "runs": [{"tree": r.tree, "round": r.round, "code": r.code, "offset_breaks": r.offset_breaks,
                      "load_average": r.load_average, "rate": r.rate.summary(),
                      "saturation": r.saturation.summary()} for r in runs],
        }, indent=2, default=str))
    lost, dup, other = checks(runs)
    return 1 if lost or dup or other else 0


if __name__ == "__main__":
    try:
        import uvloop  # the load generator should cost as little CPU as it can

        uvloop.install()
    except ImportError:  # pragma: no cover
        pass
    sys.exit(main())
