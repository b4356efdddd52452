"""Count the SQL statements one piece of test code causes, and only those: those SQLAlchemy runs, and those run
straight on asyncpg (persistence.database.driver_connection), seen through asyncpg's query logger on every
connection checked out meanwhile. Transaction control (BEGIN, COMMIT, ROLLBACK) and the pool's ping are not
counted, on either path, nor asyncpg's introspection of types.

The app runs background tasks on the same engine (the topic log's relay polls heads, hands jobs off, prunes),
so a listener on the engine alone would count whatever they happened to run meanwhile. The listener counts a
statement only when it runs in the context that opened the recording: the test's task, and what httpx's ASGI
transport runs inside it (SQLAlchemy's greenlets carry the caller's context along).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any
from weakref import WeakSet

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

_recording: ContextVar[list[str] | None] = ContextVar("statements_recording", default=None)


def driver_internal(text: str) -> bool:
    """Not the caller's statement: transaction control, the pool's ping, or asyncpg's own introspection of a type
    the connection meets for the first time (an array, a record)."""
    return (text == ";" or text.upper().startswith(("BEGIN", "COMMIT", "ROLLBACK"))
            or "'jit'" in text or "pg_catalog.pg_type" in text)


@asynccontextmanager
async def recorded(engine: AsyncEngine) -> AsyncIterator[list[str]]:
    """Yield the list of statements run in this context while the block runs. Asynchronous because asyncpg hands
    a statement to its loggers through `loop.call_soon`: a request whose last await was that statement returns
    before they ran, so the block's end yields to the loop once, for the callbacks already scheduled."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if _recording.get() is seen:
            seen.append(statement)

    def record_driver(query: Any) -> None:
        # asyncpg calls its loggers through the event loop with the context of the statement's caller.
        text = query.query.strip()
        if _recording.get() is seen and not driver_internal(text):
            seen.append(text)

    logged: WeakSet[Any] = WeakSet()

    def attach(dbapi_connection: Any, *rest: Any) -> None:
        driver = getattr(dbapi_connection, "driver_connection", None)
        if driver is not None and hasattr(driver, "add_query_logger") and driver not in logged:
            driver.add_query_logger(record_driver)
            logged.add(driver)

    token = _recording.set(seen)
    event.listen(engine.sync_engine, "before_cursor_execute", record)
    event.listen(engine.sync_engine.pool, "checkout", attach)
    try:
        yield seen
        await asyncio.sleep(0)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)
        event.remove(engine.sync_engine.pool, "checkout", attach)
        for driver in list(logged):
            driver.remove_query_logger(record_driver)
        _recording.reset(token)
