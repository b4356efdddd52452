"""SIGTERM drains with any number of workers: `conversme serve` at API_WORKERS=2 closes every socket of every
worker with 1012 and finishes a request that was in flight."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.conftest import REDIS_URL
from tests.realtime.harness import ServerProcess, migrate, person, server_env
from tests.waiting import LIVENESS

# Real server processes: left out of the quick loop (./scripts/test.sh -m "not slow").
pytestmark = pytest.mark.slow


def _children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def worker_of_each_client(server_port: int, parent: int) -> dict[int, int]:
    """Client port → pid of the worker process holding the server side of that TCP connection (Linux /proc)."""
    owner_of_inode: dict[str, int] = {}
    for pid in _children(parent):
        with_fds = Path(f"/proc/{pid}/fd")
        for fd in with_fds.iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                owner_of_inode[target[8:-1]] = pid
    owners = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local_port, remote_port = int(fields[1].split(":")[1], 16), int(fields[2].split(":")[1], 16)
            if local_port == server_port and fields[9] in owner_of_inode:
                owners[remote_port] = owner_of_inode[fields[9]]
    return owners


async def closed_with(ws: ClientConnection) -> tuple[int, str] | None:
    try:
        async with asyncio.timeout(LIVENESS):
            while True:
                await ws.recv()
    except ConnectionClosed as exc:
        return (exc.rcvd.code, exc.rcvd.reason) if exc.rcvd else None


@pytest.fixture
async def two_workers(pg_db: str, tmp_path: Path) -> AsyncIterator[ServerProcess]:
    env = server_env(pg_db, REDIS_URL, tmp_path / "data", API_WORKERS="2")
    migrate(env)
    server = ServerProcess(env).start()
    try:
        yield server
    finally:
        server.stop()


async def test_sigterm_to_the_parent_drains_every_worker_with_1012(two_workers: ServerProcess) -> None:
    server = two_workers
    assert server.proc is not None
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as api, AsyncExitStack() as stack:
        alice = await person(api, "alice")
        # Connect until both workers hold sockets (the kernel hands each connection to whichever accepts first;
        # on a loaded machine the second worker may still be starting while the first takes them all). Beyond
        # a few on one worker, a connection is closed again, so the wait is bounded by time, not by sockets.
        sockets: list[ClientConnection] = []
        owners: dict[int, int] = {}
        async with asyncio.timeout(LIVENESS):
            while len({owners.get(ws.local_address[1]) for ws in sockets}) < 2:
                ws = await stack.enter_async_context(connect(server.ws_url))
                await ws.send(orjson.dumps({"op": "auth", "ref": "1", "token": alice.token}).decode())
                reply = orjson.loads(await ws.recv())
                assert reply.get("ok") is not False and reply.get("op") != "error", reply
                owners = worker_of_each_client(server.port, server.proc.pid)
                mine = owners[ws.local_address[1]]
                if sum(owners.get(s.local_address[1]) == mine for s in sockets) >= 8:
                    await ws.close()
                    continue
                sockets.append(ws)
        assert all(ws.local_address[1] in owners for ws in sockets)

        # A request in flight: its headers and half its body are in; the rest comes once the sockets are closed.
        body = f"username={alice.email}&password=correct+horse+battery".encode()
        half_sent, go = asyncio.Event(), asyncio.Event()

        async def slowly() -> AsyncIterator[bytes]:
            yield body[:10]
            half_sent.set()  # httpx asks for more only once the first part is written
            await go.wait()
            yield body[10:]

        slow = await stack.enter_async_context(httpx.AsyncClient(base_url=server.url, timeout=LIVENESS))
        assert (await slow.get("/health")).status_code == 200  # the connection is accepted by a worker
        in_flight = asyncio.create_task(slow.post(
            "/auth/token", content=slowly(),
            headers={"Content-Type": "application/x-www-form-urlencoded", "Content-Length": str(len(body))}))
        await half_sent.wait()

        server.proc.send_signal(signal.SIGTERM)
        closes = await asyncio.gather(*(closed_with(ws) for ws in sockets))
        by_worker = [(owners[ws.local_address[1]], close) for ws, close in zip(sockets, closes, strict=True)]
        # The reason tells the drain (each socket given what was queued for it, then closed by the app) from
        # uvicorn's own 1012, sent at once and without one.
        assert closes == [(1012, "server restarting")] * len(sockets), f"(worker, close): {by_worker}"
        go.set()
        finished = await in_flight
        assert finished.status_code == 200 and finished.json()["accessToken"]
        assert server.proc.wait(LIVENESS) == 0
        assert "Traceback" not in server.log()
