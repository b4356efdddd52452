"""Engine and session factories; the session's lifecycle belongs to the caller, never to queries."""

from __future__ import annotations

import contextlib
import time
import weakref
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.util import await_, greenlet_spawn


def _sqlite_pragmas(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    # Foreign keys are off by default in SQLite; WAL lets readers run beside the one writer.
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    # One writer at a time: a writer waits its turn (up to 30 s) rather than answering 503 when the machine is busy
    # and the writer before it holds the lock across an await (seen at 5 s with ten concurrent chat writers).
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


# A connection given back less than this long ago is not pinged again: a server that ended it since closed its
# socket, which asyncpg has seen (`is_closed`); the silent drops a ping is for (a firewall's idle timeout, a
# failover) take far longer. Under load a connection is back in use within milliseconds: no round trip then.
_FRESH = 1.0
_returned_at: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()  # asyncpg connection → when


def _returned(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    if dbapi_connection is not None:
        _returned_at[dbapi_connection.driver_connection] = time.monotonic()


def _ping(dbapi_connection: Any) -> bool:
    """The pool's check of a connection before handing it out. SQLAlchemy's asyncpg ping wraps its `;` in
    BEGIN … ROLLBACK (for pgbouncer's transaction mode, not used here): three round trips before every unit of
    work. Here: none for a connection given back just now and still open, else one. A dead connection still
    fails here and is replaced."""
    driver = dbapi_connection.driver_connection
    if time.monotonic() - _returned_at.get(driver, -_FRESH) < _FRESH and not driver.is_closed():
        return True
    try:
        await_(driver.fetchrow(";"))
    except Exception as error:
        dbapi_connection._handle_exception(error)  # as asyncpg errors → DBAPI errors, so a disconnect is seen
    return True


def create_engine(url: str, *, pool_size: int = 10, max_overflow: int = 20, pool_timeout: float = 30.0,
                  echo: bool = False) -> AsyncEngine:
    if url.startswith("sqlite"):
        engine = create_async_engine(url, echo=echo)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    engine = create_async_engine(
        url, echo=echo, pool_size=pool_size, max_overflow=max_overflow, pool_timeout=pool_timeout,
        pool_pre_ping=True,
    )
    if engine.dialect.driver == "asyncpg":
        engine.sync_engine.dialect.do_ping = _ping  # type: ignore[method-assign]
        event.listen(engine.sync_engine.pool, "checkin", _returned)
    return engine


_DRIVER = "conversme.driver_connection"


def on_postgresql(db: AsyncSession) -> bool:
    return db.get_bind().dialect.name == "postgresql"


async def driver_connection(db: AsyncSession, *, in_transaction: bool) -> Any:
    """The asyncpg connection under `db`, for statements run straight on the driver (SQLAlchemy's statement
    machinery costs more CPU than a short statement). `in_transaction`: the session's transaction is begun on it
    first, as SQLAlchemy's asyncpg adapter does before the first statement it runs itself (BEGIN; a no-op when
    one is open or the session runs in autocommit), so those statements commit or roll back with the session.
    Without it a statement run first is a transaction of its own."""
    # Kept for the session's transaction: a change running several statements asks for it each time, and the
    # session's connection() costs more CPU than a short statement. A new transaction looks it up again.
    transaction = db.sync_session.get_transaction()
    kept = db.info.get(_DRIVER)
    if kept is not None and transaction is not None and kept[0] is transaction:
        raw = kept[1]
    else:
        raw = await (await db.connection()).get_raw_connection()
        db.info[_DRIVER] = (db.sync_session.get_transaction(), raw)
    if in_transaction:
        adapter: Any = raw.dbapi_connection
        # The adapter's own lazy BEGIN (sqlalchemy.dialects.postgresql.asyncpg): it keeps the transaction it
        # commits, rolls back and discards. tests/persistence/test_queries.py holds this to its behaviour.
        if adapter._transaction is None and not adapter.autocommit:
            await adapter._start_transaction()
    return raw.driver_connection


def asyncpg_engine(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "postgresql" and engine.dialect.driver == "asyncpg"


@contextlib.asynccontextmanager
async def pooled_driver(engine: AsyncEngine) -> AsyncIterator[Any]:
    """A pooled asyncpg connection (`asyncpg_engine`), for statements each a transaction of its own, outside any
    unit of work: no session, no transaction begun, so none to end. Taken from the engine's pool itself, not
    through a SQLAlchemy Connection (whose set-up and tear-down cost more CPU than a short statement); the pool
    checks it out (its ping, its events) and takes it back (its reset) as for any other caller. Both run inside
    greenlet_spawn: making a new connection, or a ping, awaits the driver."""
    pool = engine.sync_engine.pool
    fairy = await greenlet_spawn(pool.connect)
    try:
        yield fairy.driver_connection
    except BaseException as exc:
        # Cancelled (or timed out) while a statement may have been in flight: the connection may be left
        # mid-protocol, so it is closed rather than lent again. Any other error leaves it as good as before: an
        # error the server answered (each statement its own transaction), or the caller's own between two
        # statements (a refusal); a lost socket is seen closed by the pool's check at the next checkout.
        if not isinstance(exc, Exception) or isinstance(exc, TimeoutError):
            await greenlet_spawn(fairy.invalidate, exc)
        raise
    finally:
        await greenlet_spawn(fairy.close)


def holds_connection(db: AsyncSession) -> bool:
    """Whether `db` has checked out a connection in its current transaction (it ran a statement, or was asked for
    its connection). SQLAlchemy keeps this in the transaction's `_connections`; tests/persistence/test_queries.py
    holds it to its behaviour."""
    transaction = db.sync_session.get_transaction()
    return transaction is not None and bool(transaction._connections)


async def close_session(db: AsyncSession) -> None:
    """End `db` (rolling back what was not committed). A session that never used a connection — its statements ran
    on one of their own (`straight_connection`) — has nothing to end on the server: closing it does no I/O, so it
    is done in place rather than through a greenlet (a few percent of a short request's CPU)."""
    if holds_connection(db):
        await db.close()
    else:
        db.sync_session.close()


@contextlib.asynccontextmanager
async def straight_connection(db: AsyncSession, *, alone: bool) -> AsyncIterator[tuple[Any, bool]]:
    """An asyncpg connection for statements run straight on the driver, and whether each statement on it is a
    transaction of its own. `alone`: the caller's change is the unit of work's only write, so when the session has
    not used a connection yet, a pooled one in autocommit serves (no BEGIN, no COMMIT: a change written in one
    statement costs that round trip alone). Otherwise the session's own, inside its transaction, so what runs on it
    commits or rolls back with the rest. Never a second connection beside the session's: requests each holding one
    and waiting for another could drain the pool."""
    if alone and isinstance(db.bind, AsyncEngine) and not holds_connection(db):
        async with pooled_driver(db.bind) as conn:
            yield conn, True
    else:
        yield await driver_connection(db, in_transaction=True), False


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def sync_engine_of(engine: AsyncEngine) -> Engine:
    return engine.sync_engine
