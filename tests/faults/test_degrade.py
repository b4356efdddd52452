"""Degrade, never 500: with PostgreSQL or Redis away, two API instances answer 503 with `Retry-After` (over the
WebSocket: `unavailable`), keep limiting logins per instance, keep serving `/metrics` and say not ready — and
work again, without a restart, once the service is back.

Every service here is private to the test (tests/faults/services.py); the shared ones are never touched."""

from __future__ import annotations

import asyncio
import errno
import functools
import json
import re
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest
import redis.exceptions
import sqlalchemy.exc
import websockets

from channels.client import RealtimeClient, ReplyError
from persistence.errors import Unavailable
from server import errors
from server.responses import error_response
from tests.faults.services import PrivatePostgres, PrivateRedis
from tests.realtime.harness import Person, ServerProcess, event_with, migrate, person, server_env
from tests.waiting import LIVENESS, eventually

pytestmark = pytest.mark.slow

PASSWORD = "correct horse battery"


@dataclass
class Stack:
    pg: PrivatePostgres
    redis: PrivateRedis
    a: ServerProcess
    b: ServerProcess
    http: httpx.AsyncClient

    @property
    def servers(self) -> tuple[ServerProcess, ServerProcess]:
        return self.a, self.b

    def logs(self) -> str:
        return self.a.log() + self.b.log()

    def bugs(self) -> list[str]:
        """What the servers logged as a bug (`internal`: a 500, a WebSocket command failed unexpectedly)."""
        found = []
        for line in self.logs().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("msg", "").startswith(("unhandled error", "websocket command failed")) and \
                    record.get("level") in ("error", "critical"):
                found.append(record["msg"])
        return found


@pytest.fixture(scope="module")
def private_pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PrivatePostgres, str]]:
    pg = PrivatePostgres(tmp_path_factory.mktemp("pg")).init().start()
    try:
        yield pg, pg.createdb("degrade")
    finally:
        pg.destroy()


@pytest.fixture(scope="module")
def migrated(private_pg: tuple[PrivatePostgres, str], tmp_path_factory: pytest.TempPathFactory) -> str:
    _, url = private_pg
    migrate(server_env(url, "memory://", tmp_path_factory.mktemp("migrate")))
    return url


async def _stack(pg: PrivatePostgres, url: str, tmp_path: Path, **extra: str) -> AsyncIterator[Stack]:
    rs = PrivateRedis(tmp_path / "redis").start()
    env = server_env(url, rs.url, tmp_path / "data", **extra)
    a = b = None
    try:
        a, b = ServerProcess(env).start(), ServerProcess(env).start()
        async with httpx.AsyncClient(timeout=LIVENESS) as http:
            yield Stack(pg, rs, a, b, http)
    finally:
        for server in (a, b):
            if server is not None:
                server.stop()
        rs.stop()


@pytest.fixture
async def stack(private_pg: tuple[PrivatePostgres, str], migrated: str, tmp_path: Path) -> AsyncIterator[Stack]:
    async for s in _stack(private_pg[0], migrated, tmp_path):
        yield s


@pytest.fixture
async def strict_stack(private_pg: tuple[PrivatePostgres, str], migrated: str,
                       tmp_path: Path) -> AsyncIterator[Stack]:
    """Three login attempts per account and window, so the test can reach the limit."""
    async for s in _stack(private_pg[0], migrated, tmp_path, LOGIN_RATE_PER_ACCOUNT="3"):
        yield s


def _gauge(text: str, name: str) -> float | None:
    found = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else None


async def _metrics(http: httpx.AsyncClient, server: ServerProcess) -> str:
    r = await http.get(f"{server.url}/metrics")
    assert r.status_code == 200, r.text
    return r.text


async def _ready(http: httpx.AsyncClient, server: ServerProcess) -> tuple[int, dict[str, Any]]:
    r = await http.get(f"{server.url}/ready")
    checks: dict[str, Any] = r.json()["checks"]
    return r.status_code, checks


def _assert_unavailable(r: httpx.Response) -> None:
    assert r.status_code == 503, r.text
    assert int(r.headers["retry-after"]) >= 1
    body = r.json()
    assert body["code"] == "unavailable" and body["requestId"], body


async def _login(http: httpx.AsyncClient, server: ServerProcess, who: Person, password: str) -> httpx.Response:
    return await http.post(f"{server.url}/auth/token", data={"username": who.email, "password": password})


# ---- the mapping ---------------------------------------------------------------------------------------------


def _caused_by(error: BaseException, cause: BaseException) -> BaseException:
    error.__cause__ = cause
    return error


