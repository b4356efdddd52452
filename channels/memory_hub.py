"""The in-process hub (memory://): the embedded default's real backend, one server process. Live topics are
sequenced here; durable topics (event, user) come sequenced from the database's log (`publish_entries`)."""

from __future__ import annotations

import secrets
import time
from collections import deque
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from channels import messages as m
from channels.hub import HISTORY_SECONDS, HISTORY_SIZE, Entry, Listener, Position, TopicLog
from channels.ordering import Cursor, catch_up, receive
from channels.topics import is_durable

RELAY_WINDOW = 30.0  # seconds of head movements each relay pass looks at


class _Topic:
    __slots__ = ("cursor", "epoch", "listeners", "log", "offset", "presence")

    def __init__(self) -> None:
        self.epoch = secrets.token_hex(8)
        self.offset = 0
        self.log: deque[tuple[float, Entry]] = deque(maxlen=HISTORY_SIZE)
        self.listeners: set[Listener] = set()
        self.presence: dict[str, tuple[str, dict[str, Any]]] = {}  # connection id → (user id, meta)
        self.cursor = Cursor()  # durable topics: what the listeners have received


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class MemoryHub:
    def __init__(self, history_size: int = HISTORY_SIZE, history_seconds: float = HISTORY_SECONDS) -> None:
        self._topics: dict[str, _Topic] = {}
        self._history_seconds = history_seconds
        self._history_size = history_size
        self.published = 0
        self.relayed = 0
        self._swept_at = time.monotonic()
        self._log: TopicLog | None = None

    def attach_log(self, log: TopicLog) -> None:
        self._log = log

    def _durable(self, topic: str) -> TopicLog | None:
        return self._log if self._log is not None and is_durable(topic) else None

    def _topic(self, name: str) -> _Topic:
        topic = self._topics.get(name)
        if topic is None:
            topic = self._topics[name] = _Topic()
            topic.log = deque(maxlen=self._history_size)
        return topic

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        self._topics.clear()

    async def publish(self, topic: str, event: str, data: Any) -> int:
        t = self._topic(topic)
        t.offset += 1
        frame = m.msg(topic, event, t.offset, t.epoch, now_iso(), m.encode_data(data))
        t.log.append((time.monotonic(), Entry(t.offset, frame)))
        self.published += 1
        for listener in list(t.listeners):
            listener.on_msg(topic, t.offset, frame)
        self._forget_if_idle(topic, t)
        return t.offset

    def _forget_if_idle(self, name: str, t: _Topic) -> None:
        # At most once a minute, drop topics nobody listens to whose history has aged out: memory stays
        # bounded by the active topics, and a resume into a forgotten topic is told recovered:false.
        now = time.monotonic()
        if now - self._swept_at < 60:
            return
        self._swept_at = now
        cutoff = now - self._history_seconds
        for key in [k for k, v in self._topics.items()
                    if not v.listeners and not v.presence and (not v.log or v.log[-1][0] < cutoff)]:
            del self._topics[key]

    async def publish_entries(self, topic: str, epoch: str, entries: Sequence[Entry]) -> None:
        t = self._topic(topic)
        for entry in entries:
            await receive(t.cursor, epoch, entry.offset, entry.frame, self._fill(topic),
                          self._emitter(topic, t), self._resyncer(topic, t))
        self.published += len(entries)

    def _fill(self, topic: str) -> Any:
        async def fill(epoch: str, after: int) -> list[Entry] | None:
            return await self.history(topic, epoch, after)
        return fill

    def _emitter(self, topic: str, t: _Topic) -> Any:
        def emit(offset: int, frame: str) -> None:
            for listener in list(t.listeners):
                listener.on_msg(topic, offset, frame)
        return emit

    def _resyncer(self, topic: str, t: _Topic) -> Any:
        def resync() -> None:
            for listener in list(t.listeners):
                listener.on_resync(topic)
        return resync

    async def relay_once(self) -> int:
        if self._log is None:
            return 0
        delivered = 0
        for topic, pos in await self._log.moved_since(RELAY_WINDOW):
            t = self._topics.get(topic)
            if t is not None and t.listeners:
                delivered += await catch_up(t.cursor, pos.epoch, pos.offset, self._fill(topic),
                                            self._emitter(topic, t), self._resyncer(topic, t))
        self.relayed += delivered
        return delivered

    async def subscribe(self, topic: str, listener: Listener) -> None:
        t = self._topic(topic)
        t.listeners.add(listener)
        log = self._durable(topic)
        if log is not None and t.cursor.last is None:
            pos = await log.position(topic)
            async with t.cursor.lock:
                if t.cursor.last is None:
                    t.cursor.epoch, t.cursor.last = pos.epoch, pos.offset

    async def unsubscribe(self, topic: str, listener: Listener) -> None:
        t = self._topics.get(topic)
        if t is not None:
            t.listeners.discard(listener)

    async def position(self, topic: str) -> Position:
        log = self._durable(topic)
        if log is not None:
            return await log.position(topic)
        t = self._topic(topic)
        return Position(t.epoch, t.offset)

    async def history(self, topic: str, epoch: str, after: int) -> list[Entry] | None:
        log = self._durable(topic)
        if log is not None:
            return await log.history(topic, epoch, after)
        t = self._topic(topic)
        if epoch != t.epoch or after > t.offset:
            return None
        if after == t.offset:
            return []
        cutoff = time.monotonic() - self._history_seconds
        entries = [e for ts, e in t.log if e.offset > after and ts >= cutoff]
        if not entries or entries[0].offset != after + 1 or entries[-1].offset != t.offset:
            return None
        return entries

    async def remove_user(self, topic: str, user_id: str, reason: m.LeftReason) -> None:
        t = self._topics.get(topic)
        if t is None:
            return
        for listener in list(t.listeners):
            listener.on_removed(topic, user_id, reason)

    def _broadcast_presence(self, topic: str, t: _Topic, joins: dict[str, Any], leaves: dict[str, Any]) -> None:
        frame = m.presence(topic, joins, leaves)
        for listener in list(t.listeners):
            listener.on_presence(topic, frame)

    async def track(self, topic: str, connection_id: str, user_id: str, meta: dict[str, Any]) -> dict[str, Any]:
        t = self._topic(topic)
        first = all(uid != user_id for uid, _ in t.presence.values())
        t.presence[connection_id] = (user_id, meta)
        if first:
            self._broadcast_presence(topic, t, {user_id: meta}, {})
        return {uid: meta for uid, meta in t.presence.values()}

    async def untrack(self, topic: str, connection_id: str, user_id: str) -> None:
        t = self._topics.get(topic)
        if t is None or t.presence.pop(connection_id, None) is None:
            return
        if all(uid != user_id for uid, _ in t.presence.values()):
            self._broadcast_presence(topic, t, {}, {user_id: {}})

    async def presence(self, topic: str) -> dict[str, Any]:
        t = self._topics.get(topic)
        return {} if t is None else {uid: meta for uid, meta in t.presence.values()}

    def local_stats(self) -> dict[str, int]:
        return {"topics": sum(1 for t in self._topics.values() if t.listeners),
                "subscriptions": sum(len(t.listeners) for t in self._topics.values()),
                "published": self.published, "relayed": self.relayed}
