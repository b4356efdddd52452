"""The job queue, picked by URL: `redis://` → a Redis stream with a consumer group (taskiq-redis), where a
job is acknowledged only after it ran, so the job of a worker that died is delivered again; `memory://` → a
queue inside this process (the embedded default), where the server runs its own jobs.

Contract for both:
- `enqueue(task, kwargs)` returns the job id once the job is queued (or raises: the caller decides what a
  lost enqueue means; the API logs and records it, never failing a request that already committed);
- `enqueue(..., delay=s)` queues the job for later (retries with backoff); `promote_due()` moves delayed
  jobs whose time has come onto the queue (workers call it every half second);
- `depth()` counts jobs waiting, running (delivered, not yet acknowledged) and delayed.

On a Redis Cluster (`redis+cluster://`) the stream and the delayed set share one hash tag (`cm:{jobs}`,
`cm:{jobs}:delayed`: the promoting script touches both) and every command goes through one cluster client,
which follows the slot to whichever node holds it after a failover.

The Redis stream broker workers read through is in `jobs/redis_stream.py` (how a job is redelivered, what
happens when Redis goes away), the in-process queue in `jobs/local_queue.py`, the contract both keep in
`jobs/queue.py`.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from channels.redis_client import RedisClient, connect, is_cluster, is_redis
from channels.redis_client import key as redis_key
from jobs.local_queue import LocalJobQueue
from jobs.queue import Depth, JobQueue, job_labels, job_message, kick_now
from jobs.redis_stream import AckDeletingStreamBroker

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


# A Redis that stops answering without closing the connection (a stalled server, a partition) would hold a read
# forever: past this a command fails with TimeoutError and the read loop reconnects. Above the 1 s XREADGROUP block.
SOCKET_TIMEOUT = 10.0
CONNECT_TIMEOUT = 5.0


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
            return await kick_now(self.broker, task, kwargs, job_id, labels)
        due = time.time() + delay
        message = job_message(self.broker, task, kwargs, job_id, job_labels(labels, due))
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



def create_queue(url: str, *, redeliver_after: float = 180.0, consumer: str | None = None,
                 prefetch: int = 8, prefix: str = "cm:") -> JobQueue:
    if is_redis(url):
        return RedisJobQueue(url, redeliver_after=redeliver_after, consumer=consumer or uuid.uuid4().hex,
                             prefetch=prefetch, prefix=prefix)
    if url in ("", "memory://") or url.startswith("memory://"):
        return LocalJobQueue()
    raise ValueError(f"unsupported broker URL {url!r}: use memory:// or redis://")