@pytest.mark.parametrize("error", [
    sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception("server closed the connection")),
    sqlalchemy.exc.InterfaceError("SELECT 1", {}, Exception("connection is closed")),
    sqlalchemy.exc.DBAPIError("SELECT 1", {}, Exception("terminating connection"), connection_invalidated=True),
    sqlalchemy.exc.DBAPIError("SELECT 1", {}, asyncpg.CannotConnectNowError("the database system is starting up")),
    sqlalchemy.exc.TimeoutError("QueuePool limit of size 10 overflow 20 reached"),
    asyncpg.CannotConnectNowError("the database system is in recovery mode"),
    asyncpg.AdminShutdownError("terminating connection due to administrator command"),
    asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
    ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"),
    OSError("Multiple exceptions: [Errno 111] Connect call failed"),
    redis.exceptions.ConnectionError("Error 111 connecting"),
    redis.exceptions.TimeoutError("Timeout reading"),
    _caused_by(RuntimeError("wrapped"), ConnectionResetError(errno.ECONNRESET, "reset")),
], ids=lambda e: type(e).__name__)
def test_a_dependency_that_does_not_answer_maps_to_unavailable(error: BaseException) -> None:
    down = errors.unavailable(error)
    assert isinstance(down, Unavailable)
    assert errors.status_for(down) == 503 and errors.ws_code(down) == "unavailable"
    response = error_response(down, "req")
    assert response.status_code == 503 and int(response.headers["retry-after"]) >= 1
    assert json.loads(bytes(response.body))["code"] == "unavailable"


def _while_handling(error: BaseException, context: BaseException) -> BaseException:
    error.__context__ = context
    return error


@pytest.mark.parametrize("error", [
    ValueError("a bug"),
    OSError(errno.ENOSPC, "No space left on device"),
    FileNotFoundError(errno.ENOENT, "No such file"),
    sqlalchemy.exc.DBAPIError("SELECT 1", {}, Exception("syntax error")),
    redis.exceptions.ResponseError("WRONGTYPE"),
    _while_handling(KeyError("a bug in an except clause"), redis.exceptions.ConnectionError("gone")),
], ids=lambda e: type(e).__name__)
def test_anything_else_stays_internal(error: BaseException) -> None:
    assert errors.unavailable(error) is None


# ---- PostgreSQL ------------------------------------------------------------------------------------------------


async def test_postgres_restart_answers_503_never_500_and_recovers(stack: Stack) -> None:
    http, a, b = stack.http, stack.a, stack.b
    api = httpx.AsyncClient(base_url=a.url, timeout=LIVENESS)
    async with api:
        alice = await person(api, "alice")
        # Signed in but never seen by an instance: nothing about her is remembered
        # (handlers.accounts.auth_cache), so her socket's authentication needs the database.
        newcomer = await person(api, "newcomer")
        event = await event_with(api, alice, template=False)
    topic, chat = f"event:{event['id']}", f"/events/{event['id']}/chat"
    statuses: Counter[int] = Counter()

    async def write(server: ServerProcess, text: str) -> httpx.Response:
        r = await http.post(f"{server.url}{chat}", headers=alice.headers, json={"text": text})
        statuses[r.status_code] += 1
        if r.status_code == 503:
            _assert_unavailable(r)
        else:
            assert r.status_code == 201, r.text
        return r

    async with RealtimeClient(b.ws_url, alice.token) as ws:
        await ws.join(topic)

        # A stream of writes, alternating between the instances, while PostgreSQL restarts as after a crash.
        restart = asyncio.ensure_future(asyncio.to_thread(stack.pg.restart, "immediate"))
        n = 0
        while not restart.done():
            await write(stack.servers[n % 2], f"stream {n}")
            n += 1
        await restart
        # Back: the very next writes succeed on both instances, nothing restarted.
        for server in stack.servers:
            for i in range(3):
                assert (await write(server, f"after restart {i}")).status_code == 201
        streamed_503 = statuses[503]

        # PostgreSQL away for as long as it takes to look: every write and push is told to retry.
        stack.pg.stop("immediate")
        try:
            for server in stack.servers:
                _assert_unavailable(await write(server, "while stopped"))
            with pytest.raises(ReplyError) as refused:
                await ws.push(topic, "chat.send", {"text": "pushed while stopped"})
            assert refused.value.code == "unavailable"
            assert await _socket_refusal(a, newcomer, header_auth=False) == "unavailable"
            assert await _socket_refusal(a, newcomer, header_auth=True) == 1011  # not a 500 on the upgrade
            for server in stack.servers:
                status, checks = await _ready(http, server)
                assert status == 503 and checks["database"].startswith("unreachable"), checks
                assert _gauge(await _metrics(http, server), "conversme_database_up") == 0
        finally:
            stack.pg.start()

        for server in stack.servers:
            assert (await write(server, "after start")).status_code == 201
            assert await _ready(http, server) == (200, {"database": "ok", "migrations": "ok", "redis": "ok"})
            assert _gauge(await _metrics(http, server), "conversme_database_up") == 1
        reply = await ws.push(topic, "chat.send", {"text": "pushed after start"})
        assert reply is not None

    print(f"\n{n} writes during the restart: {streamed_503} answered 503; all answers {dict(statuses)}")
    assert statuses[500] == 0 and set(statuses) <= {201, 503}
    assert stack.bugs() == []


