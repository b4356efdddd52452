"""The fuzz tests' own server: an app on a PostgreSQL database of its own, reached in-process the way schemathesis
reaches ASGI apps (its lifespan runs on schemathesis's event-loop thread), with a regular user and an
administrator who stay signed in whatever the fuzzer does to their sessions."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import asyncpg  # type: ignore[import-untyped]
import pytest
from schemathesis.python import asgi
from starlette.applications import Starlette

from persistence import migrate
from persistence.database import create_engine
from server.app import create_app
from server.settings import normalize_database_url
from tests.conftest import fresh_pg_database, make_settings

PASSWORD = "correct horse battery"
ROLES = ("user", "admin")


@pytest.fixture(scope="session")
async def fuzz_database() -> AsyncIterator[str]:
    """A migrated PostgreSQL database for the fuzzed app alone (nothing else wipes it mid-run)."""
    async with fresh_pg_database("fuzz") as url:
        engine = create_engine(normalize_database_url(url))
        try:
            await migrate.upgrade(engine)
        finally:
            await engine.dispose()
        yield url


@pytest.fixture(scope="session")
def fuzz_app(fuzz_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Starlette]:
    # Login limits out of the way: the fuzzer signs in hundreds of times from one address, and a 429 before the
    # form is parsed would hide the route from it.
    settings = make_settings(fuzz_database, tmp_path_factory.mktemp("fuzz"),
                             login_rate_per_account=10**9, login_rate_per_ip=10**9)
    app = create_app(settings)
    try:
        yield app
    finally:
        # The lifespan schemathesis started (engine, hub, embedded jobs) ends before the database is dropped.
        asgi.shutdown_lifespans()


class ErrorLog(logging.Handler):
    """Every record at ERROR or above that the server's loggers emit while the fuzz runs."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def take(self) -> list[str]:
        out = [self.format(r) for r in self.records]
        self.records.clear()
        return out


@pytest.fixture(scope="session")
def server_errors() -> Iterator[ErrorLog]:
    handler = ErrorLog()
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    logger = logging.getLogger("conversme")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


@dataclass
class FuzzAccount:
    role: str
    email: str = ""
    token: str = ""
    renewals: int = 0

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class FuzzApi:
    """The fuzzed app, a requests session into it (schemathesis's in-process ASGI client) and the two accounts."""

    app: Starlette
    client: asgi.ASGIClient
    database_url: str
    accounts: dict[str, FuzzAccount] = field(default_factory=dict)

    def sign_up(self, role: str) -> FuzzAccount:
        handle = f"fuzz_{role}_{uuid.uuid4().hex[:8]}"
        account = self.accounts.setdefault(role, FuzzAccount(role))
        account.email = f"{handle}@example.com"
        r = self.client.post("/users", json={"email": account.email, "password": PASSWORD, "name": role.title(),
                                             "handle": handle})
        assert r.status_code == 201, r.text
        if role == "admin":
            _run_async(_promote(self.database_url, uuid.UUID(r.json()["id"])))
        self.sign_in(account)
        return account

    def sign_in(self, account: FuzzAccount) -> bool:
        r = self.client.post("/auth/token", data={"username": account.email, "password": PASSWORD})
        if r.status_code != 200:
            return False
        account.token = r.json()["accessToken"]
        return True

    def keep_signed_in(self) -> None:
        """After a case that may have ended a session (logout, revoked sessions, a deleted account): sign in
        again, or make the account anew."""
        for account in self.accounts.values():
            if self.client.get("/users/me", headers=account.headers).status_code == 200:
                continue
            account.renewals += 1
            if not self.sign_in(account):
                self.sign_up(account.role)


async def _promote(url: str, user_id: uuid.UUID) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("UPDATE users SET is_admin = true WHERE id = $1", user_id)
    finally:
        await conn.close()


def _run_async(coro: object) -> None:
    # This thread's event loop belongs to pytest-asyncio and the app's to schemathesis: a short-lived loop of its own.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, coro).result()  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def fuzz_api(fuzz_app: Starlette, fuzz_database: str) -> Iterator[FuzzApi]:
    with asgi.get_client(cast(Any, fuzz_app)) as client:
        api = FuzzApi(fuzz_app, client, fuzz_database)
        for role in ROLES:
            api.sign_up(role)
        yield api
