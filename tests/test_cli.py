"""The `conversme` command as a user runs it: init (idempotent), serve on the embedded default, admin login."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.waiting import LIVENESS

# Real server processes: left out of the quick loop (./scripts/test.sh -m "not slow").
pytestmark = pytest.mark.slow


BIN = Path(sys.executable).parent / "conversme"


def _env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DEBUG"}}
    env.update({"DATA_DIR": str(tmp / "data"), "ARGON2_MEMORY_COST": "1024", "ARGON2_TIME_COST": "1",
                "ARGON2_PARALLELISM": "1"}, **extra)
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_init_is_idempotent_and_generates_a_password_outside_debug(tmp_path: Path) -> None:
    env = _env(tmp_path, SECRET_KEY="x" * 40)
    first = subprocess.run([BIN, "init"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert "created admin admin@convers.me" in first.stdout
    assert "admin password (shown once" in first.stdout
    second = subprocess.run([BIN, "init"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0 and "nothing to do" in second.stdout


def test_serve_refuses_to_start_without_secret_outside_debug(tmp_path: Path) -> None:
    r = subprocess.run([BIN, "serve", "--port", str(_free_port())], env=_env(tmp_path), cwd=tmp_path,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "SECRET_KEY" in r.stderr


def test_serve_on_embedded_default_and_admin_can_log_in(tmp_path: Path) -> None:
    env = _env(tmp_path, DEBUG="true")
    assert subprocess.run([BIN, "init"], env=env, cwd=tmp_path, capture_output=True, timeout=120).returncode == 0
    port = _free_port()
    proc = subprocess.Popen([BIN, "serve", "--port", str(port)], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + LIVENESS
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.2)
        r = httpx.post(f"{base}/auth/token", data={"username": "admin@convers.me", "password": "admin1234"})
        assert r.status_code == 200, r.text
        me = httpx.get(f"{base}/users/me", headers={"Authorization": f"Bearer {r.json()['accessToken']}"})
        assert me.json()["isAdmin"] is True
        assert httpx.get(f"{base}/docs").status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=20)
