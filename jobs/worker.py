"""Running jobs: `JobService` wires a runtime to its broker (tasks, middleware) and runs the taskiq receiver
with its heartbeat and delayed-job loops — inside `conversme worker`, or inside the server on the embedded
default. None of the three loops ends before `stop`: errors are logged and retried, and a receiver that ends
anyway is started again, so a worker never lives on without taking jobs. `process_runtime` builds a runtime
for a process of its own (worker, scheduler, benchmark) from plain configuration values (this layer never
reads the settings).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from taskiq.receiver import Receiver

from adapters.storage import StorageConfig, open_storages
from channels.hub import create_hub
from channels.outbox import Outbox
from handlers.context import Limits, Outcome
from jobs.broker import create_queue
from jobs.handoffs import enqueue_committed
from jobs.metrics import HEARTBEAT_SECONDS, create_stats
from jobs.middleware import JobsMiddleware
from jobs.publishing import publish_outcome
from jobs.receiving import Backoff, describe
from jobs.runtime import JobRuntime, bind
from persistence.database import create_engine, create_sessionmaker

log = logging.getLogger("conversme.worker")

PROMOTE_EVERY = 0.5
# A receiver that ran this long before it ended was healthy: the next one starts after the shortest delay.
HEALTHY_RUN = 60.0


@dataclass(frozen=True)
class JobConfig:
    """What a job process needs to know, taken from the settings by the command that starts it."""

    database_url: str
    hub_url: str
    broker_url: str
    redis_prefix: str
    storage: StorageConfig
    job_timeout: float = 120.0
    max_retries: int = 3
    retry_base: float = 2.0
    redeliver_after: float = 180.0
    concurrency: int = 16
    scheduler_interval: float = 1.0
    max_page_size: int = 200
    dashboard_url: str = ""
    dashboard_token: str = ""
    auto_reports: bool = False
    name: str = ""


def process_name(role: str, name: str = "") -> str:
    return name or f"{role}-{socket.gethostname()}-{os.getpid()}"


def utc_now() -> datetime:
    return datetime.now(UTC)


class JobService:
    """The broker side of one process: tasks bound to `rt`, our middleware, and (with `run`) a receiver."""

    def __init__(self, rt: JobRuntime, *, concurrency: int, role: str = "worker", dashboard_url: str = "",
                 dashboard_token: str = "") -> None:
        self.rt = rt
        self.role = role
        self.concurrency = concurrency
        self.middleware = JobsMiddleware(rt)
        broker = rt.queue.broker
        broker.add_middlewares(self.middleware)
        if dashboard_url:
            # Imported lazily: the optional dashboard reporter needs aiohttp.
            from taskiq.middlewares.taskiq_admin_middleware import TaskiqAdminMiddleware

            broker.add_middlewares(TaskiqAdminMiddleware(url=dashboard_url, api_token=dashboard_token,
                                                         taskiq_broker_name=rt.worker_id))
        bind(rt)
        self.started_at = time.time()
        self._tasks: list[asyncio.Task[Any]] = []
        self._finish = asyncio.Event()
        self._executor = ThreadPoolExecutor(2)
        self.receiver_restarts = 0

    def info(self) -> dict[str, Any]:
        status = self.rt.queue.status
        return {"role": self.role, "host": socket.gethostname(), "pid": os.getpid(), "startedAt": self.started_at,
                "concurrency": self.concurrency, "running": self.middleware.running, "done": self.middleware.done,
                "failed": self.middleware.failed, "receiving": status.receiving, "receivingSince": status.since,
                "reconnects": status.reconnects, "receiverRestarts": self.receiver_restarts,
                "lastError": status.error}

    async def _heartbeat(self) -> None:
        # Every HEARTBEAT_SECONDS, and at once when receiving stops or starts again. While Redis is away nothing
        # can be written: the last heartbeat stands (growing stale), and the first one written after it tells.
        changed = self.rt.queue.status.changed
        failing = False
        while True:
            changed.clear()  # before `info()`: a flip during the write wakes the next round at once
            try:
                await self.rt.stats.heartbeat(self.rt.worker_id, self.info())
                failing = False
            except Exception as exc:
                if not failing:
                    log.warning("heartbeat failed (%s); retrying", describe(exc))
                failing = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), HEARTBEAT_SECONDS)

    async def _promote(self) -> None:
        failing = False
        while True:
            try:
                await self.rt.queue.promote_due()
                failing = False
            except Exception as exc:
                if not failing:  # once per outage, not every half second
                    log.warning("could not move delayed jobs (%s); retrying", describe(exc))
                failing = True
            await asyncio.sleep(PROMOTE_EVERY)

    async def _receive(self) -> None:
        """taskiq's receiver, started again whenever it ends before `stop`. The broker's read loop outlives
        Redis errors itself; this is for anything else that ends it (taskiq's receiver stops for good when its
        broker's `listen` raises, and the process would live on without taking a job)."""
        backoff = Backoff()
        while not self._finish.is_set():
            # Jobs a failed receiver had started run to their end on their own; `stop` waits only for the current
            # receiver's, and one cut short at exit is unacknowledged, so it is delivered again.
            receiver = Receiver(self.rt.queue.broker, executor=self._executor, validate_params=True,
                                max_async_tasks=self.concurrency, max_prefetch=0, run_startup=False)
            started = time.monotonic()
            try:
                await receiver.listen(self._finish)
                error = "the receiver stopped"
            except Exception as exc:
                error = describe(exc)
                log.exception("job receiver failed")
            if self._finish.is_set():
                return
            self.rt.queue.status.down(error)
            if time.monotonic() - started >= HEALTHY_RUN:
                backoff.reset()
            delay = backoff.next()
            self.receiver_restarts += 1
            log.error("job receiver ended (%s); starting it again in %.1f s", error, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._finish.wait(), delay)

    def start(self) -> None:
        """Start receiving jobs in the background (the broker must be started)."""
        self.rt.queue.broker.is_worker_process = True
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._receive()), loop.create_task(self._heartbeat()),
                       loop.create_task(self._promote())]

    async def stop(self, grace: float = 30.0) -> None:
        """Stop taking jobs, let running ones finish (up to `grace`); unfinished ones are delivered again."""
        self._finish.set()
        receive = self._tasks[0] if self._tasks else None
        for task in self._tasks[1:]:
            task.cancel()
        if receive is not None:
            try:
                await asyncio.wait_for(receive, grace)
            except (TimeoutError, asyncio.CancelledError):
                receive.cancel()
            except Exception:
                log.exception("receiver stopped with an error")
        with contextlib.suppress(Exception):
            await self.rt.stats.forget_worker(self.rt.worker_id)


