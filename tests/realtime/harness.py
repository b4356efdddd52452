"""Real server processes for realtime tests: uvicorn via `conversme serve`, sharing PostgreSQL and Redis."""

from __future__ import annotations

import atexit
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import SECRET, redis_prefix
from tests.waiting import LIVENESS

BIN = Path(sys.executable).parent / "conversme"

# Every process a test started, killed when this test process exits: a fixture that fails half-way through its
# setup (a second server that does not come up) must not leave the first one running after the run.
_STARTED: list[subprocess.Popen[bytes]] = []


def _kill_leftovers() -> None:
    for proc in _STARTED:
        if proc.poll() is None:
            proc.kill()


atexit.register(_kill_leftovers)


def track(proc: subprocess.Popen[bytes]) -> subprocess.Popen[bytes]:
    _STARTED.append(proc)
    return proc


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def server_env(database_url: str, redis_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of one group of server/worker processes: they share `REDIS_PREFIX`, a key space of
    their own inside the test run's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_", "OPENAI_", "BROKER_"))}
    env.update({
        "DATABASE_URL": database_url, "REDIS_URL": redis_url, "REDIS_PREFIX": redis_prefix(),
        "SECRET_KEY": SECRET, "DATA_DIR": str(data_dir),
        "ARGON2_TIME_COST": "1", "ARGON2_MEMORY_COST": "1024", "ARGON2_PARALLELISM": "1",
        "LOGIN_RATE_PER_IP": "100000", "LOGIN_RATE_PER_ACCOUNT": "1000", "FRONTEND_URL": "http://localhost:3000",
        "LOG_LEVEL": "warning", "SHUTDOWN_TIMEOUT": "6",
    })
    env.update(extra)
    return env


def wait_answering(proc: subprocess.Popen[bytes], url: str, log_path: Path, timeout: float, what: str) -> None:
    """Return once `url` answers 200; raise with the end of the process's log if it exits or never answers."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited: {log_path.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start: {log_path.read_text()[-3000:]}")
        time.sleep(0.1)


@dataclass
class ServerProcess:
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    command: tuple[str, ...] = (str(BIN), "serve")  # started with `--port P` added

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def start(self, timeout: float = LIVENESS) -> ServerProcess:
        self.log_path = Path(self.env["DATA_DIR"]) / f"server-{self.port}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.proc = track(subprocess.Popen([*self.command, "--port", str(self.port)], env=self.env,
                                           stdout=log, stderr=subprocess.STDOUT))
        wait_answering(self.proc, f"{self.url}/health", self.log_path, timeout, "server")
        return self

    def stop(self, sig: int = 15, timeout: float = 20.0) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(5)

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path and self.log_path.exists() else ""


@contextmanager
def run_embedded(data_dir: Path, **extra: str) -> Iterator[ServerProcess]:
    """A server on the embedded default (SQLite file under `data_dir`, memory:// hub and jobs, one process)."""
    env = server_env("", "", data_dir, **extra)
    env.pop("DATABASE_URL")
    env.pop("REDIS_URL")
    server = ServerProcess(env).start()
    try:
        yield server
    finally:
        server.stop()


def migrate(env: dict[str, str]) -> None:
    r = subprocess.run([str(BIN), "migrate"], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


@dataclass
class Person:
    id: str
    email: str
    token: str
    handle: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def person(api: httpx.AsyncClient, name: str = "user") -> Person:
    handle = f"{name}_{uuid.uuid4().hex[:8]}"
    email = f"{handle}@example.com"
    r = await api.post("/users", json={"email": email, "password": "correct horse battery", "name": name,
                                       "handle": handle})
    assert r.status_code == 201, r.text
    r2 = await api.post("/auth/token", data={"username": email, "password": "correct horse battery"})
    assert r2.status_code == 200, r2.text
    return Person(r.json()["id"], email, r2.json()["accessToken"], handle)


async def event_with(api: httpx.AsyncClient, owner: Person, *members: Person, template: bool = True) -> dict[str, Any]:
    """An event owned by `owner` with `members` as participants; with a checklist of two steps."""
    body: dict[str, Any] = {"title": "Standup", "startTime": "2030-01-01T09:00:00Z", "endTime": "2030-01-01T10:00:00Z",
                            "participantIds": [m.id for m in members]}
    if template:
        r = await api.post("/templates", headers=owner.headers, json={
            "title": "Checklist", "steps": [{"content": "one", "subSteps": [{"content": "a"}]}, {"content": "two"}]})
        assert r.status_code in (200, 201), r.text
        body["templateProcessId"] = r.json()["id"]
    r = await api.post("/events", headers=owner.headers, json=body)
    assert r.status_code in (200, 201), r.text
    event: dict[str, Any] = r.json()
    for m in members:  # invited participants confirm
        r = await api.put(f"/events/{event['id']}/participants/{m.id}", headers=m.headers,
                          json={"status": "confirmed"})
        assert r.status_code == 200, r.text
    return event
