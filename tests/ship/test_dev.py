"""`conversme dev`: init, then the API, a worker and a scheduler together, a log file per process, prefixed
output, and nothing left running after SIGTERM (or even after the supervisor is killed)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.conftest import REDIS_URL, SECRET, redis_prefix
from tests.realtime.conftest import pg_db  # noqa: F401  (fixture reused here)
from tests.realtime.harness import BIN, free_port

pytestmark = pytest.mark.slow

DEV_REDIS_URL = REDIS_URL
ADMIN_PASSWORD = "dev-admin-password"


def alive(pid: int) -> bool:
    """Running (a zombie waiting to be reaped counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def eventually(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out: {what}")
        time.sleep(0.2)


@dataclass
class Dev:
    proc: subprocess.Popen[str]
    port: int
    data: Path
    lines: list[str] = field(default_factory=list)

    def read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def output(self) -> str:
        return "\n".join(self.lines)

    def pids(self) -> dict[str, int]:
        return {m.group(1): int(m.group(2)) for m in
                (re.search(r"started (\w+) \(pid (\d+)\)", line) for line in self.lines) if m}


def start_dev(tmp_path: Path, env: dict[str, str], *args: str) -> Dev:
    port = free_port()
    proc = subprocess.Popen([str(BIN), "dev", "--port", str(port), *args], cwd=tmp_path, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    dev = Dev(proc, port, Path(env["DATA_DIR"]))
    threading.Thread(target=dev.read, daemon=True).start()
    try:
        eventually(lambda: any("ready: http://127.0.0.1" in line for line in dev.lines) or proc.poll() is not None,
                   90, "conversme dev ready")
    except AssertionError:
        proc.kill()
        raise AssertionError(dev.output()[-4000:]) from None
    assert proc.poll() is None, dev.output()[-4000:]
    return dev


def base_env(data: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_", "BROKER_", "OPENAI_"))}
    env.pop("DEBUG", None)  # `conversme dev` turns DEBUG on by itself
    env.update({"SECRET_KEY": SECRET, "DATA_DIR": str(data), "ARGON2_TIME_COST": "1", "ARGON2_MEMORY_COST": "1024",
                "ARGON2_PARALLELISM": "1", "SHUTDOWN_TIMEOUT": "6", "SCHEDULER_INTERVAL": "0.5",
                "ADMIN_EMAIL": "admin@example.com", "ADMIN_PASSWORD": ADMIN_PASSWORD, "LOG_LEVEL": "info",
                "REDIS_PREFIX": redis_prefix()})
    env.update(extra)
    return env


def test_dev_runs_api_worker_and_scheduler_and_sigterm_stops_them_all(
        tmp_path: Path, pg_db: str) -> None:  # noqa: F811
    data = tmp_path / "data"
    dev = start_dev(tmp_path, base_env(data, DATABASE_URL=pg_db, REDIS_URL=DEV_REDIS_URL))
    try:
        pids = dev.pids()
        assert {"init", "api", "worker", "scheduler"} <= set(pids), dev.output()
        assert not alive(pids["init"])  # init ran first and is done
        for name in ("api", "worker", "scheduler"):
            assert alive(pids[name]), name
        base = f"http://127.0.0.1:{dev.port}"
        assert httpx.get(f"{base}/health", timeout=5).status_code == 200
        assert httpx.get(f"{base}/ready", timeout=5).status_code == 200  # init migrated the database
        token = httpx.post(f"{base}/auth/token", data={"username": "admin@example.com",
                                                       "password": ADMIN_PASSWORD}, timeout=10).json()["accessToken"]

        def worker_alive() -> bool:
            jobs = httpx.get(f"{base}/admin/jobs", headers={"Authorization": f"Bearer {token}"}, timeout=5).json()
            return any(w["alive"] and w["pid"] == pids["worker"] for w in jobs["workers"])

        eventually(worker_alive, 30, "the worker's heartbeat in /admin/jobs")
        # Prefixed lines on the terminal, one log file per process.
        out = dev.output()
        for name in ("api", "worker", "scheduler"):
            assert re.search(rf"^{name}\s*\| ", out, re.M), name
        logs = data / "logs"
        assert "Uvicorn running" in (logs / "api.log").read_text()
        assert "worker" in (logs / "worker.log").read_text()
        assert "scheduler" in (logs / "scheduler.log").read_text()
        assert "created admin" in (logs / "init.log").read_text()
    finally:
        dev.proc.send_signal(signal.SIGTERM)
        code = dev.proc.wait(60)
    assert code == 0, dev.output()[-3000:]
    for name, pid in dev.pids().items():
        assert not alive(pid), f"{name} (pid {pid}) outlived `conversme dev`"
    assert "stopping worker" in dev.output() and "worker exited with 0" in dev.output()


def test_children_stop_even_when_the_supervisor_is_killed(tmp_path: Path) -> None:
    """SIGKILL leaves the supervisor no chance to clean up: the children still get SIGTERM (PDEATHSIG)."""
    dev = start_dev(tmp_path, base_env(tmp_path / "data"), "--no-init")
    pids = dev.pids()
    assert set(pids) == {"api"}, dev.output()  # the embedded default: the API runs jobs itself
    assert "embedded default" in dev.output()
    dev.proc.kill()
    dev.proc.wait(10)
    eventually(lambda: not alive(pids["api"]), 30, "the API to stop after its supervisor died")


def test_a_child_that_dies_stops_the_rest(tmp_path: Path, pg_db: str) -> None:  # noqa: F811
    dev = start_dev(tmp_path, base_env(tmp_path / "data", DATABASE_URL=pg_db, REDIS_URL=DEV_REDIS_URL))
    pids = dev.pids()
    os.kill(pids["scheduler"], signal.SIGKILL)
    code = dev.proc.wait(60)
    assert code != 0
    assert "scheduler exited" in dev.output()
    for name, pid in pids.items():
        assert not alive(pid), name
