"""Two real server processes sharing PostgreSQL and Redis (and one embedded-default server)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.conftest import REDIS_URL, fresh_pg_database
from tests.realtime.harness import ServerProcess, migrate, run_embedded, server_env


@dataclass
class Cluster:
    a: ServerProcess
    b: ServerProcess
    env: dict[str, str]

    def api(self, server: ServerProcess | None = None) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=(server or self.a).url, timeout=30)


@pytest.fixture(scope="module")
async def pg_db() -> AsyncIterator[str]:
    async with fresh_pg_database("conversme_rt") as url:
        yield url


@pytest.fixture(scope="module")
def cluster(pg_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    # Callers are remembered for an hour: whatever these tests see change across instances (a session ended, a
    # user changed) can only have come from the announcement, never from an entry expiring.
    env = server_env(pg_db, REDIS_URL, tmp_path_factory.mktemp("cluster"), WS_AUTH_TIMEOUT="2",
                     AUTH_CACHE_SECONDS="3600")
    migrate(env)
    a, b = ServerProcess(env).start(), ServerProcess(env).start()
    try:
        yield Cluster(a, b, env)
    finally:
        a.stop()
        b.stop()


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The embedded default: SQLite file, memory:// hub, one process."""
    with run_embedded(tmp_path_factory.mktemp("embedded")) as server:
        yield server
