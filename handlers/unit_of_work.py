"""The one unit of work every caller uses — a REST route, a WebSocket push, a job: open a transaction, run the
work, record what it announces and the jobs it asks for in that same transaction (handlers.recording), commit,
and only then carry out the effects through the caller's announcer (publish, remove from topics, enqueue).

Errors are not mapped here: the edges map them once (server.errors). A refusal that must keep what it wrote
(`DomainError.keep_changes`) commits first, announces what it committed, and is raised after. `guard` wraps the
whole unit for what must be undone when the transaction fails — a reserved AI stream
(ai.runner.Generations.reservations)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.context import Outcome, take_after_commit
from handlers.recording import record
from persistence.database import close_session, holds_connection
from persistence.errors import DomainError

T = TypeVar("T")
Announcer = Callable[[Outcome[Any]], Awaitable[None]]


@dataclass
class Work:
    db: AsyncSession
    now: datetime
    effects: Outcome[None] = field(default_factory=lambda: Outcome(None))

    def add(self, outcome: Outcome[T]) -> T:
        """Take on a handler's outcome: its effects happen after the commit; its value is returned."""
        self.effects.publish.extend(outcome.publish)
        self.effects.remove.extend(outcome.remove)
        self.effects.enqueue.extend(outcome.enqueue)
        self.effects.recorded.extend(outcome.recorded)
        return outcome.value


@contextlib.asynccontextmanager
async def unit_of_work(sessionmaker: async_sessionmaker[AsyncSession], now: datetime,
                       announce: Announcer | None = None,
                       guard: contextlib.AbstractAsyncContextManager[Any] | None = None) -> AsyncIterator[Work]:
    refusal: DomainError | None = None
    async with guard if guard is not None else contextlib.nullcontext():
        db = sessionmaker()  # its transaction begins with its first statement (SQLAlchemy's autobegin)
        try:
            work = Work(db, now)
            try:
                yield work
            except DomainError as exc:
                if not exc.keep_changes:
                    raise
                refusal = exc
            work.effects.publish.extend(take_after_commit(db))
            # Last in the transaction: the log's head rows are locked only for the commit.
            await record(db, work.effects, now)
            if holds_connection(db) or db.new or db.dirty or db.deleted:
                await db.commit()
        finally:
            await close_session(db)
    # Committed: only now may anyone hear about it, and only now may a job read it.
    if announce is not None and (work.effects.publish or work.effects.recorded or work.effects.remove
                                 or work.effects.enqueue):
        await announce(work.effects)
    if refusal is not None:
        raise refusal
