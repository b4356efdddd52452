"""Count the SQL statements one piece of test code causes, and only those.

The app runs background tasks on the same engine (the topic log's relay polls heads, hands jobs off, prunes),
so a listener on the engine alone would count whatever they happened to run meanwhile. The listener counts a
statement only when it runs in the context that opened the recording: the test's task, and what httpx's ASGI
transport runs inside it (SQLAlchemy's greenlets carry the caller's context along).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

_recording: ContextVar[list[str] | None] = ContextVar("statements_recording", default=None)


@contextmanager
def recorded(engine: AsyncEngine) -> Iterator[list[str]]:
    """Yield the list of statements run in this context while the block runs."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if _recording.get() is seen:
            seen.append(statement)

    token = _recording.set(seen)
    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)
        _recording.reset(token)
