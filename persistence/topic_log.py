"""Queries of the durable topic log (`topic_heads`, `topic_log`). They take the caller's session and never
commit: appending happens inside the transaction of the change it reports, so the two commit or vanish together.

Offsets come from the head row: `advance` moves it by n under the row's lock, which the writer holds until its
commit, so offsets follow commit order per topic and when offset k is committed, every offset below it is too."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, delete, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from persistence.models import TopicEntry, TopicHead


async def advance(db: AsyncSession, topic: str, count: int, now: datetime) -> tuple[str, int]:
    """Reserve `count` offsets on `topic`: returns (epoch, head); the new offsets are head-count+1 … head."""
    values = {"topic": topic, "epoch": secrets.token_hex(8), "head": count, "updated_at": now}
    moved = {"head": TopicHead.head + count, "updated_at": now}
    upsert: Any = pg_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = upsert(TopicHead).values(**values).on_conflict_do_update(index_elements=[TopicHead.topic], set_=moved)
    row = (await db.execute(stmt.returning(TopicHead.epoch, TopicHead.head))).one()
    return str(row[0]), int(row[1])


async def append(db: AsyncSession, rows: Sequence[tuple[str, int, str]], now: datetime) -> None:
    """Store committed frames: (topic, offset, frame)."""
    if rows:
        await db.execute(insert(TopicEntry),
                         [{"topic": t, "seq": s, "frame": f, "created_at": now} for t, s, f in rows])


async def head(db: AsyncSession, topic: str) -> tuple[str, int] | None:
    row = (await db.execute(select(TopicHead.epoch, TopicHead.head).where(TopicHead.topic == topic))).one_or_none()
    return None if row is None else (str(row[0]), int(row[1]))


async def after(db: AsyncSession, topic: str, offset: int, limit: int) -> list[tuple[int, str]]:
    """Frames with offset > `offset`, oldest first, at most `limit`."""
    rows = await db.execute(
        select(TopicEntry.seq, TopicEntry.frame).where(TopicEntry.topic == topic, TopicEntry.seq > offset)
        .order_by(TopicEntry.seq).limit(limit))
    return [(int(r[0]), str(r[1])) for r in rows]


async def moved_since(db: AsyncSession, since: datetime) -> list[tuple[str, str, int]]:
    """Heads moved at or after `since`: (topic, epoch, head)."""
    rows = await db.execute(select(TopicHead.topic, TopicHead.epoch, TopicHead.head)
                            .where(TopicHead.updated_at >= since))
    return [(str(r[0]), str(r[1]), int(r[2])) for r in rows]


async def prune(db: AsyncSession, older_than: datetime, keep: int, active_since: datetime) -> int:
    """Drop entries older than `older_than`, and beyond the newest `keep` of each recently active topic."""
    old = cast(CursorResult[Any], await db.execute(delete(TopicEntry).where(TopicEntry.created_at < older_than)))
    gone = old.rowcount or 0
    for topic, _epoch, top in await moved_since(db, active_since):
        trimmed = cast(CursorResult[Any], await db.execute(
            delete(TopicEntry).where(TopicEntry.topic == topic, TopicEntry.seq <= top - keep)))
        gone += trimmed.rowcount or 0
    return int(gone)
