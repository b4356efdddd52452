"""The job queue, picked by URL: `redis://` → a Redis stream with a consumer group (taskiq-redis), where a
job is acknowledged only after it ran, so the job of a worker that died is delivered again; `memory://` → a
queue inside this process (the embedded default), where the server runs its own jobs.

Contract for both:
- `enqueue(task, kwargs)` returns the job id once the job is queued (or raises: the caller decides what a
  lost enqueue means; the API logs and records it, never failing a request that already committed);
- `enqueue(..., delay=s)` queues the job for later (retries with backoff); `promote_due()` moves delayed
  jobs whose time has come onto the queue (workers call it every half second);
- `depth()` counts jobs waiting, running (delivered, not yet acknowledged) and delayed.

How Redis redelivers: a worker reads with XREADGROUP (the entry enters the group's pending list) and
acknowledges only after the job ran; after every read round (at most one second) it runs XAUTOCLAIM with
`min_idle_time = redeliver_after`, taking over entries another consumer received and never acknowledged for
that long. A killed worker's jobs therefore run again `redeliver_after` seconds after it received them —
which must exceed the longest job (jobs time out well before it), and every job must be idempotent, because
a slow live worker's job is taken over too. (taskiq-redis's own `listen` runs XAUTOCLAIM only in rounds
that read new entries, so on an idle queue a dead worker's job waited for the next enqueue: `listen` below
claims every round.)

On a Redis Cluster (`redis+cluster://`) the stream and the delayed set share one hash tag (`cm:{jobs}`,
`cm:{jobs}:delayed`: the promoting script touches both) and every command goes through one cluster client,
which follows the slot to whichever node holds it after a failover.

When Redis goes away (killed, restarted, refusing commands) the read loop in `listen` does not end: it marks
the queue not receiving (`ReceiveStatus`, reported in the worker's heartbeat), waits with capped exponential
backoff, recreates the consumer group (a Redis that came back empty has lost the stream and the group: the
next read would fail with NOGROUP forever) and reads again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError
from taskiq import AckableMessage, AsyncBroker, TaskiqMessage
from taskiq.kicker import AsyncKicker
from taskiq.labels import prepare_label
from taskiq.message import BrokerMessage
from taskiq_redis import RedisStreamBroker

from channels.redis_client import RedisClient, cluster_seeds, connect, is_cluster, is_redis
from channels.redis_client import key as redis_key

log = logging.getLogger("conversme.queue")

# Key names under the deployment's REDIS_PREFIX.
STREAM = "jobs"
GROUP = "conversme-workers"
DELAYED = "jobs:delayed"
DELIVERIES = "jobs:deliveries:"

# Moves due delayed jobs onto the stream atomically, so two workers never move one twice.
PROMOTE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, raw in ipairs(due) do
  redis.call('ZREM', KEYS[1], raw)
  redis.call('XADD', KEYS[2], '*', 'data', string.sub(raw, 34))
end
return #due
"""


# Reconnecting after a failed read: 0.2 s, doubling, at most 5 s apart (a restarted Redis is read again within
# seconds, a Redis that stays away costs one attempt per 5 s).
RECONNECT_FIRST = 0.2
RECONNECT_MAX = 5.0
# A Redis that stops answering without closing the connection (a stalled server, a partition) would hold a read
# forever: past this a command fails with TimeoutError and the read loop reconnects. Above the 1 s XREADGROUP block.
SOCKET_TIMEOUT = 10.0
CONNECT_TIMEOUT = 5.0


class Backoff:
    """Capped exponential delays with ±25 % jitter, so that workers losing Redis together do not retry in step."""

    def __init__(self, first: float = RECONNECT_FIRST, cap: float = RECONNECT_MAX) -> None:
        self.first, self.cap = first, cap
        self._next = first

    def next(self) -> float:
        delay = self._next
        self._next = min(self._next * 2, self.cap)
        return delay * random.uniform(0.75, 1.25)

    def reset(self) -> None:
        self._next = self.first


@dataclass
class ReceiveStatus:
    """Whether this process is reading jobs from the queue now; the worker's heartbeat reports it. False from
    a failed read (or a receiver that ended) until the next read that works; `reconnects` counts those
    recoveries. `changed` is set on every flip, so the heartbeat can report it at once."""

    receiving: bool = False
    reconnects: int = 0
    since: float = field(default_factory=time.time)
    error: str = ""
    changed: asyncio.Event = field(default_factory=asyncio.Event, repr=False, compare=False)
    _interrupted: bool = field(default=False, init=False, repr=False)

    def up(self) -> None:
        if self.receiving:
            return
        if self._interrupted:  # the first start is not a reconnect
            self.reconnects += 1
        self.receiving, self._interrupted, self.since = True, False, time.time()
        self.changed.set()

    def down(self, error: str) -> None:
        self.error = error[:300]
        self._interrupted = True
        if self.receiving:
            self.receiving, self.since = False, time.time()
            self.changed.set()


