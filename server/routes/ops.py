"""Ops routes: `/metrics` (Prometheus text format: the jobs figures of the whole cluster and this instance's
API figures) and the admins' view of the job system (workers, queue, failures, dead letters); the probes of
Redis and the database that `/metrics` and `/ready` report."""

from __future__ import annotations

import asyncio
import hmac
import time
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.responses import Response

import ai.metrics  # noqa: F401  (registers the AI metrics on the process registry)
from channels.redis_hub import RedisHub
from handlers.context import Outcome
from handlers.schema import Out
from jobs import deadletter
from jobs.deadletter import DeadLetterOut, DeadLetterQuery, RetriedOut
from jobs.metrics import Snapshot, StaticCollector, families, is_alive
from jobs.runtime import JobRuntime
from persistence.errors import Unauthorized
from server.errors import unavailable
from server.routing import ApiRouter, Call, SomeCall
from server.state import AppState
from server.websocket import stats as ws_stats

router = ApiRouter("ops")


class WorkerOut(Out):
    id: str
    role: str | None
    host: str | None
    pid: int | None
    alive: bool
    last_seen: float
    seconds_since_heartbeat: float
    running: int
    done: int
    failed: int
    concurrency: int | None
    receiving: bool | None = None  # workers: taking jobs from the queue (false while Redis is away)
    reconnects: int = 0


class QueueOut(Out):
    broker: str
    waiting: int
    running: int
    delayed: int


class FailureOut(Out):
    task: str
    task_id: str | None
    attempt: int
    error: str
    at: float
    worker: str | None


class JobsOverview(Out):
    workers: list[WorkerOut]
    workers_alive: int
    queue: QueueOut
    counts: dict[str, dict[str, float]]
    recent_failures: list[FailureOut]
    dead_letters: list[DeadLetterOut]
    dead_letters_open: int


def _jobs(call: SomeCall) -> JobRuntime:
    jobs = call.state.jobs
    if jobs is None:
        raise RuntimeError("the job runtime is not started")
    return jobs


def _worker(w: dict[str, Any], now: float) -> WorkerOut:
    seen = float(w.get("lastSeen", 0))
    return WorkerOut(id=str(w.get("id")), role=w.get("role"), host=w.get("host"), pid=w.get("pid"),
                     alive=is_alive(w, now), last_seen=seen, seconds_since_heartbeat=round(now - seen, 1),
                     running=int(w.get("running", 0)), done=int(w.get("done", 0)), failed=int(w.get("failed", 0)),
                     concurrency=w.get("concurrency"),
                     receiving=w.get("receiving") if isinstance(w.get("receiving"), bool) else None,
                     reconnects=int(w.get("reconnects", 0) or 0))


# A scrape (and `/ready`'s Redis check) answers even while Redis or the database stalls (SIGSTOP, a network
# partition) instead of hanging: Prometheus gives up on a scrape after 10 s by default.
PROBE_TIMEOUT = 2.0


async def redis_answers(state: AppState) -> bool | None:
    """Whether the Redis of REDIS_URL answers a PING; None when there is none (the embedded default)."""
    if not isinstance(state.hub, RedisHub):
        return None
    try:
        async with asyncio.timeout(PROBE_TIMEOUT):
            await state.hub.redis.ping()
    except Exception as exc:
        if unavailable(exc) is None:
            raise
        return False
    return True


async def _job_figures(jobs: JobRuntime) -> tuple[Snapshot, tuple[int, int, int]] | None:
    try:
        async with asyncio.timeout(PROBE_TIMEOUT):
            snap = await jobs.stats.snapshot()
            depth = await jobs.queue.depth()
    except Exception as exc:
        if unavailable(exc) is None:
            raise
        return None
    return snap, (depth.waiting, depth.running, depth.delayed)


async def _dead_letters(state: AppState) -> int | None:
    try:
        # A session of its own: a dropped connection must not leave the request's transaction failed.
        async with asyncio.timeout(PROBE_TIMEOUT), state.sessionmaker() as db:
            return await deadletter.count_open(db)
    except Exception as exc:
        if unavailable(exc) is None:
            raise
        return None


def _up(name: str, doc: str, answered: bool) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=1 if answered else 0)


@router.get("/metrics", auth=False)
async def metrics(call: Call) -> Response:
    """Prometheus metrics: jobs by task and outcome, durations, start delays, queue depth, retries, dead letters,
    worker heartbeats; HTTP requests and latency, WebSocket connections, topics and frames in and out; whether
    Redis and the database answered. Answers even while they do not (their figures are left out)."""
    token = call.state.settings.metrics_token
    if token:
        given = call.request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise Unauthorized("a metrics token is required")
    redis_up, figures, dead = await asyncio.gather(
        redis_answers(call.state), _job_figures(_jobs(call)), _dead_letters(call.state))
    snap, depth = figures if figures is not None else (None, None)
    found = list(families(snap, depth, dead))
    found.append(_up("conversme_database_up", "Whether the database answered at this scrape", dead is not None))
    if redis_up is not None:
        found.append(_up("conversme_redis_up", "Whether Redis (REDIS_URL) answered a PING at this scrape", redis_up))
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StaticCollector(found))
    api = call.state.metrics
    body = generate_latest(registry)
    if api is not None:
        api.refresh(ws_stats(call.state), call.state.outbox)
        body += generate_latest(api.registry)
    # The process-wide registry: AI generations (ai.metrics) and the process's CPU, memory and GC.
    body += generate_latest(REGISTRY)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


@router.get("/admin/jobs", admin=True)
async def jobs_overview(call: Call[None, DeadLetterQuery]) -> JobsOverview:
    """Workers (alive from their heartbeats), queue depth, job counts, recent failures and dead letters."""
    jobs = _jobs(call)
    snap = await jobs.stats.snapshot()
    depth = await jobs.queue.depth()
    now = time.time()
    counts: dict[str, dict[str, float]] = {}
    for task, outcome, value in snap.by("runs"):
        counts.setdefault(task, {})[outcome] = value
    for task, _, value in snap.by("enqueued"):
        counts.setdefault(task, {})["enqueued"] = value
    failures = [FailureOut(task=f.get("task", "?"), task_id=f.get("taskId"), attempt=int(f.get("attempt", 0)),
                           error=str(f.get("error", "")), at=float(f.get("at", 0)), worker=f.get("worker"))
                for f in await jobs.stats.recent_failures()]
    workers = sorted((_worker(w, now) for w in snap.workers), key=lambda w: (not w.alive, w.id))
    return JobsOverview(
        workers=workers, workers_alive=sum(w.alive for w in workers),
        queue=QueueOut(broker=jobs.queue.url.split("://")[0], waiting=depth.waiting, running=depth.running,
                       delayed=depth.delayed),
        counts=counts, recent_failures=failures, dead_letters=await deadletter.list_dead(call.ctx, call.query),
        dead_letters_open=await deadletter.count_open(call.db))


@router.post("/admin/jobs/dead/{dead_id}/retry", admin=True)
async def retry_dead_letter(call: Call) -> Outcome[RetriedOut]:
    """Enqueue a dead letter's job again (with fresh retries); it is marked retried."""
    return await deadletter.retry(call.ctx, call.id("dead_id"))
