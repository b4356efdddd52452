"""The Redis hub (redis://): one ordered log per topic shared by every instance.

Per topic: a counter (offsets), an epoch (a new one whenever Redis lost the counter), a stream holding the
last HISTORY_SIZE frames (expiring after HISTORY_SECONDS idle), and a pub/sub channel. One Lua script
increments the counter, builds the frame, appends it to the stream and publishes it, so every instance
sees one order. Each process holds one subscription per topic it has local listeners for and fans out
locally. A missing offset is fetched from the stream; if it is gone (or the epoch changed because Redis
restarted), listeners are told to resync — never a silent gap.

Durable topics (event, user) are sequenced by the database instead: `publish_entries` fans out entries the log
already holds, positions and history come from the log, and `relay_once` (polled by the server) delivers what
an instance committed but never published — so neither a dead instance nor a Redis outage loses a change.

On a Redis Cluster (`redis+cluster://`) every key of a topic, its presence and its channel carry the topic as
hash tag (one slot, so each script runs on one node), and fan-out uses sharded pub/sub: SPUBLISH from the
scripts, SSUBSCRIBE on the node that owns the slot. When a slot moves or its master fails over, redis-py's
cluster pub/sub re-subscribes on the new owner; that confirmation arriving again for a topic we already
listened on means messages may have been missed meanwhile, so the topic catches up from its history — the
database's log for durable topics, the stream otherwise; a promoted replica is another server process, so a
hub-sequenced topic on that shard gets a new epoch and its listeners resync (its last writes may not have
reached the replica: replication is asynchronous).

Channel payloads: `m<offset>|<epoch>|<frame>` (hub-sequenced), `l<instance>|<offset>|<epoch>|<frame>` (a durable
log entry, skipped by the instance that sent it), `p<frame>` (presence), `k<userId>|<reason>` (removal).

This module is the facade the server sees (the `Hub` of `channels/hub.py`). Its parts: `redis_scripts.py` (a
topic's keys and the sequencing scripts), `redis_topic.py` (one topic as this process follows it: listeners,
cursor, recent entries), `redis_subscriptions.py` (the pub/sub connection and its reader), `redis_presence.py`
(who is connected, across instances)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import deque
from collections.abc import Sequence
from typing import Any, cast

from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from channels import messages as m
from channels.hub import HISTORY_SECONDS, HISTORY_SIZE, PRESENCE_TTL, Entry, Listener, Position, TopicLog
from channels.memory_hub import RELAY_WINDOW, now_iso
from channels.ordering import Fill
from channels.redis_client import RedisClient, connect, is_cluster
from channels.redis_presence import RedisPresence
from channels.redis_scripts import (
    HISTORY,
    KEYS_TTL_SECONDS,
    POSITION,
    PUBLISH,
    PUBLISH_ID_TTL_MS,
    KeyLayout,
    contiguous,
)
from channels.redis_subscriptions import Subscriptions
from channels.redis_topic import TopicState
from channels.topics import is_durable

log = logging.getLogger("conversme.hub")

MAX_OUTGOING = 50_000  # log entries waiting for Redis; past that the oldest go (the relay still delivers them)


class RedisHub:
    def __init__(self, url: str, instance_id: str, prefix: str = "cm:", history_size: int = HISTORY_SIZE,
                 history_seconds: float = HISTORY_SECONDS, presence_ttl: float = PRESENCE_TTL) -> None:
        self._url = url
        self.instance_id = instance_id
        self._origin = instance_id.replace("|", "_")  # tags this instance's log entries on the wire
        self._cluster = is_cluster(url)
        self._layout = KeyLayout(prefix, self._cluster)
        self._history_size = history_size
        self._history_ms = int(history_seconds * 1000)
        self._keys_ttl_ms = int(max(KEYS_TTL_SECONDS, history_seconds) * 1000)
        self._redis: RedisClient | None = None
        self._topics: dict[str, TopicState] = {}
        self._presence = RedisPresence(self._layout, presence_ttl, lambda: self._topics)
        self._subscriptions = Subscriptions(self._layout, f"{prefix}ctl:{instance_id}", lambda: self._topics,
                                            self._handle, self._reconnected)
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        self.published = 0
        self.reconnects = 0
        self.relayed = 0
        self.publish_dropped = 0
        self._log: TopicLog | None = None
        self._outgoing: deque[tuple[str, str]] = deque()
        self._outgoing_ready = asyncio.Event()
        self._history_flights: dict[tuple[str, str, int], asyncio.Future[list[Entry] | None]] = {}
        self.history_from_memory = 0

    def attach_log(self, log: TopicLog) -> None:
        self._log = log

    def _durable(self, topic: str) -> TopicLog | None:
        return self._log if self._log is not None and is_durable(topic) else None

    @property
    def redis(self) -> RedisClient:
        if self._redis is None:
            raise RuntimeError("hub not started")
        return self._redis

    # ---- lifecycle ----------------------------------------------------------------------------------

    async def start(self) -> None:
        # Fail fast while Redis is away: publishes go to the outbox and retry, requests are not held up.
        self._redis = connect(self._url, decode_responses=True, health_check_interval=10,
                              socket_connect_timeout=2, socket_timeout=5,
                              retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 2))
        self._publish = self._layout.script(self._redis, PUBLISH)
        self._position = self._layout.script(self._redis, POSITION)
        self._history = self._layout.script(self._redis, HISTORY)
        self._presence.start(self._redis)
        await self._subscriptions.open(self._redis)
        self._tasks = [asyncio.create_task(self._subscriptions.read(), name="hub-reader"),
                       asyncio.create_task(self._presence.upkeep(), name="hub-presence"),
                       asyncio.create_task(self._send_loop(), name="hub-sender")]

    async def close(self) -> None:
        self._closing = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self._presence.close()
        await self._subscriptions.close()
        if self._redis is not None:
            await self._redis.aclose()

    # ---- log ----------------------------------------------------------------------------------------

    async def publish(self, topic: str, event: str, data: Any) -> int:
        head = m.msg(topic, event, 0, "", "", "null")
        prefix = head[: head.index('"offset":') + len('"offset":')]
        suffix = ',"ts":"' + now_iso() + '","data":' + m.encode_data(data) + "}"
        publish_id = secrets.token_hex(12)  # the same on every retry of this one call
        offset = await self._publish(
            keys=[*self._layout.keys(topic), self._layout.publish_id_key(topic, publish_id)],
            args=[self._layout.channel(topic), prefix, suffix, secrets.token_hex(8), self._history_size,
                  self._history_ms, int(time.time() * 1000), self._keys_ttl_ms, PUBLISH_ID_TTL_MS],
        )
        self.published += 1
        return int(offset)

    async def publish_entries(self, topic: str, epoch: str, entries: Sequence[Entry]) -> None:
        # This process's listeners first, straight from memory: they do not wait on (or depend on) Redis.
        local = self._topics.get(topic)
        if local is not None:
            for entry in entries:
                await local.receive(epoch, entry.offset, entry.frame)
        # The other instances hear of it through Redis, sent by a task of its own: a stalled Redis must not hold
        # up the request that committed (the entries are durable; a publish that never happens is relayed).
        for entry in entries:
            if len(self._outgoing) >= MAX_OUTGOING:
                self._outgoing.popleft()
                self.publish_dropped += 1
            payload = f"l{self._origin}|{entry.offset}|{epoch}|{entry.frame}"
            self._outgoing.append((self._layout.channel(topic), payload))
        self._outgoing_ready.set()
        self.published += len(entries)

    async def _send_loop(self) -> None:
        while not self._closing:
            await self._outgoing_ready.wait()
            self._outgoing_ready.clear()
            while self._outgoing:
                batch = [self._outgoing.popleft() for _ in range(min(len(self._outgoing), 256))]
                try:
                    async with self.redis.pipeline(transaction=False) as pipe:
                        for channel, payload in batch:
                            if self._cluster:
                                pipe.spublish(channel, payload)
                            else:
                                pipe.publish(channel, payload)
                        await pipe.execute()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    # Committed already: the other instances' relay reads these from the database.
                    self.publish_dropped += len(batch)
                    log.warning("could not publish %d log entries (%s); the relay delivers them", len(batch), exc)

    async def relay_once(self) -> int:
        if self._log is None:
            return 0
        delivered = 0
        for topic, pos in await self._log.moved_since(RELAY_WINDOW):
            local = self._topics.get(topic)
            if local is not None and local.listeners:
                delivered += await local.catch_up_to(pos.epoch, pos.offset)
        self.relayed += delivered
        return delivered

    async def position(self, topic: str) -> Position:
        durable = self._durable(topic)
        if durable is not None:
            # Subscribed here: what this process delivered is the position, without a query. Anything committed
            # after it reaches the subscriber as a message (it subscribed before asking), so nothing is skipped.
            local = self._topics.get(topic)
            if local is not None and local.cursor.epoch is not None and local.cursor.last is not None:
                return Position(local.cursor.epoch, local.cursor.last)
            return await durable.position(topic)
        epoch, offset = await self._position(keys=self._layout.keys(topic),
                                             args=[secrets.token_hex(8), self._keys_ttl_ms])
        return Position(str(epoch), int(offset))

    async def history(self, topic: str, epoch: str, after: int) -> list[Entry] | None:
        """The entries after `after`, for a resume: from memory when this process delivered them, else from the
        log — one query for every resume of the same topic from the same offset at the same moment."""
        local = self._topics.get(topic)
        remembered = local.from_memory(epoch, after) if local is not None else None
        if remembered is not None:
            self.history_from_memory += 1
            return remembered
        key = (topic, epoch, after)
        flight = self._history_flights.get(key)
        if flight is None:
            flight = self._history_flights[key] = asyncio.ensure_future(self._log_history(topic, epoch, after))
            flight.add_done_callback(lambda _: self._history_flights.pop(key, None))
        entries = await asyncio.shield(flight)
        local = self._topics.get(topic)
        if entries and local is not None:
            local.remember(epoch, entries)
        return entries

    async def _log_history(self, topic: str, epoch: str, after: int) -> list[Entry] | None:
        durable = self._durable(topic)
        if durable is not None:
            return await durable.history(topic, epoch, after)
        current_epoch, offset, raw = await self._history(keys=self._layout.keys(topic), args=[epoch, after])
        if current_epoch != epoch or after > int(offset):
            return None
        return contiguous(raw, after, int(offset), self._history_ms)

    # ---- subscriptions ------------------------------------------------------------------------------

    async def subscribe(self, topic: str, listener: Listener) -> None:
        local = self._topics.get(topic)
        durable = self._durable(topic)
        if local is None:
            local = self._topics[topic] = TopicState(topic, self._fill(topic),
                                                     ready=asyncio.get_running_loop().create_future())
            try:
                await self._subscriptions.add(topic)
            except (RedisError, OSError, RuntimeError) as exc:
                # Redis is away or just came back: the reader's reconnect subscribes every topic in _topics.
                if durable is None:
                    del self._topics[topic]
                    raise RedisConnectionError(f"cannot subscribe to {topic}: {exc}") from exc
                # A durable topic does not need Redis to be complete: the relay delivers from the log meanwhile.
                log.warning("subscribing to %s failed (%s); the log relay delivers until Redis answers", topic, exc)
                if local.ready is not None and not local.ready.done():
                    local.ready.set_result(None)
        local.listeners.add(listener)
        if local.ready is not None and not local.ready.done():
            # The reader confirms the SUBSCRIBE; after that every publish reaches us.
            await asyncio.wait_for(asyncio.shield(local.ready), timeout=10)
        if durable is not None and local.cursor.last is None:
            # From here on a gap is noticed (and filled from the log), even before the first message arrives.
            # One query however many sockets join the topic at once (a storm: the whole room).
            if local.placing is None or local.placing.done():  # none in flight (or a reset since): place it
                local.placing = asyncio.ensure_future(self._place_cursor(topic, local, durable))
            await asyncio.shield(local.placing)

    async def _place_cursor(self, topic: str, local: TopicState, durable: TopicLog) -> None:
        pos = await durable.position(topic)
        async with local.cursor.lock:
            if local.cursor.last is None:
                local.cursor.epoch, local.cursor.last = pos.epoch, pos.offset

    async def unsubscribe(self, topic: str, listener: Listener) -> None:
        local = self._topics.get(topic)
        if local is None:
            return
        local.listeners.discard(listener)
        if not local.listeners:
            del self._topics[topic]
            await self._subscriptions.remove(topic)

    async def remove_user(self, topic: str, user_id: str, reason: m.LeftReason) -> None:
        if self._cluster:
            await self.redis.spublish(self._layout.channel(topic), f"k{user_id}|{reason}")
        else:
            await self.redis.publish(self._layout.channel(topic), f"k{user_id}|{reason}")

    # ---- what the subscriptions read (channels/redis_subscriptions.py) --------------------------------

    async def _reconnected(self) -> None:
        self.reconnects += 1
        # Anything published while we were away is fetched from the history (the database's log for durable
        # topics, the stream for the others); if it is gone, resync.
        for local in list(self._topics.values()):
            await local.catch_up()

    async def _handle(self, message: dict[str, Any]) -> None:
        channel = str(message["channel"])
        topic = self._layout.topic_of(channel)
        kind = message["type"]
        if kind in ("subscribe", "ssubscribe"):
            local = self._topics.get(topic)
            if local is not None and local.ready is not None and not local.ready.done():
                local.ready.set_result(None)
            elif local is not None and self._cluster:
                # redis-py re-subscribed on its own (the slot moved, or its master failed over): anything
                # published between losing the old node and this confirmation comes from the history.
                self.reconnects += 1
                await local.catch_up()
            return
        if kind not in ("message", "smessage"):
            return
        local = self._topics.get(topic)
        if local is None:
            return
        data = str(message["data"])
        tag, body = data[0], data[1:]
        if tag == "m":
            off_s, epoch, frame = body.split("|", 2)
            await local.receive(epoch, int(off_s), frame)
        elif tag == "l":
            origin, rest = body.split("|", 1)
            if origin != self._origin:  # our own entries reached our listeners before they left for Redis
                off_s, epoch, frame = rest.split("|", 2)
                await local.receive(epoch, int(off_s), frame)
        elif tag == "p":
            for listener in list(local.listeners):
                listener.on_presence(topic, body)
        elif tag == "k":
            user_id, reason = body.split("|", 1)
            for listener in list(local.listeners):
                listener.on_removed(topic, user_id, cast(m.LeftReason, reason))  # as remove_user wrote it

    def _fill(self, topic: str) -> Fill:
        async def fill(epoch: str, after: int) -> list[Entry] | None:
            return await self._log_history(topic, epoch, after)  # never memory: it fills what memory lacks
        return fill

    # ---- presence (channels/redis_presence.py) -------------------------------------------------------

    async def track(self, topic: str, connection_id: str, user_id: str, meta: dict[str, Any]) -> dict[str, Any]:
        return await self._presence.track(topic, connection_id, user_id, meta)

    async def untrack(self, topic: str, connection_id: str, user_id: str) -> None:
        await self._presence.untrack(topic, connection_id, user_id)

    async def presence(self, topic: str) -> dict[str, Any]:
        return await self._presence.presence(topic)

    def local_stats(self) -> dict[str, int]:
        return {"topics": len(self._topics), "subscriptions": sum(len(t.listeners) for t in self._topics.values()),
                "published": self.published, "reconnects": self.reconnects, "relayed": self.relayed,
                "publishDropped": self.publish_dropped}
