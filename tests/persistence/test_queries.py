"""The query functions with logic of their own: keyset paging of the feed, the per-session tail of live
messages, and search text taken literally. Everything else in persistence/ is covered through tests/api."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select, true
from sqlalchemy.ext.asyncio import AsyncSession

from persistence import feed, live, search
from persistence.enums import LiveRole
from persistence.models import LiveContext, LiveMessage, Post, Topic, User
from tests.conftest import Backend

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _user() -> User:
    handle = f"q_{uuid.uuid4().hex[:8]}"
    return User(name=handle, handle=handle, email=f"{handle}@example.com")


async def test_feed_pages_cover_every_post_once_in_order_with_ties(client: httpx.AsyncClient,
                                                                  backend: Backend) -> None:
    async with backend.state.sessionmaker.begin() as db:
        author = _user()
        db.add(author)
        await db.flush()
        # Three posts share one instant: the id breaks the tie, so no page boundary can skip or repeat one.
        stamps = [T0, T0, T0, T0 - timedelta(minutes=1), T0 + timedelta(minutes=1)]
        db.add_all([Post(content=str(i), author_id=author.id, created_at=at) for i, at in enumerate(stamps)])

    async with backend.state.sessionmaker() as db:
        expected = [(p.created_at, p.id) for p in await feed.posts(db, true(), after=None, limit=100)]
        seen: list[tuple[datetime, uuid.UUID]] = []
        cursor = None
        while True:
            page = await feed.posts(db, true(), author_id=author.id, after=cursor, limit=2)
            seen += [(p.created_at, p.id) for p in page]
            if len(page) < 2:
                break
            cursor = seen[-1]

    assert len(expected) == 5
    assert expected == sorted(expected, reverse=True)
    assert seen == expected


async def test_messages_of_keeps_each_sessions_newest_in_seq_order(client: httpx.AsyncClient,
                                                                  backend: Backend) -> None:
    async with backend.state.sessionmaker.begin() as db:
        owner = _user()
        db.add(owner)
        await db.flush()
        long, short = LiveContext(user_id=owner.id), LiveContext(user_id=owner.id)
        db.add_all([long, short])
        await db.flush()
        db.add_all([LiveMessage(context_id=cid, seq=s, role=LiveRole.USER, content=str(s))
                    for cid, seqs in ((long.id, (3, 1, 5, 2, 4)), (short.id, (2, 1))) for s in seqs])
        ids = sorted([long.id, short.id])

    async with backend.state.sessionmaker() as db:
        tail = await live.messages_of(db, ids, 3)
        everything = await live.messages_of(db, ids, None)

    def by_context(rows: Sequence[LiveMessage]) -> list[tuple[uuid.UUID, int]]:
        return [(m.context_id, m.seq) for m in rows]

    expected_tail = {long.id: [3, 4, 5], short.id: [1, 2]}
    assert by_context(tail) == [(cid, s) for cid in ids for s in expected_tail[cid]]
    assert by_context(everything) == [(cid, s) for cid in ids for s in ([1, 2, 3, 4, 5] if cid == long.id
                                                                             else [1, 2])]


async def test_search_text_is_literal(client: httpx.AsyncClient, backend: Backend) -> None:
    async with backend.state.sessionmaker.begin() as db:
        author = _user()
        db.add(author)
        await db.flush()
        db.add_all([Post(content=c, author_id=author.id) for c in ("50% off_now", "500 offXnow", "a\\b")])

    async with backend.state.sessionmaker() as db:
        percent = await search.posts(db, true(), "50% OFF_", offset=0, limit=10)
        backslash = await search.posts(db, true(), "a\\b", offset=0, limit=10)

    assert [p.content for p in percent] == ["50% off_now"]
    assert [p.content for p in backslash] == ["a\\b"]


async def test_statements_straight_on_the_driver_share_the_sessions_transaction(client: httpx.AsyncClient,
                                                                               backend: Backend) -> None:
    """persistence.database.driver_connection(in_transaction=True) begins the session's transaction on the asyncpg
    connection the way SQLAlchemy's adapter does (it relies on the adapter's own lazy BEGIN): what runs on it
    is rolled back and committed with the session, also when SQLAlchemy ran nothing itself."""
    if backend.name != "postgres":
        return
    from persistence.database import driver_connection

    async def insert(db: AsyncSession, name: str) -> None:
        conn = await driver_connection(db, in_transaction=True)
        assert conn.is_in_transaction()
        await conn.execute("INSERT INTO topics (id, name, created_at) VALUES ($1, $2, now())", uuid.uuid4(), name)

    async def stored(name: str) -> bool:
        async with backend.state.sessionmaker() as db:
            return await db.scalar(select(Topic.id).where(Topic.name == name)) is not None

    gone, kept = f"q_{uuid.uuid4().hex[:8]}", f"q_{uuid.uuid4().hex[:8]}"
    async with backend.state.sessionmaker() as db, db.begin():
        await insert(db, gone)
        await db.rollback()
    assert not await stored(gone)
    async with backend.state.sessionmaker() as db, db.begin():
        await insert(db, kept)
        await insert(db, kept + "b")  # a transaction already begun is used as it is
    assert await stored(kept) and await stored(kept + "b")


async def test_a_session_holds_a_connection_from_its_first_statement_to_its_end(client: httpx.AsyncClient,
                                                                               backend: Backend) -> None:
    """persistence.database.holds_connection reads SQLAlchemy's own bookkeeping (a transaction's `_connections`):
    the unit of work skips the commit and the closing greenlet of a session that never held one, and
    straight_connection lends a pooled connection only then. This holds it to SQLAlchemy's behaviour."""
    from persistence.database import close_session, holds_connection, straight_connection

    async with backend.state.sessionmaker() as db:
        assert not holds_connection(db)
        db.add(_user())  # pending, not flushed: still no connection
        assert not holds_connection(db)
        db.expunge_all()
        await db.execute(select(true()))
        assert holds_connection(db)
        await db.commit()
        assert not holds_connection(db)
        await close_session(db)
    if backend.name != "postgres":
        return
    async with backend.state.sessionmaker() as db:
        async with straight_connection(db, alone=True) as (conn, autocommit):
            assert autocommit and not conn.is_in_transaction() and not holds_connection(db)
        async with straight_connection(db, alone=False) as (conn, autocommit):
            assert not autocommit and conn.is_in_transaction() and holds_connection(db)
        async with straight_connection(db, alone=True) as (conn, autocommit):  # the session's, once it has one
            assert not autocommit and conn.is_in_transaction()
        await db.rollback()


