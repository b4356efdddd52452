"""A private Redis Cluster (three masters, a replica each) with two server processes, a worker and a scheduler
on it, sharing one PostgreSQL database. The failover test kills a master of *this* cluster: each module that
kills starts its own."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.cluster.nodes import PrivateCluster
from tests.conftest import fresh_pg_database
from tests.jobs.conftest import FAST, JobProcess
from tests.realtime.harness import ServerProcess, migrate, server_env


@dataclass
class OnCluster:
    redis: PrivateCluster
    env: dict[str, str]
    database_url: str
    a: ServerProcess
    b: ServerProcess
    jobs: list[JobProcess] = field(default_factory=list)


def start_stack(redis: PrivateCluster, database_url: str, data: Path, **extra: str) -> OnCluster:
    env = server_env(database_url, redis.url, data, **FAST, **extra)
    migrate(env)
    stack = OnCluster(redis, env, database_url, ServerProcess(env), ServerProcess(env))
    stack.a.start()
    stack.b.start()
    return stack


def stop_stack(stack: OnCluster) -> None:
    for proc in stack.jobs:
        proc.stop()
    stack.a.stop(sig=9)
    stack.b.stop(sig=9)


@pytest.fixture(scope="module")
def redis_cluster() -> Iterator[PrivateCluster]:
    cluster = PrivateCluster()
    try:
        yield cluster.start()
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
async def on_cluster(redis_cluster: PrivateCluster, tmp_path_factory: pytest.TempPathFactory
                     ) -> AsyncIterator[OnCluster]:
    async with fresh_pg_database("conversme_rc") as db_url:
        # Three failed logins per account (the limit is shared through the cluster, whichever instance counts).
        stack = start_stack(redis_cluster, db_url, tmp_path_factory.mktemp("rc"), LOGIN_RATE_PER_ACCOUNT="3")
        try:
            stack.jobs += [JobProcess("worker", stack.env).start(), JobProcess("scheduler", stack.env).start()]
            yield stack
        finally:
            stop_stack(stack)
