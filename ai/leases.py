"""Coordinating AI generations across instances: one generation per session, finding the ones whose instance
died, and cancelling a stream that runs elsewhere. Picked by URL like the hub: `memory://` or `redis://`.

Contract (both backends):
- `acquire(info, ttl)` takes the session's lease (SET NX PX) for `info.stream_id` and registers the stream as
  active until now + ttl; False when another stream holds the session.
- The running instance calls `refresh` well within `ttl`; it returns the streams that are no longer its own
  (their end was claimed elsewhere), which the instance must then stop without announcing anything.
- `expired()` lists registered streams whose registration ran out: their instance stopped refreshing.
- `claim_end(stream_id)` is won by exactly one caller (SET NX), the owner finishing or any instance's
  watchdog; only the winner publishes the stream's terminal event. Claiming also unregisters the stream.
- `release(info)` frees the session's lease if this stream still holds it (compare and delete).
- `send_cancel(stream_id)` reaches the `on_cancel` callback of every instance: on Redis through one pub/sub
  channel (immediate, fire-and-forget: if the owner died the watchdog ends the stream anyway).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol, cast

import orjson
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from channels.redis_client import RedisClient, connect, is_cluster, is_redis

log = logging.getLogger("conversme.leases")

END_MEMORY_SECONDS = 600.0  # how long a claimed end is remembered (longer than any generation)
CancelCallback = Callable[[str], None]


@dataclass(frozen=True)
class StreamInfo:
    stream_id: str
    context_id: str
    topic: str
    user_id: str
    instance: str

    def encode(self) -> str:
        return orjson.dumps(asdict(self)).decode()

    @staticmethod
    def decode(raw: str | bytes) -> StreamInfo:
        return StreamInfo(**orjson.loads(raw))


class Coordination(Protocol):
    async def start(self, on_cancel: CancelCallback) -> None: ...

    async def close(self) -> None: ...

    async def acquire(self, info: StreamInfo, ttl: float) -> bool: ...

    async def refresh(self, streams: Sequence[StreamInfo], ttl: float) -> list[str]: ...

    async def claim_end(self, stream_id: str) -> bool: ...

    async def release(self, info: StreamInfo) -> None: ...

    async def expired(self) -> list[StreamInfo]: ...

    async def send_cancel(self, stream_id: str) -> None: ...

    async def holder(self, context_id: str) -> str | None: ...


class MemoryCoordination:
    """One process: the same rules with dictionaries (an instance cannot die without the whole server)."""

    def __init__(self) -> None:
        self._leases: dict[str, tuple[str, float]] = {}  # context → (stream, deadline)
        self._active: dict[str, tuple[StreamInfo, float]] = {}
        self._ended: dict[str, float] = {}
        self._on_cancel: CancelCallback | None = None

    async def start(self, on_cancel: CancelCallback) -> None:
        self._on_cancel = on_cancel

    async def close(self) -> None:
        self._on_cancel = None

    async def acquire(self, info: StreamInfo, ttl: float) -> bool:
        now = time.monotonic()
        held = self._leases.get(info.context_id)
        if held is not None and held[1] > now:
            return False
        self._leases[info.context_id] = (info.stream_id, now + ttl)
        self._active[info.stream_id] = (info, now + ttl)
        return True

    async def refresh(self, streams: Sequence[StreamInfo], ttl: float) -> list[str]:
        now = time.monotonic()
        lost = []
        for info in streams:
            if info.stream_id in self._ended or info.stream_id not in self._active:
                lost.append(info.stream_id)
                continue
            held = self._leases.get(info.context_id)
            if held is None or held[1] <= now or held[0] == info.stream_id:
                self._leases[info.context_id] = (info.stream_id, now + ttl)
            self._active[info.stream_id] = (info, now + ttl)
        return lost

    async def claim_end(self, stream_id: str) -> bool:
        now = time.monotonic()
        self._ended = {k: v for k, v in self._ended.items() if v > now} if len(self._ended) > 1000 else self._ended
        if stream_id in self._ended:
            return False
        self._ended[stream_id] = now + END_MEMORY_SECONDS
        self._active.pop(stream_id, None)
        return True

    async def release(self, info: StreamInfo) -> None:
        held = self._leases.get(info.context_id)
        if held is not None and held[0] == info.stream_id:
            del self._leases[info.context_id]

    async def expired(self) -> list[StreamInfo]:
        now = time.monotonic()
        return [info for info, deadline in self._active.values() if deadline <= now]

    async def send_cancel(self, stream_id: str) -> None:
        if self._on_cancel is not None:
            self._on_cancel(stream_id)

    async def holder(self, context_id: str) -> str | None:
        held = self._leases.get(context_id)
        return held[0] if held is not None and held[1] > time.monotonic() else None


ACQUIRE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
  redis.call('HSET', KEYS[3], ARGV[1], ARGV[4])
  return 1
end
return 0
"""

