"""Private Redis and PostgreSQL servers for fault tests: each test starts its own on a free loopback port in its
own directory, and kills, pauses or restarts *those* — never the shared services other runs are using.

Waits are on the service itself (a PING, a `pg_isready`), bounded by a liveness timeout, never a fixed sleep."""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from tests.realtime.harness import free_port, track
from tests.waiting import LIVENESS


def _wait(check: object, what: str) -> None:
    deadline = time.monotonic() + LIVENESS
    while True:
        if callable(check) and check():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {LIVENESS:.0f} s waiting for {what}")
        time.sleep(0.02)


class PrivateRedis:
    """`redis-server` on its own port and directory. `persist=True` keeps an RDB file (`snapshot()` writes it),
    so a restart can come back with older data, as a restore from a snapshot does."""

    def __init__(self, data: Path, *, persist: bool = False) -> None:
        self.port = free_port()
        self.data = data
        self.persist = persist
        self.proc: subprocess.Popen[bytes] | None = None
        data.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=5)

    def _ping(self) -> bool:
        try:
            with self.client() as c:
                return bool(c.ping())
        except redis.RedisError:
            return False

    def start(self) -> PrivateRedis:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is required for the fault tests"
        args = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.data),
                "--appendonly", "no", "--save", "", "--dbfilename", "dump.rdb", "--logfile", "redis.log"]
        self.proc = track(subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        _wait(self._ping, f"redis on {self.port}")
        return self

    def snapshot(self) -> None:
        """Write the RDB file now (what a restore would bring back)."""
        with self.client() as c:
            c.save()

    def kill(self) -> None:
        """SIGKILL: gone at once, nothing written."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def restart(self, *, empty: bool = False) -> None:
        """Kill, then start on the same port: from the last snapshot, or empty (`empty=True`)."""
        self.kill()
        if empty:
            (self.data / "dump.rdb").unlink(missing_ok=True)
        self.start()

    def pause(self) -> None:
        """SIGSTOP: connections stay open but nothing answers (a stalled server)."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.resume()
            self.kill()


def _pg_bin() -> Path:
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if versions:
        return versions[-1].parent
    found = shutil.which("initdb")
    assert found, "PostgreSQL's server binaries (initdb, pg_ctl) are required for the fault tests"
    return Path(found).parent


class PrivatePostgres:
    """A PostgreSQL cluster of its own (initdb in `data`, trust auth, loopback, a free port). Runs as the
    `postgres` OS user when the tests run as root (PostgreSQL refuses root)."""

    def __init__(self, data: Path) -> None:
        self.port = free_port()
        self.bin = _pg_bin()
        self._as_postgres = os.geteuid() == 0
        self._owned: Path | None = None
        if self._as_postgres:
            # pytest's tmp_path lies under a root-only directory: the postgres user needs a folder it can reach.
            self._owned = Path(tempfile.mkdtemp(prefix="cmtest-pg-"))
            shutil.chown(self._owned, "postgres")
            self.data = self._owned / "pgdata"
        else:
            self.data = data / "pgdata"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin / args[0]), *args[1:]]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed ({result.returncode}): {result.stderr[-2000:]}")
        return result

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, dbname: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def init(self) -> PrivatePostgres:
        atexit.register(self.destroy)  # also when the test process ends before the test's own cleanup
        self.data.parent.mkdir(parents=True, exist_ok=True)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        return self

    def start(self) -> PrivatePostgres:
        options = (f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.data} "
                   "-c fsync=off -c full_page_writes=off -c max_connections=200")
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.data / "server.log"), "-w",
                  "-t", str(int(LIVENESS)), "start")
        return self

    def createdb(self, name: str) -> str:
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name)
        return self.url(name)

    def stop(self, mode: str = "fast") -> None:
        """`fast`: clean shutdown; `immediate`: like a crash (recovery on the next start)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def restart(self, mode: str = "immediate") -> None:
        self.stop(mode)
        self.start()

    def destroy(self) -> None:
        """Stop (as a crash would) and remove the cluster's files."""
        self.stop("immediate")
        shutil.rmtree(self._owned or self.data, ignore_errors=True)
