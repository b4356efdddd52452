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
log entry, skipped by the instance that sent it), `p<frame>` (presence), `k<userId>|<reason>` (removal)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import orjson
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from channels import messages as m
from channels.batching import Batcher
from channels.hub import HISTORY_SECONDS, HISTORY_SIZE, PRESENCE_TTL, Entry, Listener, Position, TopicLog
from channels.memory_hub import RELAY_WINDOW, now_iso
from channels.ordering import Cursor, catch_up, receive
from channels.redis_client import RedisClient, connect, is_cluster, key
from channels.topics import is_durable

log = logging.getLogger("conversme.hub")

KEYS_TTL_SECONDS = 24 * 3600
PUBLISH_ID_TTL_MS = 30_000  # longer than the client's retries of one publish (2 retries, 5 s timeouts)
MAX_OUTGOING = 50_000  # log entries waiting for Redis; past that the oldest go (the relay still delivers them)

# The counter and epoch outlive the stream (ARGV[8] ms after the last publish, a day by default) so a client
# that was away longer than the history is told recovered:false rather than handed a reset log; an idle
# room's keys then go away on their own.
# Hub-sequenced (live) topics. The epoch is bound to the Redis server process (the first 12 characters of its
# run_id, read by the script itself): a restart, a restore from an older snapshot or a failover to a replica is
# another process, so the topic gets a new epoch and `recovered:true` can never hand out offsets that were
# rewound and reused. KEYS[4] makes a publish idempotent: the client library's retry of a script that already
# ran returns the first offset (for ARGV[9] ms).
RUN = "local run = string.sub(string.match(redis.call('INFO', 'server'), 'run_id:(%w+)'), 1, 12)\n"

PUBLISH = RUN + """
local done = redis.call('GET', KEYS[4])
if done then return tonumber(done) end
local epoch = redis.call('GET', KEYS[2])
if not epoch or string.sub(epoch, 1, 12) ~= run then epoch = run .. ARGV[4] end
redis.call('SET', KEYS[2], epoch, 'PX', ARGV[8])
local off = redis.call('INCR', KEYS[1])
redis.call('SET', KEYS[4], off, 'PX', ARGV[9])
redis.call('PEXPIRE', KEYS[1], ARGV[8])
local frame = ARGV[2] .. off .. ',"epoch":"' .. epoch .. '"' .. ARGV[3]
redis.call('XADD', KEYS[3], 'MAXLEN', ARGV[5], '0-' .. off, 'f', frame, 't', ARGV[7])
redis.call('PEXPIRE', KEYS[3], ARGV[6])
redis.call('PUBLISH', ARGV[1], 'm' .. off .. '|' .. epoch .. '|' .. frame)
return off
"""

POSITION = RUN + """
local epoch = redis.call('GET', KEYS[2])
if not epoch or string.sub(epoch, 1, 12) ~= run then
  epoch = run .. ARGV[1]; redis.call('SET', KEYS[2], epoch, 'PX', ARGV[2])
end
return {epoch, tonumber(redis.call('GET', KEYS[1]) or '0')}
"""

HISTORY = RUN + """
local epoch = redis.call('GET', KEYS[2])
if epoch and string.sub(epoch, 1, 12) ~= run then epoch = nil end
local off = tonumber(redis.call('GET', KEYS[1]) or '0')
local entries = {}
if epoch == ARGV[1] and off > tonumber(ARGV[2]) then
  entries = redis.call('XRANGE', KEYS[3], '0-' .. (tonumber(ARGV[2]) + 1), '+')
end
return {epoch or '', off, entries}
"""

