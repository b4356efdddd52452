"""Changing a step on PostgreSQL straight on the session's asyncpg connection (persistence.database.
driver_connection), inside the session's transaction: the step locked with the caller's access rule and its
linked events in one statement, its substeps in a second (read after the lock, as before), and the changed rows
written together with the change's frame in the room's log (topic_log.gated_append) in a third. SQLAlchemy's
ORM (load, flush) and statement machinery cost several times the CPU of these three statements."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Uuid, literal_column, select
from sqlalchemy.dialects.postgresql.base import PGDialect
from sqlalchemy.ext.asyncio import AsyncSession

from persistence import topic_log
from persistence.database import driver_connection
from persistence.models import Process, Step

# The caller in the lock statement's access rule (its $2; $1 is the step): the rule is compiled into the text
# once, by the caller, so the statement stays one prepared text.
STEP_WORKER: ColumnElement[uuid.UUID] = literal_column("$2::uuid", Uuid)


def lock_statement(workable: ColumnElement[bool]) -> str:
    """The step's columns, whether `workable` (a condition on Process built with STEP_WORKER as the caller) admits
    the caller, and the ids of the events using its process, ordered; the step row locked (FOR UPDATE OF steps)."""
    linked = "ARRAY(SELECT events.id FROM events WHERE events.process_id = processes.id ORDER BY events.id)"
    stmt = (select(Step.id, Step.content, Step.completed, Step.completed_at, Step.order, Step.due_date,
                   Step.process_id, Step.created_at, Step.updated_at, workable, literal_column(linked))
            .join(Process, Step.process_id == Process.id)
            .where(Step.id == literal_column("$1::uuid", Uuid)).with_for_update(of=Step))
    # SQLAlchemy leaves the dialect constructor unannotated.
    dialect = PGDialect()  # type: ignore[no-untyped-call]
    return str(stmt.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


_SUBSTEPS = """SELECT id, content, completed, completed_at, "order", step_id, created_at, updated_at
FROM sub_steps WHERE step_id = $1::uuid"""


def _updates(n: int) -> str:
    # The step's new columns ($n…$n+4), written when $n+6 says it changed; the substeps' new completion by id
    # ($n+7…$n+9); $n+5 is the updated_at of every row written, $n+10 the step. Unchanged rows are not written:
    # their updated_at stays, as with the ORM's flush.
    return f"""step AS (
    UPDATE steps SET content = ${n}::text, completed = ${n + 1}::boolean, completed_at = ${n + 2}::timestamptz,
        "order" = ${n + 3}::integer, due_date = ${n + 4}::varchar, updated_at = ${n + 5}::timestamptz
    WHERE steps.id = ${n + 10}::uuid AND ${n + 6}::boolean
    RETURNING steps.id
), subs AS (
    UPDATE sub_steps SET completed = u.completed, completed_at = u.completed_at, updated_at = ${n + 5}::timestamptz
    FROM unnest(${n + 7}::uuid[], ${n + 8}::boolean[], ${n + 9}::timestamptz[]) AS u(id, completed, completed_at)
    WHERE sub_steps.id = u.id AND sub_steps.step_id = ${n + 10}::uuid
    RETURNING sub_steps.id
)"""


# The write and the frame of the one room the step's process is linked to: one statement (parameters from $7).
_WRITE_AND_APPEND = topic_log.gated_append(_updates(7) + ", ", "(VALUES (1)) AS one(x)")
# The write alone (no room, or several: their frames are then recorded by the unit of work).
_WRITE = "WITH " + _updates(1) + " SELECT (SELECT count(*) FROM step) + (SELECT count(*) FROM subs)"


async def step_for_change(db: AsyncSession, statement: str, step_id: uuid.UUID, user_id: uuid.UUID,
                          ) -> tuple[Sequence[Any], bool, list[uuid.UUID], list[Sequence[Any]]] | None:
    """By `statement` (from `lock_statement`): the step's columns (id, content, completed, completed_at, order,
    due_date, process_id, created_at, updated_at), locked, whether the rule admits the caller, the linked events;
    then its substeps' (id, content, completed, completed_at, order, step_id, created_at, updated_at), read once
    the lock is held. None when there is no such step."""
    conn = await driver_connection(db, in_transaction=True)
    row = await conn.fetchrow(statement, step_id, user_id)
    if row is None:
        return None
    if not row[9]:
        return tuple(row[:9]), False, [], []
    subs = await conn.fetch(_SUBSTEPS, step_id)
    return tuple(row[:9]), True, list(row[10]), [tuple(r) for r in subs]


async def write_step(db: AsyncSession, step_id: uuid.UUID, step: Sequence[Any] | None,
                     subs: Sequence[tuple[uuid.UUID, bool, datetime | None]], updated_at: datetime, *,
                     frame: tuple[str, tuple[str, str], datetime] | None,
                     ) -> tuple[str, list[tuple[int, str]]] | None:
    """Write the step's new (content, completed, completed_at, order, due_date) when `step` is given, and the
    substeps' new (id, completed, completed_at), all with `updated_at`. With `frame` (topic, (prefix, suffix),
    now) the frame is appended to the topic's log in the same statement (topic_log.append_frames): its epoch and
    stored (offset, frame) are returned."""
    conn = await driver_connection(db, in_transaction=True)
    content, completed, completed_at, order, due_date = step if step is not None else (None,) * 5
    args = (content, completed, completed_at, order, due_date, updated_at, step is not None,
            [s[0] for s in subs], [s[1] for s in subs], [s[2] for s in subs], step_id)
    if frame is None:
        await conn.fetchval(_WRITE, *args)
        return None
    topic, parts, now = frame
    return await topic_log.append_frames(db, topic, [parts], now, statement=_WRITE_AND_APPEND, args=args)
