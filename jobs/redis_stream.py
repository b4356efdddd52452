"""The Redis side of the queue as workers read it: taskiq-redis's stream broker, made to delete what it
acknowledges, to speak through one cluster client on a Redis Cluster, and to keep reading when Redis goes away.

How Redis redelivers: a worker reads with XREADGROUP (the entry enters the group's pending list) and
acknowledges only after the job ran; after every read round (at most one second) it runs XAUTOCLAIM with
`min_idle_time = redeliver_after`, taking over entries another consumer received and never acknowledged for
that long. A killed worker's jobs therefore run again `redeliver_after` seconds after it received them —
which must exceed the longest job (jobs time out well before it), and every job must be idempotent, because
a slow live worker's job is taken over too. (taskiq-redis's own `listen` runs XAUTOCLAIM only in rounds
that read new entries, so on an idle queue a dead worker's job waited for the next enqueue: `listen` below
claims every round.)

When Redis goes away (killed, restarted, refusing commands) the read loop in `listen` does not end: it marks
the queue not receiving (`ReceiveStatus`, reported in the worker's heartbeat), waits with capped exponential
backoff, recreates the consumer group (a Redis that came back empty has lost the stream and the group: the
next read would fail with NOGROUP forever) and reads again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError
from taskiq import AckableMessage
from taskiq.message import BrokerMessage
from taskiq_redis import RedisStreamBroker

from channels.redis_client import RedisClient, cluster_seeds, connect, is_cluster
from jobs.receiving import Backoff, ReceiveStatus, describe

log = logging.getLogger("conversme.queue")


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
