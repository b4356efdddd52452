"""In-order, exactly-once delivery of one topic's entries to a process's listeners, whatever order the entries
arrive in (two instances publish offsets 5 and 6 in either order; a relay and the fast path race; Redis
redelivers nothing but a retry may publish twice). A gap is filled from the log's history before anything
after it is delivered; when history cannot fill it, listeners are told to resync — never a silent gap."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from channels.hub import Entry

Fill = Callable[[str, int], Awaitable[list[Entry] | None]]  # (epoch, after) → entries, or None: gone


@dataclass
class Cursor:
    """What one topic's listeners in this process have received: the epoch and last offset."""

    epoch: str | None = None
    last: int | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


async def receive(cursor: Cursor, epoch: str, offset: int, frame: str, fill: Fill,
                  emit: Callable[[int, str], None], resync: Callable[[], None]) -> None:
    """Deliver (offset, frame) through `emit` in order; fill a gap first; skip what was delivered already."""
    async with cursor.lock:
        if cursor.epoch is not None and epoch != cursor.epoch:
            cursor.epoch = cursor.last = None
            resync()
            return
        if cursor.last is not None and offset <= cursor.last:
            return  # a duplicate: the relay, a retry or our own publish coming back
        if cursor.last is not None and offset > cursor.last + 1:
            missing = await fill(epoch, cursor.last)
            if missing is None:
                cursor.epoch = cursor.last = None
                resync()
                return
            for entry in missing:
                _emit(cursor, epoch, entry.offset, entry.frame, emit)
            if cursor.last is not None and offset <= cursor.last:
                return
        _emit(cursor, epoch, offset, frame, emit)


async def catch_up(cursor: Cursor, epoch: str, head: int, fill: Fill, emit: Callable[[int, str], None],
                   resync: Callable[[], None]) -> int:
    """The log's head for the topic is `head`: deliver what this process has not received up to it."""
    async with cursor.lock:
        if cursor.last is None:
            return 0
        if cursor.epoch is not None and epoch != cursor.epoch:
            cursor.epoch = cursor.last = None
            resync()
            return 0
        if head <= cursor.last:
            return 0
        missing = await fill(epoch, cursor.last)
        if missing is None:
            cursor.epoch = cursor.last = None
            resync()
            return 0
        before = cursor.last
        for entry in missing:
            _emit(cursor, epoch, entry.offset, entry.frame, emit)
        return cursor.last - before


def _emit(cursor: Cursor, epoch: str, offset: int, frame: str, emit: Callable[[int, str], None]) -> None:
    if cursor.last is not None and offset <= cursor.last:
        return
    cursor.epoch, cursor.last = epoch, offset
    emit(offset, frame)