def make_announcer(outbox: Outbox, rt_ref: list[JobRuntime]) -> Any:
    """After a job's commit: fan out what it recorded in the topic log and publish its other messages (through
    the outbox), then enqueue its follow-up jobs."""

    async def announce(outcome: Outcome[Any]) -> None:
        rt = rt_ref[0]
        await publish_outcome(rt.hub, outbox, rt.sessionmaker, outcome)
        if outcome.enqueue:
            await enqueue_committed(rt, outcome.enqueue, outcome.handoffs)

    return announce


@contextlib.asynccontextmanager
async def process_runtime(cfg: JobConfig, role: str) -> AsyncIterator[JobRuntime]:
    """Engine, hub, outbox, storage, queue and stats for a job process; closed on exit."""
    name = process_name(role, cfg.name)
    engine = create_engine(cfg.database_url, pool_size=max(5, cfg.concurrency), max_overflow=10)
    hub = create_hub(cfg.hub_url, name, cfg.redis_prefix)
    await hub.start()
    outbox = Outbox(hub)
    queue = create_queue(cfg.broker_url, redeliver_after=cfg.redeliver_after, consumer=name,
                         prefetch=max(1, cfg.concurrency // 2), prefix=cfg.redis_prefix)
    stats = create_stats(cfg.broker_url, cfg.redis_prefix)
    ref: list[JobRuntime] = []
    files, report_files = open_storages(cfg.storage)
    rt = JobRuntime(
        sessionmaker=create_sessionmaker(engine), hub=hub, announce=make_announcer(outbox, ref),
        storage=files, private_storage=report_files,
        clock=utc_now, queue=queue, stats=stats, limits=Limits(max_page_size=cfg.max_page_size), worker_id=name,
        job_timeout=cfg.job_timeout, max_retries=cfg.max_retries, retry_base=cfg.retry_base,
    )
    ref.append(rt)
    await queue.startup()
    try:
        yield rt
    finally:
        await queue.shutdown()
        await outbox.close()
        await hub.close()
        await stats.close()
        await engine.dispose()


async def run_worker(cfg: JobConfig, stop: asyncio.Event) -> None:
    async with process_runtime(cfg, "worker") as rt:
        service = JobService(rt, concurrency=cfg.concurrency, dashboard_url=cfg.dashboard_url,
                             dashboard_token=cfg.dashboard_token)
        service.start()
        log.info("worker %s: %d at a time from %s", rt.worker_id, cfg.concurrency, cfg.broker_url)
        await stop.wait()
        log.info("worker %s stopping: finishing running jobs", rt.worker_id)
        await service.stop(grace=cfg.job_timeout)


async def run_scheduler(cfg: JobConfig, stop: asyncio.Event) -> None:
    from jobs.scheduler import Scheduler

    async with process_runtime(cfg, "scheduler") as rt:
        bind(rt)
        await Scheduler(rt, rt.worker_id, cfg.scheduler_interval, cfg.auto_reports).run(stop)
