"""Chat lines pushed over sockets, stored in groups (a group commit): the `chat.send` pushes that arrive while the
previous group is being written go to the database together, in one statement, then are announced and answered.

At saturation a line's own work is small next to what every line costs alone — a session, a pool checkout, a round
trip to PostgreSQL, a publish to Redis — so a group of k lines pays those once instead of k times.

What stays exactly as with one transaction per push:
- a line is answered `ok` only once committed, and announced (published) before it is answered;
- each line is checked on its own: a sender who is not a member gets `not_found` for that line alone;
- per room, offsets follow the order the lines arrived in, and so does delivery; a connection's lines are stored in
  the order it sent them, and any other command of that connection waits until they are stored and answered
  (`settled`), so whatever it does next sees them committed;
- if the group's statement fails (a room deleted meanwhile breaks a constraint, the database hiccups), nothing of it
  was stored and every line is carried out alone, as a push of its own: only the lines at fault fail.

One writer per process: a group is written, announced and answered before the next one starts, so the process
publishes a room's entries in offset order."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels import messages as m
from handlers import realtime
from handlers.context import Context, Limits, Outcome, Recorded
from handlers.events import chat
from handlers.unit_of_work import unit_of_work
from persistence.errors import DomainError, Unavailable
from server.errors import translate, ws_code
from server.state import Announcer
from server.ws_connection import Connection

log = logging.getLogger("conversme.ws")

# Lines per statement: enough to absorb a burst, few enough that one group's round trip stays short.
MAX_GROUP = 64
# A connection's lines waiting to be stored: past this, its reader waits for them (back-pressure on the socket)
# instead of queueing more.
MAX_WAITING = 32


@dataclass(slots=True)
class _Line:
    conn: Connection
    ref: str | None
    send: chat.ChatSend
    done: asyncio.Future[None]


class ChatLines:
    """The process's queue of pushed chat lines and its one writer (started while there are lines to write)."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], announce: Announcer,
                 clock: Callable[[], datetime], limits: Limits) -> None:
        self._sessionmaker = sessionmaker
        self._announce = announce
        self._clock = clock
        self._limits = limits
        self._queue: deque[_Line] = deque()
        self._writer: asyncio.Task[None] | None = None
        # Per connection (by id): its newest line not yet answered, and how many it has waiting.
        self._last: dict[str, asyncio.Future[None]] = {}
        self._waiting: dict[str, int] = {}
        self.groups = 0
        self.lines = 0

    async def submit(self, conn: Connection, ref: str | None, event_id: uuid.UUID, data: chat.ChatIn) -> None:
        """Queue a line of `conn`'s; it is stored, announced and answered by the writer. Returns at once, unless
        the connection already has MAX_WAITING lines waiting: then once this one is answered."""
        assert conn.user is not None
        line = _Line(conn, ref, chat.ChatSend(conn.user, event_id, data, self._clock()),
                     asyncio.get_running_loop().create_future())
        self._queue.append(line)
        waiting = self._waiting[conn.id] = self._waiting.get(conn.id, 0) + 1
        self._last[conn.id] = line.done
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._run())
        if waiting >= MAX_WAITING:
            await asyncio.shield(line.done)

    async def settled(self, conn: Connection) -> None:
        """Once every line `conn` submitted is stored and answered (at once when it has none waiting)."""
        last = self._last.get(conn.id)
        if last is not None:
            await asyncio.shield(last)  # a reader cancelled meanwhile must not cancel the line

    async def close(self) -> None:
        """Write what is queued (the sockets are closed by now: nothing more arrives)."""
        while self._writer is not None and not self._writer.done():
            await asyncio.shield(self._writer)

    async def _run(self) -> None:
        while self._queue:
            group = [self._queue.popleft() for _ in range(min(len(self._queue), MAX_GROUP))]
            try:
                await self._write(group)
            except Exception:  # answered already where it could be; the writer goes on with the next group
                log.exception("chat lines: a group of %d failed", len(group))
            finally:
                for line in group:
                    self._finish(line)

    def _finish(self, line: _Line) -> None:
        cid = line.conn.id
        if not line.done.done():
            line.done.set_result(None)
        left = self._waiting.get(cid, 1) - 1
        if left > 0:
            self._waiting[cid] = left
        else:
            self._waiting.pop(cid, None)
        if self._last.get(cid) is line.done:
            del self._last[cid]

    async def _write(self, group: list[_Line]) -> None:
        now = self._clock()
        try:
            async with unit_of_work(self._sessionmaker, now) as unit:
                results = await chat.send_many(unit.db, [line.send for line in group], now)
                if results is None:
                    raise RuntimeError("chat lines are grouped on PostgreSQL only")
                unit.add(Outcome(None, recorded=_by_room(results)))
        except Exception as exc:
            if isinstance(translate(exc), Unavailable):  # the database did not answer: neither would it line by line
                for line in group:
                    _refuse(line, exc)
                return
            # Nothing of the group was stored: each line on its own, so that only the lines at fault fail.
            log.info("chat lines: a group of %d failed (%s: %s); storing them one by one", len(group),
                     type(exc).__name__, exc)
            for line in group:
                await self._write_one(line)
            return
        self.groups += 1
        self.lines += len(group)
        # Committed: announced first (the senders' copies too), then answered — as a push of its own is.
        try:
            await self._announce(unit.effects)
        except Exception:  # committed: the other instances' relay delivers it from the log
            log.exception("chat lines: announcing a group failed")
        for line, result in zip(group, results, strict=True):
            if isinstance(result, DomainError):
                _refuse(line, result)
            else:
                _answer(line, realtime.reply_data(result.value))

    async def _write_one(self, line: _Line) -> None:
        """One line as a push of its own is carried out (server.ws_commands: a unit of work around chat.send)."""
        try:
            async with unit_of_work(self._sessionmaker, line.send.now, self._announce) as unit:
                user = await unit.db.merge(line.send.user, load=False)
                ctx = Context(db=unit.db, user=user, now=unit.now, limits=self._limits)
                value = unit.add(await chat.send(ctx, line.send.event_id, line.send.data))
        except Exception as exc:
            _refuse(line, exc)
            return
        _answer(line, realtime.reply_data(value))


def _by_room(results: list[Any]) -> list[Recorded]:
    """The group's log entries, one Recorded per room with its entries in offset order (one publish each)."""
    rooms: dict[str, tuple[str, list[tuple[int, str]]]] = {}
    for result in results:
        if isinstance(result, Outcome):
            for rec in result.recorded:
                rooms.setdefault(rec.topic, (rec.epoch, []))[1].extend(rec.entries)
    return [Recorded(topic, epoch, tuple(sorted(entries))) for topic, (epoch, entries) in rooms.items()]


def _answer(line: _Line, data: dict[str, Any]) -> None:
    # Straight to the socket, not through the protocol's output: what the connection's later frames were answered
    # with waits there until the lines before them are answered (server.websocket's read loop).
    if line.ref is not None:
        line.conn.enqueue(m.reply_ok(line.ref, data))


def _refuse(line: _Line, exc: BaseException) -> None:
    """The line's error reply, mapped as the pump maps a push's (server.ws_commands, server.websocket)."""
    if isinstance(exc, DomainError):
        error: DomainError | None = exc
    else:
        error = translate(exc)
        if error is None:
            log.error("chat line failed", exc_info=exc)
    code, message = (ws_code(error), error.message) if error is not None else ("internal", "internal error")
    line.conn.enqueue(m.reply_error(line.ref, code, message) if line.ref is not None else m.error(code, message))
