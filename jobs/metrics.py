"""Job figures for ops: jobs by task and outcome, durations, start delays, retries, enqueue failures, recent
failures and worker heartbeats — kept where every process can read them (Redis, or this process on the
embedded default), so any API instance's `/metrics` and `/admin/jobs` show the whole cluster.

`families(snapshot, depth, dead)` turns them into Prometheus metric families (prometheus-client).
"""

from __future__ import annotations

import time
from collections import defaultdict, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from channels.redis_client import connect, is_redis

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
OUTCOMES = ("ok", "retried", "dead")
HEARTBEAT_SECONDS = 5.0
ALIVE_AFTER = 3 * HEARTBEAT_SECONDS
RECENT_FAILURES = 50

# Key names under the deployment's REDIS_PREFIX.
STATS = "jobs:stats"
WORKERS = "jobs:workers"
FAILURES = "jobs:failures"


def bucket_of(seconds: float) -> str:
    for le in BUCKETS:
        if seconds <= le:
            return repr(le)
    return "+Inf"


def _fields(task: str, outcome: str, duration: float, delay: float | None) -> dict[str, float]:
    """The counters one finished run adds to (field names `<kind>|<task>|<extra>`)."""
    out = {f"runs|{task}|{outcome}": 1.0, f"dur_sum|{task}|": duration, f"dur_count|{task}|": 1.0,
           f"dur_b|{task}|{bucket_of(duration)}": 1.0}
    if delay is not None:
        out.update({f"delay_sum|{task}|": delay, f"delay_count|{task}|": 1.0,
                    f"delay_b|{task}|{bucket_of(delay)}": 1.0})
    if outcome == "retried":
        out[f"retries|{task}|"] = 1.0
    return out


@dataclass
class Snapshot:
    counters: dict[str, float] = field(default_factory=dict)
    workers: list[dict[str, Any]] = field(default_factory=list)

    def by(self, kind: str) -> Iterator[tuple[str, str, float]]:
        for key, value in self.counters.items():
            k, _, rest = key.partition("|")
            if k == kind:
                task, _, extra = rest.partition("|")
                yield task, extra, value


class JobStats(Protocol):
    async def enqueued(self, task: str, failed: bool = False) -> None: ...

    async def finished(self, task: str, outcome: str, duration: float, delay: float | None) -> None: ...

    async def failure(self, entry: dict[str, Any]) -> None: ...

    async def recent_failures(self, limit: int = RECENT_FAILURES) -> list[dict[str, Any]]: ...

    async def heartbeat(self, worker_id: str, info: dict[str, Any]) -> None: ...

    async def forget_worker(self, worker_id: str) -> None: ...

    async def snapshot(self) -> Snapshot: ...

    async def close(self) -> None: ...


class MemoryJobStats:
    def __init__(self) -> None:
        self.counters: defaultdict[str, float] = defaultdict(float)
        self.failures: deque[dict[str, Any]] = deque(maxlen=RECENT_FAILURES)
        self.workers: dict[str, dict[str, Any]] = {}

    async def enqueued(self, task: str, failed: bool = False) -> None:
        self.counters[f"{'enqueue_failed' if failed else 'enqueued'}|{task}|"] += 1

    async def finished(self, task: str, outcome: str, duration: float, delay: float | None) -> None:
        for key, value in _fields(task, outcome, duration, delay).items():
            self.counters[key] += value

    async def failure(self, entry: dict[str, Any]) -> None:
        self.failures.appendleft(entry)

    async def recent_failures(self, limit: int = RECENT_FAILURES) -> list[dict[str, Any]]:
        return list(self.failures)[:limit]

    async def heartbeat(self, worker_id: str, info: dict[str, Any]) -> None:
        self.workers[worker_id] = {**info, "id": worker_id, "lastSeen": time.time()}

    async def forget_worker(self, worker_id: str) -> None:
        self.workers.pop(worker_id, None)

    async def snapshot(self) -> Snapshot:
        return Snapshot(dict(self.counters), list(self.workers.values()))

    async def close(self) -> None:
        return None


