"""What a job receives (the runtime: database, publishing, storage, the queue) and the table of jobs.

A job is a plain async function `fn(rt, **kwargs)` registered with its entry in handlers.catalogue,
`@job(MEDIA_PROCESS)`. It does its writes as a request does, in
`handlers.unit_of_work.unit_of_work(rt.sessionmaker, rt.clock(), rt.announce)`: one transaction that also
records what it announces and the jobs it asks for, then the commit, then the announcement (publish, then
enqueue follow-ups). `bind` turns every registered job into a taskiq task of one broker, closing over this
process's runtime (no module-level broker: the URL is only known once the settings are).
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from taskiq import Context, TaskiqDepends

from adapters.storage import Storage
from channels.hub import Hub
from handlers.catalogue import Job
from handlers.context import Limits, Outcome
from jobs.metrics import JobStats
from jobs.queue import JobQueue

# The modules that register jobs; imported by `bind` so that a worker knows every task.
JOB_MODULES = ("jobs.ops", "jobs.reminders", "jobs.media", "jobs.reports")

Announcer = Callable[[Outcome[Any]], Awaitable[None]]
JobFunc = Callable[..., Awaitable[Any]]


class Poisoned(Exception):
    """A job delivered more often than allowed (its worker keeps dying): dead-lettered without running."""


class Permanent(Exception):
    """A failure that a retry cannot fix (bad arguments): dead-lettered at once."""


@dataclass(frozen=True)
class JobSpec:
    name: str
    func: JobFunc
    timeout: float | None
    retries: int | None
    on_dead: Callable[[JobRuntime, dict[str, Any], str], Awaitable[None]] | None


JOBS: dict[str, JobSpec] = {}


def job(entry: Job[Any], *, timeout: float | None = None, retries: int | None = None,
        on_dead: Callable[[JobRuntime, dict[str, Any], str], Awaitable[None]] | None = None,
        ) -> Callable[[JobFunc], JobFunc]:
    """Register `fn(rt, **kwargs)` as the catalogue's job `entry`. `timeout` caps one run (default: the
    runtime's); `retries` overrides JOB_MAX_RETRIES; `on_dead(rt, kwargs, error)` runs when it lands in dead
    letters."""

    def register(func: JobFunc) -> JobFunc:
        JOBS[entry.name] = JobSpec(entry.name, func, timeout, retries, on_dead)
        return func

    return register


@dataclass
class JobRuntime:
    sessionmaker: async_sessionmaker[AsyncSession]
    hub: Hub
    announce: Announcer
    storage: Storage
    private_storage: Storage
    clock: Callable[[], datetime]
    queue: JobQueue
    stats: JobStats
    limits: Limits = field(default_factory=Limits)
    worker_id: str = "embedded"
    job_timeout: float = 120.0
    max_retries: int = 3
    retry_base: float = 2.0
    max_deliveries: int = 5
    tasks: dict[str, Any] = field(default_factory=dict)

    async def enqueue(self, task: str, kwargs: dict[str, Any], *, delay: float = 0.0,
                      task_id: str | None = None) -> str:
        job_id = await self.queue.enqueue(task, kwargs, delay=delay, task_id=task_id)
        await self.stats.enqueued(task)
        return job_id


def load_jobs() -> dict[str, JobSpec]:
    for module in JOB_MODULES:
        importlib.import_module(module)
    return JOBS


def _runner(rt: JobRuntime, spec: JobSpec) -> Callable[..., Awaitable[Any]]:
    async def run(context: Context = TaskiqDepends(), **kwargs: Any) -> Any:
        delivery = int(context.message.labels.get("_delivery", 1))
        if delivery > rt.max_deliveries:
            raise Poisoned(f"delivered {delivery} times without finishing (the worker died each time)")
        # JOB_TIMEOUT caps every job: it is shorter than the redelivery time, so a live worker's job is never
        # handed to another worker while it still runs.
        timeout = min(spec.timeout, rt.job_timeout) if spec.timeout else rt.job_timeout
        return await asyncio.wait_for(spec.func(rt, **kwargs), timeout)

    run.__name__ = spec.name.replace(".", "_")
    return run


def bind(rt: JobRuntime) -> None:
    """Register every job with the runtime's broker."""
    for spec in load_jobs().values():
        if spec.name not in rt.tasks:
            rt.tasks[spec.name] = rt.queue.broker.register_task(_runner(rt, spec), task_name=spec.name)