def describe(exc: BaseException) -> str:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:  # taskiq's receiver wraps its loops' errors
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}"


@dataclass(frozen=True)
class Depth:
    waiting: int
    running: int
    delayed: int


class JobQueue(Protocol):
    url: str
    status: ReceiveStatus

    @property
    def broker(self) -> AsyncBroker: ...

    async def startup(self) -> None: ...

    async def shutdown(self) -> None: ...

    async def enqueue(self, task: str, kwargs: dict[str, Any], *, delay: float = 0.0, task_id: str | None = None,
                      labels: dict[str, Any] | None = None) -> str: ...

    async def promote_due(self) -> int: ...

    async def depth(self) -> Depth: ...

    async def count_delivery(self, key: str) -> int:
        """How many times the job run `key` has been delivered, this time included."""


async def _kick_now(broker: Any, task: str, kwargs: dict[str, Any], job_id: str,
                    labels: dict[str, Any] | None) -> str:
    """Send a job to run as soon as a worker is free (both queues do this the same way)."""
    kicker: AsyncKicker[Any, Any] = AsyncKicker(task, broker, _labels(labels, None))
    await kicker.with_task_id(job_id).kiq(**kwargs)
    return job_id


def _labels(base: dict[str, Any] | None, not_before: float | None) -> dict[str, Any]:
    labels = dict(base or {})
    labels["enqueued_at"] = time.time()
    if not_before is not None:
        labels["not_before"] = not_before
    return labels


def _message(broker: AsyncBroker, task: str, kwargs: dict[str, Any], task_id: str,
             labels: dict[str, Any]) -> BrokerMessage:
    values: dict[str, str] = {}
    types: dict[str, int] = {}
    for key, value in labels.items():
        values[key], types[key] = prepare_label(value)
    return broker.formatter.dumps(TaskiqMessage(task_id=task_id, task_name=task, labels=values,
                                                labels_types=types, args=[], kwargs=kwargs))