class RedisJobStats:
    def __init__(self, url: str, prefix: str = "cm:") -> None:
        self._redis = connect(url)
        self._stats, self._workers, self._failures = prefix + STATS, prefix + WORKERS, prefix + FAILURES

    async def enqueued(self, task: str, failed: bool = False) -> None:
        await self._redis.hincrbyfloat(self._stats, f"{'enqueue_failed' if failed else 'enqueued'}|{task}|", 1)

    async def finished(self, task: str, outcome: str, duration: float, delay: float | None) -> None:
        pipe = self._redis.pipeline(transaction=False)
        for key, value in _fields(task, outcome, duration, delay).items():
            pipe.hincrbyfloat(self._stats, key, value)
        await pipe.execute()

    async def failure(self, entry: dict[str, Any]) -> None:
        pipe = self._redis.pipeline(transaction=False)
        pipe.lpush(self._failures, orjson.dumps(entry))
        pipe.ltrim(self._failures, 0, RECENT_FAILURES - 1)
        await pipe.execute()

    async def recent_failures(self, limit: int = RECENT_FAILURES) -> list[dict[str, Any]]:
        raw = await self._redis.lrange(self._failures, 0, limit - 1)
        return [orjson.loads(r) for r in raw]

    async def heartbeat(self, worker_id: str, info: dict[str, Any]) -> None:
        entry = {**info, "id": worker_id, "lastSeen": time.time()}
        await self._redis.hset(self._workers, worker_id, orjson.dumps(entry))

    async def forget_worker(self, worker_id: str) -> None:
        await self._redis.hdel(self._workers, worker_id)

    async def snapshot(self) -> Snapshot:
        pipe = self._redis.pipeline(transaction=False)
        pipe.hgetall(self._stats)
        pipe.hgetall(self._workers)
        counters, workers = await pipe.execute()
        now = time.time()
        alive: list[dict[str, Any]] = []
        stale: list[bytes] = []
        for key, raw in workers.items():
            entry = orjson.loads(raw)
            # Workers gone for an hour are forgotten; until then they show as not alive.
            (stale.append(key) if now - float(entry.get("lastSeen", 0)) > 3600 else alive.append(entry))
        if stale:
            await self._redis.hdel(self._workers, *stale)
        return Snapshot({k.decode(): float(v) for k, v in counters.items()}, alive)

    async def close(self) -> None:
        await self._redis.aclose()


def create_stats(url: str, prefix: str = "cm:") -> JobStats:
    if is_redis(url):
        return RedisJobStats(url, prefix)
    return MemoryJobStats()


def is_alive(worker: dict[str, Any], now: float | None = None) -> bool:
    return (now or time.time()) - float(worker.get("lastSeen", 0)) <= ALIVE_AFTER


def _histogram(name: str, doc: str, snap: Snapshot, kind: str) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, doc, labels=["task"])
    buckets: defaultdict[str, dict[str, float]] = defaultdict(dict)
    sums: dict[str, float] = {task: v for task, _, v in snap.by(f"{kind}_sum")}
    for task, le, value in snap.by(f"{kind}_b"):
        buckets[task][le] = value
    for task, total in sorted(sums.items()):
        running = 0.0
        cumulative: list[tuple[str, float]] = []
        for le in (*map(repr, BUCKETS), "+Inf"):
            running += buckets[task].get(le, 0.0)
            cumulative.append((le, running))
        family.add_metric([task], cumulative, total)
    return family