# Many connections of one topic at once. KEYS: zset of members by expiry, hash of metas. ARGV: expiry, now,
# channel, frame prefix, frame suffix, then (member, meta, user id, joins entry) per connection. One presence
# frame announces every user among them who had no live connection before, instead of one frame per join (each
# frame goes to every member of the room: a storm of N joins into a room was N² deliveries).
TRACK_MANY = """
local live = {}
for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[2], '+inf')) do
  live[string.match(member, '^[^\t]*')] = true
end
local joins = {}
for i = 6, #ARGV, 4 do
  redis.call('ZADD', KEYS[1], ARGV[1], ARGV[i])
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  if not live[ARGV[i + 2]] then
    live[ARGV[i + 2]] = true
    joins[#joins + 1] = ARGV[i + 3]
  end
end
if #joins > 0 then redis.call('PUBLISH', ARGV[3], 'p' .. ARGV[4] .. table.concat(joins, ',') .. ARGV[5]) end
return #joins
"""

UNTRACK = """
local removed = redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
if removed == 0 then return 0 end
for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[2], '+inf')) do
  if string.sub(member, 1, string.len(ARGV[3])) == ARGV[3] then return 1 end
end
redis.call('PUBLISH', ARGV[4], 'p' .. ARGV[5])
return 1
"""


RECENT = 256  # log entries each subscribed topic keeps in memory, for resumes


@dataclass
class _Local:
    listeners: set[Listener] = field(default_factory=set)
    cursor: Cursor = field(default_factory=Cursor)
    ready: asyncio.Future[None] | None = None
    # The last entries delivered here, contiguous and ending at cursor.last: a resume within them needs no
    # round trip (in a reconnect storm, a room's members all ask for the same few entries at once).
    recent: deque[Entry] = field(default_factory=lambda: deque(maxlen=RECENT))
    placing: asyncio.Future[None] | None = None  # the one query placing a new durable topic's cursor


