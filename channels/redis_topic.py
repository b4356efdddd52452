"""One topic as this process follows it on the Redis hub: its local listeners, the cursor that keeps their
messages in offset order (a gap is filled from the history before anything after it is delivered; a gap that
cannot be filled makes them resync), and the last entries delivered here, so that a resume within them needs no
round trip (in a reconnect storm, a room's members all ask for the same few entries at once)."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from channels.hub import Entry, Listener
from channels.ordering import Cursor, Fill, catch_up, receive

log = logging.getLogger("conversme.hub")

RECENT = 256  # log entries each subscribed topic keeps in memory, for resumes


@dataclass
class TopicState:
    topic: str
    fill: Fill  # the history after an offset: the durable log or the stream, never this memory
    listeners: set[Listener] = field(default_factory=set)
    cursor: Cursor = field(default_factory=Cursor)
    ready: asyncio.Future[None] | None = None
    # The last entries delivered here, contiguous and ending at cursor.last.
    recent: deque[Entry] = field(default_factory=lambda: deque(maxlen=RECENT))
    placing: asyncio.Future[None] | None = None  # the one query placing a new durable topic's cursor

    async def receive(self, epoch: str, offset: int, frame: str) -> None:
        await receive(self.cursor, epoch, offset, frame, self.fill, self.emit, self.resync)

    async def catch_up_to(self, epoch: str, head: int) -> int:
        return await catch_up(self.cursor, epoch, head, self.fill, self.emit, self.resync)

    async def catch_up(self) -> None:
        """Whatever was published since the last delivery, after losing the subscription for a while."""
        cursor = self.cursor
        if cursor.last is None or cursor.epoch is None:
            return
        await self.catch_up_to(cursor.epoch, 1 << 62)

    def emit(self, offset: int, frame: str) -> None:
        self.recent.append(Entry(offset, frame))  # in order, gaps filled first: contiguous
        for listener in list(self.listeners):
            listener.on_msg(self.topic, offset, frame)

    def resync(self) -> None:
        log.warning("hub cannot recover %s (epoch changed or history gone); listeners resync", self.topic)
        self.recent.clear()
        for listener in list(self.listeners):
            listener.on_resync(self.topic)

    def from_memory(self, epoch: str, after: int) -> list[Entry] | None:
        """The entries after `after` if this process delivered them all, else None."""
        if self.cursor.epoch == epoch and self.cursor.last is not None and after <= self.cursor.last:
            recent = self.recent
            if after == self.cursor.last:
                return []  # later entries reach the subscriber as messages
            if recent and recent[0].offset <= after + 1 and recent[-1].offset == self.cursor.last:
                return list(itertools.islice(recent, after + 1 - recent[0].offset, None))
        return None

    def remember(self, epoch: str, entries: Sequence[Entry]) -> None:
        if entries and not self.recent and self.cursor.epoch == epoch \
                and self.cursor.last is not None and entries[0].offset <= self.cursor.last:
            # Nothing delivered here since subscribing: the log's entries up to the cursor start the memory.
            upto = [e for e in entries if e.offset <= self.cursor.last]
            if upto[-1].offset == self.cursor.last:
                self.recent.extend(upto)
