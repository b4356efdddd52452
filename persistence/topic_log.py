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

from persistence.database import driver_connection, on_postgresql
from persistence.models import TopicEntry, TopicHead


async def advance(db: AsyncSession, topic: str, count: int, now: datetime) -> tuple[str, int]:
    """Reserve `count` offsets on `topic`: returns (epoch, head); the new offsets are head-count+1 … head."""
    values = {"topic": topic, "epoch": secrets.token_hex(8), "head": count, "updated_at": now}
    moved = {"head": TopicHead.head + count, "updated_at": now}
    upsert: Any = pg_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = upsert(TopicHead).values(**values).on_conflict_do_update(index_elements=[TopicHead.topic], set_=moved)
    row = (await db.execute(stmt.returning(TopicHead.epoch, TopicHead.head))).one()
    return str(row[0]), int(row[1])


# PostgreSQL: the head moves and the frames are stored in one round trip, as one prepared statement run straight
# on the transaction's asyncpg connection (SQLAlchemy's statement machinery costs more CPU than the statement).
# A frame is its prefix, the offset, the epoch and its suffix: the offset and epoch are only known in here.
# `{source}` is where the head's one row comes from: a VALUES row, or a caller's CTE (`gated_append`) that yields one
# row when its own write happened, so a refused write moves no head and stores no frame.
_APPEND_PG = """h AS (
    INSERT INTO topic_heads (topic, epoch, head, updated_at)
    SELECT $1::text, $2::text, $3::bigint, $4::timestamptz FROM {source}
    ON CONFLICT (topic) DO UPDATE SET head = topic_heads.head + EXCLUDED.head, updated_at = EXCLUDED.updated_at
    RETURNING epoch, head
), rows AS (
    SELECT h.head - $3 + s.i AS seq, s.pre || (h.head - $3 + s.i) || ',"epoch":"' || h.epoch || '"' || s.suf AS frame
    FROM h, unnest($5::text[], $6::text[]) WITH ORDINALITY AS s(pre, suf, i)
)
INSERT INTO topic_log (topic, seq, frame, created_at) SELECT $1, seq, frame, $4 FROM rows
RETURNING seq, frame
"""
_APPEND_ONLY = "WITH " + _APPEND_PG.format(source="(VALUES (1)) AS one(x)")


def gated_append(ctes: str, source: str) -> str:
    """The append statement behind the caller's CTEs (`name AS (...), ` each, parameters from $7 on): the head
    moves only by the rows `source` yields (one, or none for a refused write)."""
    return "WITH " + ctes + _APPEND_PG.format(source=source)


async def append_frames(db: AsyncSession, topic: str, parts: Sequence[tuple[str, str]], now: datetime, *,
                        statement: str = _APPEND_ONLY,
                        args: Sequence[Any] = ()) -> tuple[str, list[tuple[int, str]]] | None:
    """Append frames given as (prefix, suffix) around `<offset>,"epoch":"<epoch>"` in one round trip: returns
    the epoch and the stored (offset, frame)s, or None where this is not PostgreSQL (use `advance` + `append`).
    `statement` (from `gated_append`) with `args` ($7 on) writes the change itself in the same statement; it
    stored nothing when the epoch returned is empty (its gate yielded no row).

    The statement runs on the session's asyncpg connection: inside the session's transaction when one was
    begun by an earlier statement, else as a transaction of its own (PostgreSQL commits a single statement
    atomically), so a change that is this one statement costs one round trip and no BEGIN/COMMIT."""
    if not on_postgresql(db):
        return None
    conn = await driver_connection(db, in_transaction=False)
    return await append_frames_on(conn, topic, parts, now, statement=statement, args=args)


async def append_frames_on(conn: Any, topic: str, parts: Sequence[tuple[str, str]], now: datetime, *,
                           statement: str = _APPEND_ONLY,
                           args: Sequence[Any] = ()) -> tuple[str, list[tuple[int, str]]]:
    """`append_frames` on a given asyncpg connection (PostgreSQL only)."""
    rows = await conn.fetch(statement, topic, secrets.token_hex(8), len(parts), now,
                            [p for p, _ in parts], [s for _, s in parts], *args)
    if not rows:
        return "", []
    # The epoch is read back from a frame: the statement returns no separate column for it.
    first = rows[0]["frame"]
    epoch = first[first.index(',"epoch":"') + 10:].split('"', 1)[0]
    return epoch, sorted((int(r["seq"]), str(r["frame"])) for r in rows)


