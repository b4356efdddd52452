"""The database's topic log as the hubs see it (`channels.hub.TopicLog`): positions, history and recent head
movements of durable topics, each read in a short transaction of its own; and the relay loop that lets every
instance deliver what any instance committed — also when that instance died before publishing, or while Redis
was away — and prunes the log to its retention."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels.batching import Batcher
from channels.hub import Entry, Hub, Position
from persistence import topic_log
from persistence.models import TopicHead

log = logging.getLogger("conversme.topic_log")

RELAY_INTERVAL = 1.0  # seconds between relay passes: the worst-case delay of a change its instance never published
PRUNE_INTERVAL = 60.0
HANDOFF_INTERVAL = 5.0  # seconds between passes over job hand-offs nobody enqueued


class DatabaseTopicLog:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], *, history_limit: int = 1000) -> None:
        self._sessionmaker = sessionmaker
        self.history_limit = history_limit
        # Every socket joining a room that nothing was delivered in yet asks for its position: one statement for
        # all of them (a storm rejoins thousands at once). A batch starts after each of its callers asked, so no
        # caller gets a head read before it subscribed.
        self._heads: Batcher[str, tuple[str, int]] = Batcher(self._read_heads)

    async def _read_heads(self, topics: list[str]) -> dict[str, tuple[str, int]]:
        async with self._sessionmaker() as db:
            found = await topic_log.heads(db, topics)
            if len(found) < len(topics):
                # Topics nobody wrote yet get their epochs now, all in one statement (a storm joins a hundred
                # such rooms at once; it was a transaction each), so a client that joined early can resume.
                found.update(await topic_log.start_heads(db, [t for t in topics if t not in found],
                                                         datetime.now(UTC)))
                await db.commit()
            return found

    async def position(self, topic: str) -> Position:
        found = await self._heads.get(topic)
        if found is None:
            # Started by another writer between the batch's read and its write (its answer left it out).
            async with self._sessionmaker.begin() as db:
                upsert = pg_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert
                await db.execute(upsert(TopicHead).values(
                    topic=topic, epoch=secrets.token_hex(8), head=0, updated_at=datetime.now(UTC),
                ).on_conflict_do_nothing(index_elements=[TopicHead.topic]))
                found = await topic_log.head(db, topic)
            assert found is not None
        return Position(*found)

    async def history(self, topic: str, epoch: str, after: int) -> list[Entry] | None:
        async with self._sessionmaker() as db:
            found = await topic_log.head(db, topic)
            if found is None or found[0] != epoch or after > found[1] or after < 0:
                return None
            head = found[1]
            if head == after:
                return []
            if head - after > self.history_limit:
                return None
            rows = [(o, f) for o, f in await topic_log.after(db, topic, after, head - after) if o <= head]
        # Complete or nothing: a pruned start means the client must reload, never a partial replay.
        if len(rows) != head - after or rows[0][0] != after + 1:
            return None
        return [Entry(o, f) for o, f in rows]

    async def moved_since(self, seconds: float) -> list[tuple[str, Position]]:
        since = datetime.now(UTC) - timedelta(seconds=seconds)
        async with self._sessionmaker() as db:
            return [(t, Position(e, h)) for t, e, h in await topic_log.moved_since(db, since)]

    async def prune(self, retention: timedelta, keep: int) -> int:
        now = datetime.now(UTC)
        async with self._sessionmaker.begin() as db:
            return await topic_log.prune(db, now - retention, keep, now - timedelta(seconds=PRUNE_INTERVAL * 2))


async def run_relay(hub: Hub, log_: DatabaseTopicLog, retention: timedelta, keep: int,
                    handoffs: Callable[[], Awaitable[int]] | None = None) -> None:
    """Forever: deliver what this process's listeners miss from the log; enqueue the jobs of committed changes
    their process did not (`handoffs`); now and then prune the log."""
    loop = asyncio.get_running_loop()
    pruned_at = handed_at = loop.time()
    while True:
        await asyncio.sleep(RELAY_INTERVAL)
        try:
            delivered = await hub.relay_once()
            if delivered:
                log.info("relayed %d committed entries that were not published", delivered)
            now = loop.time()
            if handoffs is not None and now - handed_at >= HANDOFF_INTERVAL:
                handed_at = now
                await handoffs()
            if now - pruned_at >= PRUNE_INTERVAL:
                pruned_at = now
                await log_.prune(retention, keep)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the database away: try again next round
            log.warning("topic log relay failed: %s", exc)


async def stop(task: asyncio.Task[None] | None) -> None:
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
