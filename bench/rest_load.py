"""The load side of bench/rest.py: HTTP/1.1 keep-alive clients, the closed-loop driver, CPU accounting.

Two clients behind one interface. `raw` is a minimal HTTP/1.1 client on asyncio streams (one keep-alive
connection per simulated user, Content-Length bodies only -- all the benchmarked routes send one); it costs a
fraction of httpx's CPU per request, which matters when the load generator shares two cores with the server.
`httpx` is the ordinary client, kept to cross-check the raw one.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any, Protocol
from urllib.parse import urlencode

import httpx
import orjson

TICK = os.sysconf("SC_CLK_TCK")  # /proc counts CPU time in clock ticks


class Client(Protocol):
    async def send(self, method: str, path: str, *, headers: dict[str, str] | None = None,
                   json: Any = None, form: dict[str, str] | None = None) -> tuple[int, bytes]: ...

    async def close(self) -> None: ...


def _body(json: Any, form: dict[str, str] | None) -> tuple[bytes, str | None]:
    if json is not None:
        return orjson.dumps(json), "application/json"
    if form is not None:
        return urlencode(form).encode(), "application/x-www-form-urlencoded"
    return b"", None


class RawClient:
    """One keep-alive HTTP/1.1 connection; reconnects after the server closes it."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def send(self, method: str, path: str, *, headers: dict[str, str] | None = None,
                   json: Any = None, form: dict[str, str] | None = None) -> tuple[int, bytes]:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        assert self._reader is not None
        body, content_type = _body(json, form)
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}", f"Content-Length: {len(body)}"]
        if content_type:
            lines.append(f"Content-Type: {content_type}")
        lines.extend(f"{k}: {v}" for k, v in (headers or {}).items())
        try:
            self._writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
            head = await self._reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length, close = None, False
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"connection" and value.strip().lower() == b"close":
                    close = True
            if length is None:
                raise RuntimeError(f"{method} {path}: response without Content-Length")
            data = await self._reader.readexactly(length)
        except BaseException:
            await self.close()
            raise
        if close:
            await self.close()
        return status, data

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
            self._reader = None


class HttpxClient:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def send(self, method: str, path: str, *, headers: dict[str, str] | None = None,
                   json: Any = None, form: dict[str, str] | None = None) -> tuple[int, bytes]:
        r = await self._client.request(method, path, headers=headers, json=json, data=form)
        return r.status_code, r.content

    async def close(self) -> None:  # the shared AsyncClient is closed by its owner
        return None


ClientFactory = Callable[[], Client]
Call = Callable[[Client, int], Awaitable[tuple[int, bytes]]]


@dataclass
class Op:
    key: str
    label: str
    call: Call
    expect: int = 200


# --- CPU accounting --------------------------------------------------------------------------------------


