"""Seeding: a deterministic, usable admin; topics and the market library; a second run creates nothing."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import func, select

from handlers import seed
from handlers.market.library import COLLECTIONS
from persistence.models import Collection, Directory, Process, Step, SubStep, Topic, User, UserPreferences
from tests.conftest import Backend

MODELS = (User, UserPreferences, Topic, Collection, Directory, Process, Step, SubStep)


async def _counts(backend: Backend) -> dict[str, int]:
    async with backend.state.sessionmaker() as db:
        return {m.__tablename__: await db.scalar(select(func.count()).select_from(m)) or 0 for m in MODELS}


async def _run(backend: Backend, spec: seed.AdminSpec) -> seed.SeedReport:
    async with backend.state.sessionmaker.begin() as db:
        return await seed.initialize(db, backend.state.passwords, spec)


async def test_initialize_twice_creates_nothing_the_second_time(client: httpx.AsyncClient,
                                                                backend: Backend) -> None:
    spec = seed.AdminSpec(email="Admin@Convers.me", password="a-strong-password", debug=False)
    first = await _run(backend, spec)
    assert first.actions and first.generated_password is None
    counts = await _counts(backend)
    templates = sum(len(f.templates) for c in COLLECTIONS for f in c.folders)
    assert counts["users"] == 1 and counts["user_preferences"] == 1
    assert counts["topics"] == len(seed.TOPICS)
    assert counts["collections"] == len(COLLECTIONS) == 3
    assert counts["directories"] == sum(len(c.folders) for c in COLLECTIONS)
    assert counts["processes"] == templates
    second = await _run(backend, spec)
    assert second.actions == [] and second.lines() == ["nothing to do: already initialized"]
    assert await _counts(backend) == counts
    # The admin can sign in with the configured password and is an admin.
    r = await client.post("/auth/token", data={"username": "admin@convers.me", "password": "a-strong-password"})
    assert r.status_code == 200
    me = (await client.get("/users/me", headers={"Authorization": f"Bearer {r.json()['accessToken']}"})).json()
    assert me["isAdmin"] is True


async def test_library_rows_are_marked_and_owned_by_nobody(client: httpx.AsyncClient, backend: Backend) -> None:
    async with backend.state.sessionmaker.begin() as db:
        assert await seed.initialize_library(db)
        assert await seed.initialize_library(db) == []
    async with backend.state.sessionmaker() as db:
        collections = (await db.scalars(select(Collection))).all()
        assert all(c.is_library and c.created_by_id is None for c in collections)
        assert {c.title for c in collections} == {"Startup Success Toolkit", "Product Discovery Essentials",
                                                  "Design & Research Excellence"}
        meta: Any = collections[0].collection_metadata
        assert meta["author"]["name"] and meta["categories"]
        dirs = (await db.scalars(select(Directory))).all()
        assert all(d.is_template and d.collection_id is not None and d.created_by_id is None for d in dirs)
        procs = (await db.scalars(select(Process))).all()
        assert all(p.is_template and p.created_by_id is None and p.process_metadata["source"] == "library"
                   for p in procs)


async def test_existing_user_is_promoted_and_missing_password_is_generated(client: httpx.AsyncClient,
                                                                          backend: Backend) -> None:
    r = await client.post("/users", json={"email": "boss@example.com", "password": "long-enough-pw",
                                          "name": "Boss", "handle": "admin"})
    assert r.status_code == 201
    report = await _run(backend, seed.AdminSpec(email="BOSS@example.com", password=None, debug=False))
    assert "made BOSS@example.com an admin" in report.actions and report.generated_password is None
    async with backend.state.sessionmaker() as db:
        boss = await db.scalar(select(User).where(User.email == "boss@example.com"))
        assert boss is not None and boss.is_admin
    # A new admin without a configured password outside DEBUG gets a random one, reported once.
    report = await _run(backend, seed.AdminSpec(email="root@example.com", password=None, debug=False))
    assert report.generated_password and any("shown once" in line for line in report.lines())
    r = await client.post("/auth/token", data={"username": "root@example.com",
                                               "password": report.generated_password})
    assert r.status_code == 200
    async with backend.state.sessionmaker() as db:
        root = await db.scalar(select(User).where(User.email == "root@example.com"))
        assert root is not None and root.handle != "admin"  # "admin" was taken: a suffixed handle instead