async def test_a_pooled_connection_cut_off_mid_statement_is_not_lent_again(client: httpx.AsyncClient,
                                                                          backend: Backend) -> None:
    """persistence.database.pooled_driver: a statement the server answered with an error, or the caller's own
    refusal between statements, leaves its connection fit for the next caller; one cut off (here cancelled) may
    leave it mid-protocol, so it is closed instead."""
    if backend.name != "postgres":
        return
    import asyncio
    import contextlib

    import asyncpg  # type: ignore[import-untyped]

    from persistence.database import pooled_driver
    from persistence.errors import NotFound

    engine = backend.state.engine
    with contextlib.suppress(asyncpg.DivisionByZeroError):
        async with pooled_driver(engine) as conn:
            await conn.fetchval("SELECT 1/0")
    assert not conn.is_closed()
    with contextlib.suppress(NotFound):  # the caller's own refusal between statements (a 404)
        async with pooled_driver(engine) as refused:
            await refused.fetchval("SELECT 1")
            raise NotFound("step", uuid.uuid4())
    assert not refused.is_closed()
    async with pooled_driver(engine) as again:
        assert await again.fetchval("SELECT 1") == 1
    started = asyncio.Event()
    held: list[Any] = []

    async def slow() -> None:
        async with pooled_driver(engine) as cut:
            held.append(cut)
            started.set()
            await cut.fetchval("SELECT pg_sleep(30)")

    task = asyncio.create_task(slow())
    await started.wait()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert held[0].is_closed()
    async with pooled_driver(engine) as after:
        assert await after.fetchval("SELECT 1") == 1