async def _socket_refusal(server: ServerProcess, who: Person, *, header_auth: bool) -> str | int:
    """How a new socket is turned away: the `auth` reply's error code, or the close code."""
    client = RealtimeClient(server.ws_url, who.token, header_auth=header_auth, reconnect=False)
    try:
        await client.connect()
    except ReplyError as exc:
        return exc.code
    except websockets.ConnectionClosed as exc:
        assert exc.rcvd is not None
        return exc.rcvd.code
    finally:
        await client.close()
    raise AssertionError("the socket was accepted")


# ---- Redis -----------------------------------------------------------------------------------------------------


async def _signs_in_and_reports(stack: Stack, who: Person) -> None:
    """What must hold while Redis does not answer, on both instances: logins are decided (200, 401), metrics
    are served with `conversme_redis_up 0`, `/ready` says not ready."""
    http = stack.http
    for server in stack.servers:
        assert (await _login(http, server, who, PASSWORD)).status_code == 200
        assert (await _login(http, server, who, "wrong password")).status_code == 401
        text = await _metrics(http, server)
        assert _gauge(text, "conversme_redis_up") == 0 and _gauge(text, "conversme_database_up") == 1
        status, checks = await _ready(http, server)
        assert status == 503 and checks["redis"] == "unreachable" and checks["database"] == "ok", checks


async def _back_to_normal(stack: Stack, who: Person) -> None:
    http = stack.http
    for server in stack.servers:
        await eventually(functools.partial(_ready_ok, http, server), what="/ready to answer 200 again")
        assert _gauge(await _metrics(http, server), "conversme_redis_up") == 1
        assert (await _login(http, server, who, PASSWORD)).status_code == 200


async def _ready_ok(http: httpx.AsyncClient, server: ServerProcess) -> bool:
    status, _ = await _ready(http, server)
    return status == 200


async def test_redis_killed_logins_limit_per_instance_metrics_and_ready(strict_stack: Stack) -> None:
    stack, http, a, b = strict_stack, strict_stack.http, strict_stack.a, strict_stack.b
    async with httpx.AsyncClient(base_url=a.url, timeout=LIVENESS) as api:
        alice = await person(api, "alice")
    for server in stack.servers:
        assert _gauge(await _metrics(http, server), "conversme_redis_up") == 1
        assert (await _ready(http, server))[0] == 200

    stack.redis.kill()
    await _signs_in_and_reports(stack, alice)
    # Still limited, per instance now: three failures on `a` (the good login above reset the count) ...
    for _ in range(2):
        assert (await _login(http, a, alice, "wrong password")).status_code == 401
    refused = await _login(http, a, alice, PASSWORD)
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1, refused.text
    assert refused.json()["code"] == "rate_limited"
    # ... while `b` counted its own attempts only.
    assert (await _login(http, b, alice, PASSWORD)).status_code == 200

    stack.redis.start()
    await _back_to_normal(stack, await _fresh(stack))
    assert stack.bugs() == []
    assert stack.logs().count("login rate limits count per instance") <= 2  # once per instance and outage


async def _fresh(stack: Stack) -> Person:
    """A person whose login count starts at zero (alice is still limited on `a`)."""
    async with httpx.AsyncClient(base_url=stack.b.url, timeout=LIVENESS) as api:
        return await person(api, "bob")


async def test_redis_paused_logins_and_metrics_still_answer(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.a.url, timeout=LIVENESS) as api:
        alice = await person(api, "alice")
    stack.redis.pause()  # SIGSTOP: connections stay open, nothing answers; the clients' timeouts decide
    try:
        await _signs_in_and_reports(stack, alice)
    finally:
        stack.redis.resume()
    await _back_to_normal(stack, alice)
    assert stack.bugs() == []
