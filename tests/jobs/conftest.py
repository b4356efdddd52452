"""Real job processes: `conversme serve`, `conversme worker` and `conversme scheduler` sharing PostgreSQL and
a Redis key space of their own."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import REDIS_URL, fresh_pg_database
from tests.realtime.harness import BIN, ServerProcess, migrate, server_env, track
from tests.waiting import LIVENESS

JOBS_REDIS_URL = REDIS_URL

# Redelivery after 4 s (jobs time out before that, so a live worker's job is never taken over).
FAST = {"JOB_REDELIVER_SECONDS": "4", "SCHEDULER_INTERVAL": "0.5", "JOB_RETRY_BASE": "0.2",
        "JOB_MAX_RETRIES": "2", "WORKER_CONCURRENCY": "8", "JOB_TIMEOUT": "3.5"}


@dataclass
class JobProcess:
    """One `conversme worker` or `conversme scheduler`."""

    role: str
    env: dict[str, str]
    name: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    def start(self) -> JobProcess:
        self.log_path = Path(self.env["DATA_DIR"]) / f"{self.role}-{self.name}.log"
        log = self.log_path.open("ab")
        self.proc = track(subprocess.Popen([str(BIN), self.role, "--name", f"{self.role}-{self.name}"],
                                           env=self.env, stdout=log, stderr=subprocess.STDOUT))
        return self

    @property
    def worker_id(self) -> str:
        return f"{self.role}-{self.name}"

    def kill(self) -> None:
        """SIGKILL: no cleanup, no acknowledgement — as when a machine dies."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self, timeout: float = 20.0) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.terminate()
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(5)

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path and self.log_path.exists() else ""


@dataclass
class JobCluster:
    env: dict[str, str]
    api: ServerProcess
    database_url: str
    started: list[JobProcess] = field(default_factory=list)

    def worker(self) -> JobProcess:
        proc = JobProcess("worker", self.env).start()
        self.started.append(proc)
        return proc

    def scheduler(self) -> JobProcess:
        proc = JobProcess("scheduler", self.env).start()
        self.started.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.started:
            proc.stop()
        self.started.clear()


@pytest.fixture(scope="module")
async def jobs_db() -> AsyncIterator[str]:
    async with fresh_pg_database("conversme_jobs") as url:
        yield url


@pytest.fixture(scope="module")
def jobs_cluster(jobs_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[JobCluster]:
    data = tmp_path_factory.mktemp("jobs")
    env = server_env(jobs_db, JOBS_REDIS_URL, data, **FAST)
    migrate(env)
    api = ServerProcess(env).start()
    cluster = JobCluster(env, api, jobs_db)
    try:
        yield cluster
    finally:
        cluster.stop_all()
        api.stop()


@pytest.fixture
def cluster(jobs_cluster: JobCluster) -> Iterator[JobCluster]:
    """The module's cluster; the job processes a test starts are stopped after it."""
    try:
        yield jobs_cluster
    finally:
        jobs_cluster.stop_all()


def wait_until(predicate: object, timeout: float = LIVENESS, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(predicate) and predicate():
            return
        time.sleep(interval)
    raise AssertionError("condition not met in time")