# KEYS: lease, active zset, end marker. ARGV: stream, ttl ms, new expiry (ms since epoch).
REFRESH = """
if redis.call('EXISTS', KEYS[3]) == 1 or not redis.call('ZSCORE', KEYS[2], ARGV[1]) then return 0 end
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
elseif not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
redis.call('ZADD', KEYS[2], 'XX', ARGV[3], ARGV[1])
return 1
"""

CLAIM_END = """
if redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[2]) then
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('HDEL', KEYS[3], ARGV[1])
  return 1
end
return 0
"""

RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisCoordination:
    """Keys (prefix `cm:ai:`): `lease:<context>` → stream (PX ttl); `active` zset stream → expiry (ms);
    `meta` hash stream → StreamInfo JSON; `end:<stream>` the claimed end; channel `cancel` for cancel signals.

    On a Redis Cluster the scripts touch a lease, the `active` and `meta` registries and an end marker together,
    so all of them share one hash tag (`cm:{ai}:…`, one slot: AI turns are few next to the hub's traffic), and
    the cancel channel is a sharded one in that slot."""

    def __init__(self, url: str, prefix: str = "cm:ai:") -> None:
        self._url = url
        self._cluster = is_cluster(url)
        self._p = f"{prefix.removesuffix('ai:')}{{ai}}:" if self._cluster else prefix
        self._redis: RedisClient | None = None
        self._pubsub: PubSub | None = None
        self._reader: asyncio.Task[None] | None = None
        self._on_cancel: CancelCallback | None = None
        self._subscribed = asyncio.Event()

    async def wait_subscribed(self) -> None:
        """Returns once Redis confirmed the cancel channel's subscription: from then on every `send_cancel`
        reaches this instance (a signal published before that is lost, pub/sub keeps nothing)."""
        await self._subscribed.wait()

    @property
    def redis(self) -> RedisClient:
        if self._redis is None:
            raise RuntimeError("coordination not started")
        return self._redis

    async def start(self, on_cancel: CancelCallback) -> None:
        self._on_cancel = on_cancel
        self._redis = connect(self._url, decode_responses=True, socket_connect_timeout=2, socket_timeout=5,
                              health_check_interval=10)
        self._acquire = self._redis.register_script(ACQUIRE)
        self._refresh = self._redis.register_script(REFRESH)
        self._claim = self._redis.register_script(CLAIM_END)
        self._release = self._redis.register_script(RELEASE)
        self._reader = asyncio.create_task(self._listen(), name="ai-cancel-listener")

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()
        if self._redis is not None:
            await self._redis.aclose()

    async def _listen(self) -> None:
        delay = 0.1
        while True:
            try:
                self._pubsub = self.redis.pubsub()
                if self._cluster:
                    await self._pubsub.ssubscribe(self._p + "cancel")
                else:
                    await self._pubsub.subscribe(self._p + "cancel")
                delay = 0.1
                async for message in self._messages(self._pubsub):
                    if message.get("type") in ("subscribe", "ssubscribe"):
                        self._subscribed.set()
                    elif message.get("type") in ("message", "smessage") and self._on_cancel is not None:
                        self._on_cancel(str(message["data"]))
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                log.warning("cancel channel lost (%s); resubscribing", exc)
            self._subscribed.clear()
            with contextlib.suppress(Exception):
                if self._pubsub is not None:
                    await self._pubsub.aclose()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    async def _messages(self, pubsub: PubSub) -> AsyncIterator[dict[str, Any]]:
        if not self._cluster:
            async for message in pubsub.listen():
                yield message
            return
        while True:  # sharded messages are read node by node; redis-py re-subscribes after a failover
            message = await cast(Any, pubsub).get_sharded_message(timeout=1.0)
            if message is not None:
                yield message

    def _lease(self, context_id: str) -> str:
        return f"{self._p}lease:{context_id}"

    async def acquire(self, info: StreamInfo, ttl: float) -> bool:
        expiry = int((time.time() + ttl) * 1000)
        ok = await self._acquire(keys=[self._lease(info.context_id), self._p + "active", self._p + "meta"],
                                 args=[info.stream_id, int(ttl * 1000), expiry, info.encode()])
        return bool(ok)

    async def refresh(self, streams: Sequence[StreamInfo], ttl: float) -> list[str]:
        if not streams:
            return []
        expiry = int((time.time() + ttl) * 1000)

        def keys(info: StreamInfo) -> list[str]:
            return [self._lease(info.context_id), self._p + "active", f"{self._p}end:{info.stream_id}"]

        if self._cluster:  # one slot, one node: the calls in turn (a cluster pipeline does not carry scripts)
            results = [await self._refresh(keys=keys(info), args=[info.stream_id, int(ttl * 1000), expiry])
                       for info in streams]
            return [info.stream_id for info, ok in zip(streams, results, strict=True) if not ok]
        async with cast(Any, self.redis).pipeline(transaction=False) as pipe:
            for info in streams:
                await self._refresh(keys=keys(info), args=[info.stream_id, int(ttl * 1000), expiry], client=pipe)
            results = await pipe.execute()
        return [info.stream_id for info, ok in zip(streams, results, strict=True) if not ok]

    async def claim_end(self, stream_id: str) -> bool:
        ok = await self._claim(keys=[f"{self._p}end:{stream_id}", self._p + "active", self._p + "meta"],
                               args=[stream_id, int(END_MEMORY_SECONDS * 1000)])
        return bool(ok)

    async def release(self, info: StreamInfo) -> None:
        await self._release(keys=[self._lease(info.context_id)], args=[info.stream_id])

    async def expired(self) -> list[StreamInfo]:
        now = int(time.time() * 1000)
        found = await self.redis.zrangebyscore(self._p + "active", "-inf", now, start=0, num=100)
        ids = [str(i) for i in found]
        if not ids:
            return []
        raw = await self.redis.hmget(self._p + "meta", ids)
        out = []
        for stream_id, meta in zip(ids, raw, strict=True):
            if meta is None:  # registered without meta (cannot happen with ACQUIRE); forget it
                await self._claim(keys=[f"{self._p}end:{stream_id}", self._p + "active", self._p + "meta"],
                                  args=[stream_id, int(END_MEMORY_SECONDS * 1000)])
                continue
            out.append(StreamInfo.decode(meta))
        return out

    async def send_cancel(self, stream_id: str) -> None:
        if self._cluster:
            await self.redis.spublish(self._p + "cancel", stream_id)
        else:
            await self.redis.publish(self._p + "cancel", stream_id)

    async def holder(self, context_id: str) -> str | None:
        value = await self.redis.get(self._lease(context_id))
        return None if value is None else str(value)


def create_coordination(url: str, prefix: str = "cm:") -> Coordination:
    if is_redis(url):
        return RedisCoordination(url, prefix + "ai:")
    return MemoryCoordination()