class AckDeletingStreamBroker(RedisStreamBroker):
    """RedisStreamBroker whose acknowledgement also deletes the entry (XACK + XDEL in one round trip), so the
    stream holds only jobs not yet done: its length is the queue depth and it never needs trimming (trimming
    by MAXLEN could drop jobs nobody has read yet)."""

    def __init__(self, url: str, **kwargs: Any) -> None:
        self._cluster: RedisClient | None = None
        if is_cluster(url):
            # taskiq-redis's stream broker speaks to one server through a pool; on a cluster every command below
            # goes through one cluster client instead (the base class's pool, for the first seed, stays unused).
            host, port = cluster_seeds(url)[0][0]
            self._cluster = connect(url, max_connections=kwargs.get("max_connection_pool_size") or 64,
                                    socket_timeout=kwargs.get("socket_timeout"),
                                    socket_connect_timeout=kwargs.get("socket_connect_timeout"))
            url = f"redis://{host}:{port}"
        super().__init__(url, **kwargs)
        self.status = ReceiveStatus()

    @contextlib.asynccontextmanager
    async def _conn(self) -> AsyncIterator[RedisClient]:
        if self._cluster is not None:
            yield self._cluster  # shared, closed at shutdown
            return
        async with Redis(connection_pool=self.connection_pool) as redis:
            yield redis

    async def _declare_consumer_group(self) -> None:
        async with self._conn() as redis:
            await self._declare_group(redis)

    async def kick(self, message: BrokerMessage) -> None:
        async with self._conn() as redis:
            await redis.xadd(message.labels.get("queue_name") or self.queue_name, {b"data": message.message},
                             maxlen=self.maxlen, approximate=self.approximate)

    async def shutdown(self) -> None:
        await super().shutdown()
        if self._cluster is not None:
            await self._cluster.aclose()

    def _ack_generator(self, id: str, queue_name: str) -> Callable[[], Awaitable[None]]:
        async def ack() -> None:
            async with self._conn() as redis:
                pipe = redis.pipeline(transaction=False)
                pipe.xack(queue_name, self.consumer_group_name, id)
                pipe.xdel(queue_name, id)
                await pipe.execute()

        return ack

    async def listen(self) -> AsyncGenerator[AckableMessage, None]:
        """Read jobs until closed. A Redis error never ends it (taskiq's receiver would stop for good and the
        process live on idle): the read is retried with backoff on a fresh client, after recreating the group."""
        backoff = Backoff()
        while True:
            try:
                async with self._conn() as redis:
                    await self._declare_group(redis)
                    while True:
                        batch = await self._read_round(redis)
                        backoff.reset()
                        if not self.status.receiving:
                            self.status.up()
                            log.log(logging.WARNING if self.status.reconnects else logging.INFO,
                                    "receiving jobs from %s (reconnects: %d)", self.queue_name, self.status.reconnects)
                        for msg_id, data in batch:
                            yield AckableMessage(data=data, ack=self._ack_generator(msg_id, self.queue_name))
            except (RedisError, OSError) as exc:  # gone, restarted (NOGROUP), stalled, refusing: all the same here
                delay = backoff.next()
                # One warning when receiving stops; the attempts after it only at debug level.
                level = logging.WARNING if self.status.receiving else logging.DEBUG
                self.status.down(describe(exc))
                log.log(level, "cannot read jobs (%s); not receiving, retrying in %.1f s", describe(exc), delay)
                await asyncio.sleep(delay)

    async def _declare_group(self, redis: RedisClient) -> None:
        # A Redis that restarted empty has lost the stream and the group: XREADGROUP would answer NOGROUP for
        # ever. "0" (not "$"): the group takes every job already queued on the new stream, e.g. by the API.
        try:
            await redis.xgroup_create(self.queue_name, self.consumer_group_name, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def _read_round(self, redis: RedisClient) -> list[tuple[Any, bytes]]:
        """New jobs for this consumer (waiting up to `block` ms), then jobs other consumers received and never
        acknowledged — every round, busy or idle."""
        fetched: Any = await redis.xreadgroup(self.consumer_group_name, self.consumer_name, {self.queue_name: ">"},
                                              block=self.block, noack=False, count=self.count)
        batch = [(msg_id, fields[b"data"]) for _stream, entries in fetched or [] for msg_id, fields in entries]
        claimed: Any = await redis.xautoclaim(self.queue_name, self.consumer_group_name, self.consumer_name,
                                              min_idle_time=self.idle_timeout, count=self.unacknowledged_batch_size)
        batch += [(msg_id, fields[b"data"]) for msg_id, fields in claimed[1] if fields and b"data" in fields]
        return batch


class RedisJobQueue:
    def __init__(self, url: str, *, redeliver_after: float, consumer: str, prefetch: int = 8,
                 prefix: str = "cm:") -> None:
        self.url = url
        # On one server `cm:jobs` and `cm:jobs:delayed` as always; on a cluster `cm:{jobs}` and `cm:{jobs}:delayed`.
        self.stream = redis_key(prefix, "", STREAM, is_cluster(url))
        self.delayed, self.deliveries = self.stream + DELAYED.removeprefix(STREAM), prefix + DELIVERIES
        self.broker = AckDeletingStreamBroker(
            url, queue_name=self.stream, consumer_group_name=GROUP, consumer_name=consumer,
            # "0": a group created now also takes jobs queued before any worker ever ran.
            consumer_id="0", idle_timeout=int(redeliver_after * 1000), xread_block=1000, xread_count=prefetch,
            unacknowledged_lock_timeout=5.0, max_connection_pool_size=64,
            socket_timeout=SOCKET_TIMEOUT, socket_connect_timeout=CONNECT_TIMEOUT,
        )
        self.status = self.broker.status
        self._redis: RedisClient | None = None

    @property
    def redis(self) -> RedisClient:
        if self._redis is None:
            raise RuntimeError("job queue not started")
        return self._redis

    async def startup(self) -> None:
        self._redis = connect(self.url, socket_timeout=SOCKET_TIMEOUT, socket_connect_timeout=CONNECT_TIMEOUT)
        await self.broker.startup()

    async def shutdown(self) -> None:
        await self.broker.shutdown()
        if self._redis is not None:
            await self._redis.aclose()

    async def enqueue(self, task: str, kwargs: dict[str, Any], *, delay: float = 0.0, task_id: str | None = None,
                      labels: dict[str, Any] | None = None) -> str:
        job_id = task_id or uuid.uuid4().hex
        if delay <= 0:
            return await _kick_now(self.broker, task, kwargs, job_id, labels)
        due = time.time() + delay
        message = _message(self.broker, task, kwargs, job_id, _labels(labels, due))
        # A 33-character unique prefix keeps two identical retries apart in the sorted set.
        member = uuid.uuid4().hex + "|" + message.message.decode()
        await self.redis.zadd(self.delayed, {member: due})
        return job_id

    async def promote_due(self) -> int:
        moved = await self.redis.eval(PROMOTE, 2, self.delayed, self.stream, time.time(), 200)
        return int(moved)

    async def depth(self) -> Depth:
        pipe = self.redis.pipeline(transaction=False)
        pipe.xlen(self.stream)
        pipe.xpending(self.stream, GROUP)
        pipe.zcard(self.delayed)
        try:
            length, pending, delayed = await pipe.execute()
        except Exception:  # the group does not exist before the first worker or enqueue
            return Depth(0, 0, int(await self.redis.zcard(self.delayed)))
        running = int(pending["pending"]) if isinstance(pending, dict) else 0
        return Depth(max(int(length) - running, 0), running, int(delayed))

    async def count_delivery(self, key: str) -> int:
        pipe = self.redis.pipeline(transaction=False)
        pipe.incr(f"{self.deliveries}{key}")
        pipe.expire(f"{self.deliveries}{key}", 86400)
        count, _ = await pipe.execute()
        return int(count)


class LocalBroker(AsyncBroker):
    """In-process broker: jobs go on an asyncio queue and this process's own taskiq receiver runs them (the
    same receive path as a worker). Nothing survives the process; the state in the database does, and the
    scheduler's sweeps re-enqueue what a restart lost."""

    def __init__(self) -> None:
        super().__init__()
        self.status = ReceiveStatus()
        self._queue: asyncio.Queue[bytes] = asyncio.Queue()
        self.outstanding = 0
        self._idle = asyncio.Event()
        self._idle.set()

    async def kick(self, message: BrokerMessage) -> None:
        self.outstanding += 1
        self._idle.clear()
        self._queue.put_nowait(message.message)

    async def listen(self) -> AsyncGenerator[AckableMessage, None]:
        self.status.up()  # nothing between this process and its own queue can fail
        while True:
            data = await self._queue.get()
            yield AckableMessage(data=data, ack=self._done)

    def _done(self) -> None:
        self.outstanding -= 1
        if self.outstanding <= 0:
            self.outstanding = 0
            self._idle.set()

    @property
    def waiting(self) -> int:
        return self._queue.qsize()

    async def join(self, timeout: float = 30.0) -> None:
        """Wait until every queued job has finished (tests, shutdown)."""
        await asyncio.wait_for(self._idle.wait(), timeout)


class LocalJobQueue:
    url = "memory://"

    def __init__(self) -> None:
        self.broker = LocalBroker()
        self.status = self.broker.status
        self._timers: set[asyncio.TimerHandle] = set()
        self._pending: set[asyncio.Task[Any]] = set()

    async def startup(self) -> None:
        await self.broker.startup()

    async def shutdown(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        await self.broker.shutdown()

    async def enqueue(self, task: str, kwargs: dict[str, Any], *, delay: float = 0.0, task_id: str | None = None,
                      labels: dict[str, Any] | None = None) -> str:
        job_id = task_id or uuid.uuid4().hex
        if delay <= 0:
            return await _kick_now(self.broker, task, kwargs, job_id, labels)
        message = _message(self.broker, task, kwargs, job_id, _labels(labels, time.time() + delay))
        loop = asyncio.get_running_loop()

        def fire() -> None:
            self._timers.discard(timer)
            kick = loop.create_task(self.broker.kick(message))
            self._pending.add(kick)
            kick.add_done_callback(self._pending.discard)

        timer = loop.call_later(delay, fire)
        self._timers.add(timer)
        return job_id

    async def promote_due(self) -> int:
        return 0  # delayed jobs are timers in this process

    async def count_delivery(self, key: str) -> int:
        return 1  # nothing is delivered twice inside one process

    async def depth(self) -> Depth:
        waiting = self.broker.waiting
        return Depth(waiting, max(self.broker.outstanding - waiting, 0), len(self._timers))


def create_queue(url: str, *, redeliver_after: float = 180.0, consumer: str | None = None,
                 prefetch: int = 8, prefix: str = "cm:") -> JobQueue:
    if is_redis(url):
        return RedisJobQueue(url, redeliver_after=redeliver_after, consumer=consumer or uuid.uuid4().hex,
                             prefetch=prefetch, prefix=prefix)
    if url in ("", "memory://") or url.startswith("memory://"):
        return LocalJobQueue()
    raise ValueError(f"unsupported broker URL {url!r}: use memory:// or redis://")