# Several topics in one round trip (a change announced in a room and to each member's own topic): the heads are
# upserted in topic order — the order every writer locks them in — then every frame is stored.
_APPEND_MANY_PG = """
WITH t AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[]) AS t(topic, epoch, n)
), h AS (
    INSERT INTO topic_heads (topic, epoch, head, updated_at)
    SELECT topic, epoch, n, $7::timestamptz FROM t ORDER BY topic
    ON CONFLICT (topic) DO UPDATE SET head = topic_heads.head + EXCLUDED.head, updated_at = EXCLUDED.updated_at
    RETURNING topic, epoch, head
), m AS (
    SELECT s.topic, s.pre, s.suf, row_number() OVER (PARTITION BY s.topic ORDER BY s.i) AS k
    FROM unnest($4::text[], $5::text[], $6::text[]) WITH ORDINALITY AS s(topic, pre, suf, i)
)
INSERT INTO topic_log (topic, seq, frame, created_at)
SELECT m.topic, h.head - t.n + m.k, m.pre || (h.head - t.n + m.k) || ',"epoch":"' || h.epoch || '"' || m.suf, $7
FROM m JOIN t ON t.topic = m.topic JOIN h ON h.topic = m.topic
RETURNING topic, seq, frame
"""


async def append_topics(db: AsyncSession, parts: dict[str, list[tuple[str, str]]],
                        now: datetime) -> dict[str, tuple[str, list[tuple[int, str]]]] | None:
    """`append_frames` for several topics in one round trip: per topic its epoch and stored (offset, frame)s;
    None where this is not PostgreSQL."""
    if not on_postgresql(db):
        return None
    topics = sorted(parts)
    conn = await driver_connection(db, in_transaction=False)
    rows = await conn.fetch(_APPEND_MANY_PG, topics, [secrets.token_hex(8) for _ in topics],
                            [len(parts[t]) for t in topics], [t for t in topics for _ in parts[t]],
                            [p for t in topics for p, _ in parts[t]], [s for t in topics for _, s in parts[t]], now)
    out: dict[str, tuple[str, list[tuple[int, str]]]] = {}
    for r in rows:
        frame = str(r["frame"])
        entry = out.get(r["topic"])
        if entry is None:
            entry = out[r["topic"]] = (frame[frame.index(',"epoch":"') + 10:].split('"', 1)[0], [])
        entry[1].append((int(r["seq"]), frame))
    for _epoch, entries in out.values():
        entries.sort()
    return out


async def append(db: AsyncSession, rows: Sequence[tuple[str, int, str]], now: datetime) -> None:
    """Store committed frames: (topic, offset, frame)."""
    if rows:
        await db.execute(insert(TopicEntry),
                         [{"topic": t, "seq": s, "frame": f, "created_at": now} for t, s, f in rows])


async def head(db: AsyncSession, topic: str) -> tuple[str, int] | None:
    row = (await db.execute(select(TopicHead.epoch, TopicHead.head).where(TopicHead.topic == topic))).one_or_none()
    return None if row is None else (str(row[0]), int(row[1]))


HEADS_SQL = "SELECT topic, epoch, head FROM topic_heads WHERE topic = ANY($1::text[])"


async def heads(db: AsyncSession, topics: list[str]) -> dict[str, tuple[str, int]]:
    """The (epoch, head) of each of `topics` that has a head row. On PostgreSQL one statement on the driver:
    rejoining sockets ask it by the thousand."""
    if on_postgresql(db):
        conn = await driver_connection(db, in_transaction=False)
        rows = await conn.fetch(HEADS_SQL, topics)
    else:
        rows = (await db.execute(select(TopicHead.topic, TopicHead.epoch, TopicHead.head)
                                 .where(TopicHead.topic.in_(topics)))).all()
    return {str(r[0]): (str(r[1]), int(r[2])) for r in rows}


_START_HEADS_PG = """
INSERT INTO topic_heads (topic, epoch, head, updated_at)
SELECT topic, epoch, 0, $3::timestamptz FROM unnest($1::text[], $2::text[]) AS t(topic, epoch)
ON CONFLICT (topic) DO NOTHING
RETURNING topic, epoch, head
"""


async def start_heads(db: AsyncSession, topics: list[str], now: datetime) -> dict[str, tuple[str, int]]:
    """Head rows at 0, each with a new epoch, for `topics` (which had none), in one statement: a topic nobody wrote
    yet gets its epoch when the first socket joins it, so a client that joined early can resume. A topic another
    writer started meanwhile is left as that writer made it, and out of the answer (read it again)."""
    epochs = [secrets.token_hex(8) for _ in topics]
    if on_postgresql(db):
        conn = await driver_connection(db, in_transaction=False)  # one statement: a transaction of its own
        rows = await conn.fetch(_START_HEADS_PG, topics, epochs, now)
    else:
        rows = (await db.execute(
            sqlite_insert(TopicHead).values([{"topic": t, "epoch": e, "head": 0, "updated_at": now}
                                             for t, e in zip(topics, epochs, strict=True)])
            .on_conflict_do_nothing(index_elements=[TopicHead.topic])
            .returning(TopicHead.topic, TopicHead.epoch, TopicHead.head))).all()
    return {str(r[0]): (str(r[1]), int(r[2])) for r in rows}


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