def process_cpu(pid: int) -> float:
    """utime + stime of one process (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def machine_busy() -> float:
    """CPU-seconds the whole machine has spent not idle (all cores together) since boot."""
    with open("/proc/stat", encoding="ascii") as fh:
        parts = [int(v) for v in fh.readline().split()[1:]]
    return (sum(parts[:8]) - parts[3] - parts[4]) / TICK


class DbCpu:
    """CPU of the PostgreSQL backends serving the benchmark database (pids from pg_stat_activity).
    Backends that exit during a measurement (pool overflow connections) are missed, as is the WAL writer's
    work: a lower bound."""

    def __init__(self, conn: Any, dbname: str) -> None:
        self.conn = conn
        self.dbname = dbname

    async def snapshot(self) -> dict[int, float]:
        out: dict[int, float] = {}
        for row in await self.conn.fetch("SELECT pid FROM pg_stat_activity WHERE datname = $1", self.dbname):
            try:
                out[int(row["pid"])] = process_cpu(int(row["pid"]))
            except (FileNotFoundError, ProcessLookupError):
                continue
        return out

    @staticmethod
    def spent(before: dict[int, float], after: dict[int, float]) -> float:
        return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


# --- one measurement -------------------------------------------------------------------------------------------


@dataclass
class Sample:
    op: str
    concurrency: int
    requests: int
    errors: int
    wall: float           # first request sent .. last answer received
    span: float           # between the CPU snapshots (covers background load too)
    latencies_ms: list[float]
    bytes: int
    server_cpu: float
    db_cpu: float
    client_cpu: float
    machine_cpu: float
    statuses: dict[str, int]

    @property
    def rps(self) -> float:
        return self.requests / self.wall if self.wall > 0 else 0.0

    def pct(self, p: float) -> float:
        """Nearest-rank percentile of the latencies, in ms."""
        if not self.latencies_ms:
            return math.nan
        ordered = sorted(self.latencies_ms)
        return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]

    @property
    def other_cpu(self) -> float:
        """Machine CPU not spent by the server, its database backends or this load generator: noise."""
        return max(0.0, self.machine_cpu - self.server_cpu - self.db_cpu - self.client_cpu)

    def summary(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if k != "latencies_ms"}
        out.update(rps=self.rps, p50=self.pct(50), p90=self.pct(90), p99=self.pct(99), max=self.pct(100))
        return out


@dataclass
class Driven:
    latencies_ms: list[float]
    errors: int
    bytes: int
    statuses: dict[str, int]
    wall: float


async def drive(factory: ClientFactory, op: Op, n: int, concurrency: int, seconds: float) -> Driven:
    """Closed loop: `concurrency` users, each with its own client, sending the next request when the last one
    was answered, until `n` requests were sent or `seconds` passed (requests in flight then still finish)."""
    out = Driven([], 0, 0, {}, 0.0)
    issued = 0
    began = time.perf_counter()
    deadline = began + seconds

    async def user() -> None:
        nonlocal issued
        client = factory()
        try:
            while issued < n and time.perf_counter() < deadline:
                i = issued
                issued += 1
                t0 = time.perf_counter()
                try:
                    code, data = await op.call(client, i)
                    status = str(code)
                    out.bytes += len(data)
                except (OSError, asyncio.IncompleteReadError, RuntimeError, ValueError, httpx.HTTPError) as exc:
                    status = type(exc).__name__
                out.latencies_ms.append((time.perf_counter() - t0) * 1000)
                out.statuses[status] = out.statuses.get(status, 0) + 1
                if status != str(op.expect):
                    out.errors += 1
        finally:
            await client.close()

    await asyncio.gather(*(user() for _ in range(concurrency)))
    out.wall = time.perf_counter() - began
    return out


async def measure(factory: ClientFactory, server_pid: int, db: DbCpu, op: Op, n: int, concurrency: int,
                  seconds: float, warmup: float, background: tuple[Op, int] | None = None) -> Sample:
    """Warm up, then one measurement of `op`. With `background`, that op runs at the given concurrency for the
    same time: its requests are not in the sample, its CPU is."""
    await drive(factory, op, max(10, n // 20), concurrency, warmup)
    db0 = await db.snapshot()
    srv0, cli0, mach0, t0 = process_cpu(server_pid), time.process_time(), machine_busy(), time.perf_counter()
    jobs = [drive(factory, op, n, concurrency, seconds)]
    if background is not None:
        jobs.append(drive(factory, background[0], 10 ** 9, background[1], seconds))
    results = await asyncio.gather(*jobs)
    srv1, cli1, mach1, t1 = process_cpu(server_pid), time.process_time(), machine_busy(), time.perf_counter()
    db1 = await db.snapshot()
    r = results[0]
    return Sample(op=op.key, concurrency=concurrency, requests=len(r.latencies_ms), errors=r.errors, wall=r.wall,
                  span=t1 - t0, latencies_ms=r.latencies_ms, bytes=r.bytes, server_cpu=srv1 - srv0,
                  db_cpu=DbCpu.spent(db0, db1), client_cpu=cli1 - cli0, machine_cpu=mach1 - mach0,
                  statuses=r.statuses)
