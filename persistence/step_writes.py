"""Changing a step on PostgreSQL straight on asyncpg, two ways. SQLAlchemy's ORM (load, flush) and statement
machinery cost several times the CPU of these statements.

- Checked (the usual way): `read_step` reads the step, the caller's access, the linked events and the substeps,
  each row with its version (xmin), in one statement without a lock; the caller applies the rules; then
  `write_checked` writes the changed rows together with the change's frame in the room's log, in one statement
  that first locks the step and writes only if every version it read still stands (`_gate`). Run alone on a
  pooled connection in autocommit (persistence.database.straight_connection), a change is those two round trips:
  no BEGIN, no COMMIT, no lock held while Python works. A refused write is read and applied again.
- Locked (`step_for_change`, `write_step`, inside the session's transaction): the step locked with its rule and
  linked events, its substeps read once the lock is held, then the write with the frame: the way after repeated
  refusals, and when several rooms' frames must commit with the change in the unit's transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Uuid, literal_column, select, text
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


def _updates(n: int, gate: str = "") -> str:
    # The step's new columns ($n…$n+4), written when $n+6 says it changed; the substeps' new completion by id
    # ($n+7…$n+9); $n+5 is the updated_at of every row written, $n+10 the step. Unchanged rows are not written:
    # their updated_at stays, as with the ORM's flush. `gate`: a further condition on both writes.
    return f"""step AS (
    UPDATE steps SET content = ${n}::text, completed = ${n + 1}::boolean, completed_at = ${n + 2}::timestamptz,
        "order" = ${n + 3}::integer, due_date = ${n + 4}::varchar, updated_at = ${n + 5}::timestamptz
    WHERE steps.id = ${n + 10}::uuid AND ${n + 6}::boolean{gate}
    RETURNING steps.id
), subs AS (
    UPDATE sub_steps SET completed = u.completed, completed_at = u.completed_at, updated_at = ${n + 5}::timestamptz
    FROM unnest(${n + 7}::uuid[], ${n + 8}::boolean[], ${n + 9}::timestamptz[]) AS u(id, completed, completed_at)
    WHERE sub_steps.id = u.id AND sub_steps.step_id = ${n + 10}::uuid{gate}
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


# --- the change checked against what was read: two statements, no lock held in between -------------------------

Workable = Callable[[ColumnElement[uuid.UUID]], ColumnElement[bool]]
"""The caller's access rule as a condition on Process, given where the caller's id is in the statement."""

_LINKED = "ARRAY(SELECT events.id FROM events WHERE events.process_id = processes.id ORDER BY events.id)"
# Each substep's row and its version (xmin: a new one with every write of the row), ordered by id.
_SUBSTEP_ROWS = """ARRAY(SELECT ROW(s.id, s.content, s.completed, s.completed_at, s."order", s.step_id, s.created_at,
    s.updated_at, s.xmin::text) FROM sub_steps AS s WHERE s.step_id = steps.id ORDER BY s.id)"""
_SUBSTEP_VERSIONS = """ARRAY(SELECT s.id::text || '/' || s.xmin::text FROM sub_steps AS s
    WHERE s.step_id = {step} ORDER BY s.id)"""


def _compiled(stmt: Any) -> str:
    dialect = PGDialect()  # type: ignore[no-untyped-call]  # SQLAlchemy leaves it unannotated
    return str(stmt.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


def _caller(n: int) -> ColumnElement[uuid.UUID]:
    return literal_column(f"${n}::uuid", Uuid)


def read_statement(workable: Workable) -> str:
    """One row: the step's columns, whether `workable` admits the caller ($2), the linked events, the step row's
    version, and its substeps with theirs. No lock: `checked_write_statement` writes only if nothing changed since."""
    return _compiled(
        select(Step.id, Step.content, Step.completed, Step.completed_at, Step.order, Step.due_date, Step.process_id,
               Step.created_at, Step.updated_at, workable(_caller(2)), literal_column(_LINKED),
               literal_column("steps.xmin::text"), literal_column(_SUBSTEP_ROWS))
        .join(Process, Step.process_id == Process.id).where(Step.id == literal_column("$1::uuid", Uuid)))


def _gate(workable: Workable, n: int) -> str:
    """`lk` (the step, locked, when its row is the version read, the caller may still work on it and the same
    events use its process) and `ok` (one row when, besides, its substeps are the versions read). Parameters: $n+10
    the step, $n+11 the caller, $n+12 the step's version, $n+13 the substeps' versions, $n+14 the events.

    Why that suffices under READ COMMITTED: the lock is taken on the newest version of the step row, so a writer
    that changed it after the read — or since this statement's snapshot — fails the version test, waited for or
    not. Substeps read from this statement's snapshot can lag behind a writer that committed while the lock was
    awaited only if that writer added a substep, and adding one writes its step's row (persistence.processes.
    add_substep): the version test catches it. Changes to existing substeps that commit later are ordered after
    this change, as with the locking path."""
    lock = _compiled(
        select(Step.id).join(Process, Step.process_id == Process.id)
        .where(Step.id == literal_column(f"${n + 10}::uuid", Uuid), text(f"steps.xmin::text = ${n + 12}::text"),
               workable(_caller(n + 11)), text(f"{_LINKED} = ${n + 14}::uuid[]"))
        .with_for_update(of=Step))
    versions = _SUBSTEP_VERSIONS.format(step=f"${n + 10}::uuid")
    return (f"lk AS MATERIALIZED ({lock}), "
            f"ok AS MATERIALIZED (SELECT 1 AS x FROM lk WHERE {versions} = ${n + 13}::text[]), ")


def checked_write_statement(workable: Workable, *, frame: bool) -> str:
    """The write of `write_step`, made only when `_gate` passes; with `frame` the frame is stored with it
    (topic_log.gated_append, parameters from $7), else the statement answers 1 when it wrote and 0 when not."""
    if frame:
        return topic_log.gated_append(_gate(workable, 7) + _updates(7, " AND EXISTS (SELECT FROM ok)") + ", ", "ok")
    return "WITH " + _gate(workable, 1) + _updates(1, " AND EXISTS (SELECT FROM ok)") + " SELECT count(*) FROM ok"


@dataclass(frozen=True, slots=True)
class StepRead:
    """What `read_step` found: the step's columns (id, content, completed, completed_at, order, due_date,
    process_id, created_at, updated_at), whether the caller may work on it, the linked events (ordered), and the
    versions `write_checked` compares; its substeps' (id, content, completed, completed_at, order, step_id,
    created_at, updated_at), ordered by id."""

    row: tuple[Any, ...]
    workable: bool
    events: list[uuid.UUID]
    version: str
    subs: list[tuple[Any, ...]]
    sub_versions: list[str]


async def read_step(conn: Any, statement: str, step_id: uuid.UUID, user_id: uuid.UUID) -> StepRead | None:
    """By `statement` (from `read_statement`); None when there is no such step."""
    row = await conn.fetchrow(statement, step_id, user_id)
    if row is None:
        return None
    subs = row[12]
    return StepRead(tuple(row[:9]), bool(row[9]), list(row[10]), row[11], [tuple(s[:8]) for s in subs],
                    [f"{s[0]}/{s[8]}" for s in subs])


async def write_checked(conn: Any, statement: str, read: StepRead, user_id: uuid.UUID, step: Sequence[Any] | None,
                        subs: Sequence[tuple[uuid.UUID, bool, datetime | None]], updated_at: datetime, *,
                        frame: tuple[str, tuple[str, str], datetime] | None,
                        ) -> tuple[str, list[tuple[int, str]]] | None:
    """`write_step` by `statement` (from `checked_write_statement`, with a frame or without as `frame` is given),
    made only if the step and its substeps are still as `read`: None when they are not (nothing written; read
    again). Without a frame a write answers ("", [])."""
    content, completed, completed_at, order, due_date = step if step is not None else (None,) * 5
    step_id = read.row[0]
    args = (content, completed, completed_at, order, due_date, updated_at, step is not None,
            [s[0] for s in subs], [s[1] for s in subs], [s[2] for s in subs], step_id, user_id, read.version,
            read.sub_versions, read.events)
    if frame is None:
        return ("", []) if await conn.fetchval(statement, *args) else None
    topic, parts, now = frame
    stored = await topic_log.append_frames_on(conn, topic, [parts], now, statement=statement, args=args)
    return stored if stored[1] else None