class RedisHub:
    def __init__(self, url: str, instance_id: str, prefix: str = "cm:", history_size: int = HISTORY_SIZE,
                 history_seconds: float = HISTORY_SECONDS, presence_ttl: float = PRESENCE_TTL) -> None:
        self._url = url
        self._presence_ttl = presence_ttl
        self.instance_id = instance_id
        self._origin = instance_id.replace("|", "_")  # tags this instance's log entries on the wire
        self._p = prefix
        self._cluster = is_cluster(url)
        self._history_size = history_size
        self._history_ms = int(history_seconds * 1000)
        self._keys_ttl_ms = int(max(KEYS_TTL_SECONDS, history_seconds) * 1000)
        self._redis: RedisClient | None = None
        self._pubsub: PubSub | None = None
        self._topics: dict[str, _Local] = {}
        self._mine: dict[tuple[str, str], str] = {}  # (topic, connection id) → user id, refreshed while alive
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        self.published = 0
        self.reconnects = 0
        self.relayed = 0
        self.publish_dropped = 0
        self._log: TopicLog | None = None
        self._outgoing: deque[tuple[str, str]] = deque()
        self._outgoing_ready = asyncio.Event()
        # Presence writes and reads of connections joining at the same moment: one round trip for all of them.
        self._tracks: Batcher[tuple[str, str, str, str], bool] = Batcher(self._track_batch)
        self._presences: Batcher[str, dict[str, Any]] = Batcher(self._presence_many)
        self._history_flights: dict[tuple[str, str, int], asyncio.Future[list[Entry] | None]] = {}
        self.history_from_memory = 0

    def attach_log(self, log: TopicLog) -> None:
        self._log = log

    def _durable(self, topic: str) -> TopicLog | None:
        return self._log if self._log is not None and is_durable(topic) else None

    # ---- keys ---------------------------------------------------------------------------------------

    def _keys(self, topic: str) -> list[str]:
        return [key(self._p, kind, topic, self._cluster) for kind in ("o:", "e:", "s:")]

    def _channel(self, topic: str) -> str:
        return key(self._p, "c:", topic, self._cluster)

    def _topic_of(self, channel: str) -> str:
        return channel[len(self._p) + 3:-1] if self._cluster else channel[len(self._p) + 2:]

    def _publish_id_key(self, topic: str, publish_id: str) -> str:
        # On a cluster in the topic's slot (the script reads it); on one server the name it always had.
        return f"{self._p}pid:{{{topic}}}:{publish_id}" if self._cluster else f"{self._p}pid:{publish_id}"

    def _script(self, text: str) -> Any:
        # Sharded pub/sub on a cluster: the channel shares the topic's slot, so the script stays on one node.
        return self.redis.register_script(text.replace("'PUBLISH'", "'SPUBLISH'") if self._cluster else text)

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
        self._publish = self._script(PUBLISH)
        self._position = self._script(POSITION)
        self._history = self._script(HISTORY)
        self._untrack = self._script(UNTRACK)
        self._track_many = self._script(TRACK_MANY)
        await self._open_pubsub()
        self._tasks = [asyncio.create_task(self._read_loop(), name="hub-reader"),
                       asyncio.create_task(self._presence_loop(), name="hub-presence"),
                       asyncio.create_task(self._send_loop(), name="hub-sender")]

    async def _open_pubsub(self) -> None:
        self._pubsub = self.redis.pubsub()
        # A subscription of our own keeps the connection valid while no topic is subscribed.
        own = f"{self._p}ctl:{self.instance_id}"
        if self._cluster:
            await self._pubsub.ssubscribe(own)
            for topic in self._topics:  # one SSUBSCRIBE per topic: each may live on another node
                await self._pubsub.ssubscribe(self._channel(topic))
        else:
            await self._pubsub.subscribe(own, *[self._channel(t) for t in self._topics])

    async def close(self) -> None:
        self._closing = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for (topic, conn), user in list(self._mine.items()):
            with contextlib.suppress(Exception):
                await self.untrack(topic, conn, user)
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()
        if self._redis is not None:
            await self._redis.aclose()

    # ---- log ----------------------------------------------------------------------------------------

    async def publish(self, topic: str, event: str, data: Any) -> int:
        head = m.msg(topic, event, 0, "", "", "null")
        prefix = head[: head.index('"offset":') + len('"offset":')]
        suffix = ',"ts":"' + now_iso() + '","data":' + m.encode_data(data) + "}"
        publish_id = secrets.token_hex(12)  # the same on every retry of this one call
        offset = await self._publish(
            keys=[*self._keys(topic), self._publish_id_key(topic, publish_id)],
            args=[self._channel(topic), prefix, suffix, secrets.token_hex(8), self._history_size,
                  self._history_ms, int(time.time() * 1000), self._keys_ttl_ms, PUBLISH_ID_TTL_MS],
        )
        self.published += 1
        return int(offset)

    async def publish_entries(self, topic: str, epoch: str, entries: Sequence[Entry]) -> None:
        # This process's listeners first, straight from memory: they do not wait on (or depend on) Redis.
        local = self._topics.get(topic)
        if local is not None:
            for entry in entries:
                await self._receive(topic, local, epoch, entry.offset, entry.frame)
        # The other instances hear of it through Redis, sent by a task of its own: a stalled Redis must not hold
        # up the request that committed (the entries are durable; a publish that never happens is relayed).
        for entry in entries:
            if len(self._outgoing) >= MAX_OUTGOING:
                self._outgoing.popleft()
                self.publish_dropped += 1
            self._outgoing.append((self._channel(topic), f"l{self._origin}|{entry.offset}|{epoch}|{entry.frame}"))
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
                delivered += await catch_up(local.cursor, pos.epoch, pos.offset, self._fill(topic),
                                            self._emitter(topic, local), self._resyncer(topic, local))
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
        epoch, offset = await self._position(keys=self._keys(topic), args=[secrets.token_hex(8), self._keys_ttl_ms])
        return Position(str(epoch), int(offset))

    async def history(self, topic: str, epoch: str, after: int) -> list[Entry] | None:
        """The entries after `after`, for a resume: from memory when this process delivered them, else from the
        log — one query for every resume of the same topic from the same offset at the same moment."""
        local = self._topics.get(topic)
        if local is not None and local.cursor.epoch == epoch and local.cursor.last is not None \
                and after <= local.cursor.last:
            recent = local.recent
            if after == local.cursor.last:
                self.history_from_memory += 1
                return []  # later entries reach the subscriber as messages
            if recent and recent[0].offset <= after + 1 and recent[-1].offset == local.cursor.last:
                self.history_from_memory += 1
                return list(itertools.islice(recent, after + 1 - recent[0].offset, None))
        key = (topic, epoch, after)
        flight = self._history_flights.get(key)
        if flight is None:
            flight = self._history_flights[key] = asyncio.ensure_future(self._log_history(topic, epoch, after))
            flight.add_done_callback(lambda _: self._history_flights.pop(key, None))
        entries = await asyncio.shield(flight)
        local = self._topics.get(topic)
        if entries and local is not None and not local.recent and local.cursor.epoch == epoch \
                and local.cursor.last is not None and entries[0].offset <= local.cursor.last:
            # Nothing delivered here since subscribing: the log's entries up to the cursor start the memory.
            upto = [e for e in entries if e.offset <= local.cursor.last]
            if upto[-1].offset == local.cursor.last:
                local.recent.extend(upto)
        return entries

    async def _log_history(self, topic: str, epoch: str, after: int) -> list[Entry] | None:
        durable = self._durable(topic)
        if durable is not None:
            return await durable.history(topic, epoch, after)
        current_epoch, offset, raw = await self._history(keys=self._keys(topic), args=[epoch, after])
        if current_epoch != epoch or after > int(offset):
            return None
        return self._contiguous(raw, after, int(offset))

    def _contiguous(self, raw: list[Any], after: int, until: int) -> list[Entry] | None:
        cutoff = int(time.time() * 1000) - self._history_ms
        entries: list[Entry] = []
        expected = after + 1
        for entry_id, fields in raw:
            offset = int(str(entry_id).split("-")[1])
            values = dict(zip(fields[::2], fields[1::2], strict=True)) if isinstance(fields, list) else fields
            if offset != expected or int(values["t"]) < cutoff:
                return None
            entries.append(Entry(offset, values["f"]))
            expected += 1
            if offset == until:
                break
        return entries if expected == until + 1 else None

    # ---- subscriptions ------------------------------------------------------------------------------

    async def subscribe(self, topic: str, listener: Listener) -> None:
        local = self._topics.get(topic)
        durable = self._durable(topic)
        if local is None:
            local = self._topics[topic] = _Local(ready=asyncio.get_running_loop().create_future())
            assert self._pubsub is not None
            try:
                await self._sub(self._channel(topic))
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

    async def _place_cursor(self, topic: str, local: _Local, durable: TopicLog) -> None:
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
            if self._pubsub is not None:
                with contextlib.suppress(RedisError, OSError):
                    if self._cluster:
                        await self._pubsub.sunsubscribe(self._channel(topic))
                    else:
                        await self._pubsub.unsubscribe(self._channel(topic))

    async def _sub(self, channel: str) -> None:
        assert self._pubsub is not None
        if self._cluster:
            await self._pubsub.ssubscribe(channel)
        else:
            await self._pubsub.subscribe(channel)

    async def remove_user(self, topic: str, user_id: str, reason: m.LeftReason) -> None:
        if self._cluster:
            await self.redis.spublish(self._channel(topic), f"k{user_id}|{reason}")
        else:
            await self.redis.publish(self._channel(topic), f"k{user_id}|{reason}")

    # ---- the reader ---------------------------------------------------------------------------------

    async def _read_loop(self) -> None:
        backoff = 0.1
        while not self._closing:
            try:
                assert self._pubsub is not None
                if self._cluster:
                    message = await cast(Any, self._pubsub).get_sharded_message(timeout=1.0)
                else:
                    message = await self._pubsub.get_message(timeout=1.0)
                backoff = 0.1
                if message is not None:
                    await self._handle(message)
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError, RuntimeError) as exc:
                # RuntimeError: redis-py dropped the pub/sub connection after an error ("connection not set").
                log.warning("hub lost Redis (%s); reconnecting in %.1f s", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                try:
                    await self._reconnect()
                except Exception as again:
                    log.info("Redis still unreachable: %s", again)
            except Exception:
                log.exception("hub reader failed on a message")
                await asyncio.sleep(0.01)  # never spin without yielding

    async def _reconnect(self) -> None:
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()
        await self._open_pubsub()
        self.reconnects += 1
        # Anything published while we were away is fetched from the history (the database's log for durable
        # topics, the stream for the others); if it is gone, resync.
        for topic, local in list(self._topics.items()):
            await self._catch_up(topic, local)

    async def _catch_up(self, topic: str, local: _Local) -> None:
        cursor = local.cursor
        if cursor.last is None or cursor.epoch is None:
            return
        await catch_up(cursor, cursor.epoch, 1 << 62, self._fill(topic),
                       self._emitter(topic, local), self._resyncer(topic, local))

    async def _handle(self, message: dict[str, Any]) -> None:
        channel = str(message["channel"])
        topic = self._topic_of(channel)
        kind = message["type"]
        if kind in ("subscribe", "ssubscribe"):
            local = self._topics.get(topic)
            if local is not None and local.ready is not None and not local.ready.done():
                local.ready.set_result(None)
            elif local is not None and self._cluster:
                # redis-py re-subscribed on its own (the slot moved, or its master failed over): anything
                # published between losing the old node and this confirmation comes from the history.
                self.reconnects += 1
                await self._catch_up(topic, local)
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
            await self._receive(topic, local, epoch, int(off_s), frame)
        elif tag == "l":
            origin, rest = body.split("|", 1)
            if origin != self._origin:  # our own entries reached our listeners before they left for Redis
                off_s, epoch, frame = rest.split("|", 2)
                await self._receive(topic, local, epoch, int(off_s), frame)
        elif tag == "p":
            for listener in list(local.listeners):
                listener.on_presence(topic, body)
        elif tag == "k":
            user_id, reason = body.split("|", 1)
            for listener in list(local.listeners):
                listener.on_removed(topic, user_id, cast(m.LeftReason, reason))  # as remove_user wrote it

    async def _receive(self, topic: str, local: _Local, epoch: str, offset: int, frame: str) -> None:
        await receive(local.cursor, epoch, offset, frame, self._fill(topic), self._emitter(topic, local),
                      self._resyncer(topic, local))

    def _fill(self, topic: str) -> Any:
        async def fill(epoch: str, after: int) -> list[Entry] | None:
            return await self._log_history(topic, epoch, after)  # never memory: it fills what memory lacks
        return fill

    def _emitter(self, topic: str, local: _Local) -> Any:
        def emit(offset: int, frame: str) -> None:
            local.recent.append(Entry(offset, frame))  # in order, gaps filled first: contiguous
            for listener in list(local.listeners):
                listener.on_msg(topic, offset, frame)
        return emit

    def _resyncer(self, topic: str, local: _Local) -> Any:
        def resync() -> None:
            log.warning("hub cannot recover %s (epoch changed or history gone); listeners resync", topic)
            local.recent.clear()
            for listener in list(local.listeners):
                listener.on_resync(topic)
        return resync

    # ---- presence -----------------------------------------------------------------------------------

    def _pkeys(self, topic: str) -> list[str]:
        return [key(self._p, "pz:", topic, self._cluster), key(self._p, "ph:", topic, self._cluster)]

    async def track(self, topic: str, connection_id: str, user_id: str, meta: dict[str, Any]) -> None:
        self._mine[(topic, connection_id)] = user_id
        await self._tracks.get((topic, connection_id, user_id, orjson.dumps(meta).decode()))

    async def _track_batch(self, keys: list[tuple[str, str, str, str]]) -> dict[tuple[str, str, str, str], bool]:
        now = time.time()
        by_topic: dict[str, list[str]] = {}
        for topic, connection_id, user_id, meta in keys:
            by_topic.setdefault(topic, []).extend(
                [f"{user_id}\t{connection_id}", meta, user_id, orjson.dumps(user_id).decode() + ":" + meta])
        calls = []
        for topic, args in by_topic.items():
            empty = m.presence(topic, {}, {})
            cut = empty.index('"joins":{') + len('"joins":{')
            calls.append((self._pkeys(topic), [(now + self._presence_ttl) * 1000, now * 1000, self._channel(topic),
                                               empty[:cut], empty[cut:], *args]))
        if self._cluster:
            # The topics' keys live on different nodes: one script call each, all at once (a cluster pipeline
            # does not load scripts on the nodes it reaches).
            await asyncio.gather(*(self._track_many(keys=k, args=a) for k, a in calls))
        else:
            async with self.redis.pipeline(transaction=False) as pipe:
                for k, a in calls:
                    await self._track_many(keys=k, client=pipe, args=a)
                await pipe.execute()
        return dict.fromkeys(keys, True)

    async def untrack(self, topic: str, connection_id: str, user_id: str) -> None:
        self._mine.pop((topic, connection_id), None)
        await self._untrack_member(topic, f"{user_id}\t{connection_id}", user_id)

    async def _untrack_member(self, topic: str, member: str, user_id: str) -> None:
        frame = m.presence(topic, {}, {user_id: {}})
        await self._untrack(keys=self._pkeys(topic), args=[
            member, time.time() * 1000, f"{user_id}\t", self._channel(topic), frame])

    async def presence(self, topic: str) -> dict[str, Any]:
        return await self._presences.get(topic) or {}

    async def _presence_many(self, topics: list[str]) -> dict[str, dict[str, Any]]:
        """Who is present in each topic: the live members' metas, read for all topics in one round trip."""
        now_ms = time.time() * 1000
        async with self.redis.pipeline(transaction=False) as pipe:
            for topic in topics:
                zkey, hkey = self._pkeys(topic)
                pipe.zrangebyscore(zkey, now_ms, "+inf")
                pipe.hgetall(hkey)
            replies = await pipe.execute()
        out: dict[str, dict[str, Any]] = {}
        for i, topic in enumerate(topics):
            members, metas = cast(list[str], replies[2 * i]), cast(dict[str, str], replies[2 * i + 1])
            present: dict[str, Any] = {}
            for member in members:
                meta = metas.get(member)
                present[member.split("\t", 1)[0]] = orjson.loads(meta) if meta else {}
            out[topic] = present
        return out

    async def _presence_loop(self) -> None:
        """Keep our entries alive; expire the entries of instances that died (their TTL ran out)."""
        while not self._closing:
            await asyncio.sleep(self._presence_ttl / 3)
            try:
                now_ms = time.time() * 1000
                async with self.redis.pipeline(transaction=False) as pipe:
                    for (topic, conn), user in list(self._mine.items()):
                        pipe.zadd(self._pkeys(topic)[0], {f"{user}\t{conn}": now_ms + self._presence_ttl * 1000},
                                  xx=True)
                    await pipe.execute()
                for topic in list(self._topics):
                    expired = cast(list[str], await self.redis.zrangebyscore(self._pkeys(topic)[0], "-inf", now_ms))
                    for member in expired:
                        await self._untrack_member(topic, member, member.split("\t", 1)[0])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("presence upkeep failed: %s", exc)

    def local_stats(self) -> dict[str, int]:
        return {"topics": len(self._topics), "subscriptions": sum(len(t.listeners) for t in self._topics.values()),
                "published": self.published, "reconnects": self.reconnects, "relayed": self.relayed,
                "publishDropped": self.publish_dropped}