def families(snap: Snapshot | None, depth: tuple[int, int, int] | None, dead: int | None) -> Iterable[Any]:
    """The job figures as metric families; `depth` is (waiting, running, delayed). A figure that could not be
    read (Redis or the database away) is None and left out, never reported as zero: a counter falling to zero
    would read as a reset, and an empty queue as good news."""
    if snap is not None:
        yield from _snapshot_families(snap)
    if depth is not None:
        gauge = GaugeMetricFamily("conversme_job_queue_depth", "Jobs by queue state", labels=["state"])
        for state, value in zip(("waiting", "running", "delayed"), depth, strict=True):
            gauge.add_metric([state], value)
        yield gauge
    if dead is not None:
        yield GaugeMetricFamily("conversme_job_dead_letters", "Dead letters not yet retried", value=dead)
    if snap is not None:
        yield from _worker_families(snap)


def _snapshot_families(snap: Snapshot) -> Iterator[Any]:
    runs = CounterMetricFamily("conversme_jobs", "Jobs finished, by task and outcome (ok, retried, dead)",
                               labels=["task", "outcome"])
    for task, outcome, value in sorted(snap.by("runs")):
        runs.add_metric([task, outcome], value)
    yield runs
    enqueued = CounterMetricFamily("conversme_jobs_enqueued", "Jobs enqueued, by task", labels=["task"])
    for task, _, value in sorted(snap.by("enqueued")):
        enqueued.add_metric([task], value)
    yield enqueued
    lost = CounterMetricFamily("conversme_jobs_enqueue_failures", "Jobs that could not be enqueued (recorded as "
                               "dead letters)", labels=["task"])
    for task, _, value in sorted(snap.by("enqueue_failed")):
        lost.add_metric([task], value)
    yield lost
    retries = CounterMetricFamily("conversme_job_retries", "Failed runs scheduled again with backoff",
                                  labels=["task"])
    for task, _, value in sorted(snap.by("retries")):
        retries.add_metric([task], value)
    yield retries
    yield _histogram("conversme_job_duration_seconds", "Time one run of a job took", snap, "dur")
    yield _histogram("conversme_job_start_delay_seconds", "From enqueue (or due time) to a worker starting it",
                     snap, "delay")


def _worker_families(snap: Snapshot) -> Iterator[Any]:
    now = time.time()
    yield GaugeMetricFamily("conversme_job_workers_alive", "Workers whose heartbeat is recent",
                            value=sum(1 for w in snap.workers if is_alive(w, now)))
    beats = GaugeMetricFamily("conversme_job_worker_heartbeat_timestamp_seconds",
                              "Last heartbeat of each worker (Unix time)", labels=["worker"])
    for worker in snap.workers:
        beats.add_metric([str(worker["id"])], float(worker["lastSeen"]))
    yield beats
    yield from _receiving_families(snap.workers, now)


def _receiving_families(workers: list[dict[str, Any]], now: float) -> Iterator[Any]:
    """From each worker's heartbeat: whether it takes jobs, and how often it had to reconnect to the queue. A
    stale heartbeat (the worker or Redis gone) counts as not receiving: the last word is too old to trust."""
    receiving = GaugeMetricFamily("conversme_job_worker_receiving", "Whether the worker reads jobs from the "
                                  "queue (1) or is reconnecting (0), by its latest heartbeat", labels=["worker"])
    reconnects = CounterMetricFamily("conversme_job_worker_reconnects", "Times the worker resumed receiving "
                                     "after losing the queue", labels=["worker"])
    for worker in workers:
        if "receiving" not in worker:  # a heartbeat from before these fields
            continue
        wid = str(worker["id"])
        receiving.add_metric([wid], 1.0 if worker["receiving"] and is_alive(worker, now) else 0.0)
        reconnects.add_metric([wid], float(worker.get("reconnects", 0)))
    yield receiving
    yield reconnects


class StaticCollector(Collector):
    """A collector over metric families built beforehand (the figures are read asynchronously)."""

    def __init__(self, items: Iterable[Any]) -> None:
        self._items = list(items)

    def collect(self) -> Iterable[Any]:
        return self._items
