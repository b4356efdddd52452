"""Test fixtures: the API against a real SQLite file and a real PostgreSQL database, side by side.

PostgreSQL is required: when it cannot be reached the tests fail, they do not skip.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest
from sqlalchemy import text, update
from sqlalchemy.exc import DBAPIError
from starlette.applications import Starlette

from persistence.models import Base, User
from server.app import create_app
from server.settings import Settings, normalize_database_url
from server.state import AppState

PG_ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
SECRET = "test-secret-key-that-is-long-enough-0123456789"
# This run's (and this xdist worker's) own Redis key space: every key and channel the tests or the servers they
# start create begins with it, so runs sharing one Redis never meet, and the session deletes it at the end.
RUN_ID = uuid.uuid4().hex[:10]
REDIS_PREFIX = f"cmtest:{RUN_ID}:"
# Databases made by this run are named `<prefix>_<RUN_ID>_<random>`; the session drops them at the end.
PG_PREFIX = "cmtest"


SHARED_WORLD = "tests/access/"  # one package-scoped world for both access matrices: built once, on one worker


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under `--dist loadgroup` (scripts/test.sh) a module of real server processes stays on one worker: its
    processes start once, and a test may read what the module's earlier tests caused. Every other test goes to
    whichever worker is free."""
    for item in items:
        if item.nodeid.startswith(SHARED_WORLD):
            item.add_marker(pytest.mark.xdist_group(SHARED_WORLD))
        elif item.get_closest_marker("slow") is not None:
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))


def redis_prefix() -> str:
    """A fresh key space inside this run's: for one server cluster or one test."""
    return f"{REDIS_PREFIX}{uuid.uuid4().hex[:8]}:"


def _pg_url(dbname: str) -> str:
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{dbname}"


@contextlib.asynccontextmanager
async def fresh_pg_database(prefix: str) -> AsyncIterator[str]:
    """A new, empty PostgreSQL database (its URL), dropped afterwards. Fails — never skips — without PostgreSQL."""
    name = f"{PG_PREFIX}_{RUN_ID}_{prefix}_{uuid.uuid4().hex[:8]}"
    try:
        conn = await asyncpg.connect(PG_ADMIN_URL)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(f"PostgreSQL is required for the tests and is not reachable at {PG_ADMIN_URL}: {exc}")
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    try:
        yield _pg_url(name)
    finally:
        conn = await asyncpg.connect(PG_ADMIN_URL)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


async def _drop_run_databases() -> None:
    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        names = await conn.fetch("SELECT datname FROM pg_database WHERE datname LIKE $1",
                                 f"{PG_PREFIX}_{RUN_ID}_%")
        for row in names:
            await conn.execute(f'DROP DATABASE IF EXISTS "{row["datname"]}" WITH (FORCE)')
    finally:
        await conn.close()


async def _delete_run_keys() -> None:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        batch: list[bytes] = []
        async for key in client.scan_iter(match=f"{REDIS_PREFIX}*", count=1000):
            batch.append(key)
            if len(batch) >= 500:
                await client.unlink(*batch)
                batch.clear()
        if batch:
            await client.unlink(*batch)
    finally:
        await client.aclose()


@pytest.fixture(scope="session", autouse=True)
async def _run_cleanup() -> AsyncIterator[None]:
    """Whatever this run left behind in the shared services — a database a killed fixture did not drop, keys of
    its servers — goes at the end; nothing of another run is touched."""
    yield
    await _drop_run_databases()
    await _delete_run_keys()


@pytest.fixture(scope="session")
async def pg_database() -> AsyncIterator[str]:
    """A fresh PostgreSQL database for this test session, dropped at the end."""
    async with fresh_pg_database("conversme_test") as url:
        yield url


def make_settings(database_url: str, tmp: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = dict(
        debug=False, database_url=normalize_database_url(database_url), secret_key=SECRET,
        data_dir=tmp, upload_dir=tmp / "uploads", redis_url="memory://",
        argon2_time_cost=1, argon2_memory_cost=1024, argon2_parallelism=1,
        frontend_url="http://localhost:3000", login_rate_per_account=5, login_rate_per_ip=50,
    )
    values.update(overrides)
    return Settings(**values)


@dataclass
class Backend:
    name: str
    app: Starlette

    @property
    def state(self) -> AppState:
        state: AppState = self.app.state.conversme
        return state


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
async def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                  pg_database: str) -> AsyncIterator[Backend]:
    tmp = tmp_path_factory.mktemp(request.param)
    url = f"sqlite:///{tmp / 'test.db'}" if request.param == "sqlite" else pg_database
    settings = make_settings(url, tmp, auto_migrate=True)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        state: AppState = app.state.conversme
        if not settings.is_sqlite:
            from persistence import migrate

            await migrate.upgrade(state.engine)
        yield Backend(request.param, app)


async def _wipe(state: AppState) -> None:
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    for attempt in range(5):
        try:
            async with state.engine.begin() as conn:
                if state.engine.dialect.name == "postgresql":
                    await conn.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " CASCADE"))
                else:
                    for table in tables:
                        await conn.execute(text(f'DELETE FROM "{table}"'))
            return
        except DBAPIError as exc:
            # An earlier test's in-process job (the app runs its jobs itself) may be writing while TRUNCATE takes
            # its locks: PostgreSQL breaks the deadlock by failing one side; wipe again.
            if "deadlock" not in str(exc).lower() or attempt == 4:
                raise


@pytest.fixture
async def client(backend: Backend) -> AsyncIterator[httpx.AsyncClient]:
    """A client on a clean database (every table emptied before the test)."""
    await _wipe(backend.state)
    limiter: Any = backend.state.limiter
    if hasattr(limiter, "_windows"):
        limiter._windows.clear()
    transport = httpx.ASGITransport(app=backend.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


@dataclass
class Account:
    id: str
    email: str
    password: str
    token: str
    refresh_token: str
    handle: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def sign_up(client: httpx.AsyncClient, name: str = "user", *, admin: bool = False,
                  backend: Backend | None = None) -> Account:
    handle = f"{name}_{uuid.uuid4().hex[:6]}"
    email = f"{handle}@example.com"
    password = "correct horse battery"
    r = await client.post("/users", json={"email": email, "password": password, "name": name.title(),
                                          "handle": handle})
    assert r.status_code == 201, r.text
    user_id = r.json()["id"]
    if admin:
        assert backend is not None
        async with backend.state.sessionmaker.begin() as db:
            await db.execute(update(User).where(User.id == uuid.UUID(user_id)).values(is_admin=True))
    r = await client.post("/auth/token", data={"username": email, "password": password})
    assert r.status_code == 200, r.text
    body = r.json()
    return Account(user_id, email, password, body["accessToken"], body["refreshToken"], handle)


MakeUser = Callable[..., Awaitable[Account]]


@pytest.fixture
def make_user(client: httpx.AsyncClient, backend: Backend) -> MakeUser:
    async def make(name: str = "user", admin: bool = False) -> Account:
        return await sign_up(client, name, admin=admin, backend=backend)
    return make


@pytest.fixture
def tmp_settings(tmp_path: Path) -> Iterator[Settings]:
    yield make_settings(f"sqlite:///{tmp_path / 'x.db'}", tmp_path)
