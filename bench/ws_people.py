"""Many signed-in people and event rooms for the connection benchmarks, made straight in the database.

Signing 5,000 people up and in over REST would cost an argon2id hash each (minutes of CPU before the
benchmark starts); here every person gets a user row, a sign-in session and an access token signed with the
servers' SECRET_KEY, exactly what `POST /auth/token` would have handed out. Rooms are events of `room_size`
confirmed participants (the first one creates it), so joining `event:<id>` runs the real access check."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import insert

from adapters.security import Tokens
from persistence.database import create_engine
from persistence.enums import ParticipantStatus
from persistence.models import AuthSession, Event, EventParticipant, User
from server.settings import normalize_database_url

LOADGEN = Path(__file__).resolve().parent / "loadgen"


@dataclass(frozen=True)
class Person:
    id: str
    token: str
    topic: str  # the event room this person joins


@dataclass(frozen=True)
class Room:
    event_id: str
    owner: Person

    @property
    def topic(self) -> str:
        return f"event:{self.event_id}"


async def seed(database_url: str, secret: str, people: int, room_size: int,
               token_minutes: int = 120) -> tuple[list[Person], list[Room]]:
    now = datetime.now(UTC)
    tokens = Tokens(secret, "HS256", timedelta(minutes=token_minutes))
    tag = uuid.uuid4().hex[:6]
    ids = [uuid.uuid4() for _ in range(people)]
    sids = [uuid.uuid4() for _ in range(people)]
    users: list[dict[str, Any]] = [{"id": ids[i], "name": f"Bench {i}", "handle": f"bench{tag}_{i}",
              "email": f"bench{tag}_{i}@bench.example", "created_at": now, "user_metadata": {}}
             for i in range(people)]
    sessions = [{"id": sids[i], "user_id": u["id"], "created_at": now, "last_used_at": now,
                 "expires_at": now + timedelta(days=1)} for i, u in enumerate(users)]
    events, members = [], []
    for start in range(0, people, room_size):
        event_id = uuid.uuid4()
        events.append({"id": event_id, "title": f"Storm room {start // room_size}", "created_at": now,
                       "start_time": now + timedelta(days=1), "end_time": now + timedelta(days=1, hours=1),
                       "created_by_id": users[start]["id"], "event_metadata": {}})
        members += [{"event_id": event_id, "user_id": u["id"], "role": "participant",
                     "status": ParticipantStatus.CONFIRMED, "joined_at": now}
                    for u in users[start + 1:start + room_size]]
    engine = create_engine(normalize_database_url(database_url))
    try:
        async with engine.begin() as db:
            for table, rows in ((User, users), (AuthSession, sessions), (Event, events),
                                (EventParticipant, members)):
                for i in range(0, len(rows), 1000):
                    await db.execute(insert(table), rows[i:i + 1000])
    finally:
        await engine.dispose()
    out = [Person(str(ids[i]), tokens.issue_access(ids[i], sids[i], now), f"event:{events[i // room_size]['id']}")
           for i in range(people)]
    rooms = [Room(str(e["id"]), out[i * room_size]) for i, e in enumerate(events)]
    return out, rooms


class StormClients:
    """The Node process of bench/loadgen/storm.mjs: thousands of sockets, driven by lines on stdin."""

    def __init__(self, job: dict[str, Any]) -> None:
        self.job = job
        self.proc: asyncio.subprocess.Process | None = None

    async def _line(self, timeout: float) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if not line:
            raise RuntimeError("the storm client died")
        out: dict[str, Any] = json.loads(line)
        return out

    async def connect(self, timeout: float = 600) -> dict[str, Any]:
        """Open every connection; the timings of connect + auth + join."""
        self.proc = await asyncio.create_subprocess_exec(
            "node", str(LOADGEN / "storm.mjs"), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            cwd=LOADGEN, limit=64 * 1024 * 1024)
        await self.send(json.dumps(self.job))
        return await self._line(timeout)

    async def send(self, line: str) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        await self.proc.stdin.drain()

    async def wait_resumed(self, timeout: float) -> dict[str, Any]:
        await self.send("wait-resumed")
        return await self._line(timeout)

    async def wait_heads(self, heads: dict[str, int], seconds: float) -> list[dict[str, Any]]:
        """Wait until every connection has seen its room's `heads` entry, at most `seconds`; those still short."""
        await self.send("wait-heads " + json.dumps({"heads": heads, "ms": int(seconds * 1000)}))
        behind: list[dict[str, Any]] = (await self._line(seconds + 60))["behind"]
        return behind

    async def stop(self) -> dict[str, Any]:
        await self.send("stop")
        out = await self._line(120)
        assert self.proc is not None
        await self.proc.wait()
        return out

    def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()


def ensure_loadgen() -> None:
    if not (LOADGEN / "node_modules" / "ws").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=LOADGEN, check=True)


@contextlib.asynccontextmanager
async def scratch_database(admin_url: str) -> AsyncIterator[str]:
    """A new PostgreSQL database for one run (its URL), dropped afterwards, also on Ctrl-C."""
    name = f"bench_storm_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(admin_url)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with contextlib.suppress(Exception):
            conn = await asyncpg.connect(admin_url)
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await conn.close()
