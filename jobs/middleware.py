"""The taskiq middleware every broker of ours carries: counts deliveries (to spot poison jobs), measures
start delay and duration, retries failures with exponential backoff and, when retries run out, writes a
dead letter (and lets the job clean up through its `on_dead`)."""

from __future__ import annotations

import logging
import random
import time
from typing import Any

from taskiq import TaskiqMessage, TaskiqMiddleware, TaskiqResult

from jobs import deadletter
from jobs.runtime import JOBS, JobRuntime, Permanent, Poisoned

log = logging.getLogger("conversme.jobs")

MAX_BACKOFF = 300.0


def backoff(base: float, retries: int) -> float:
    """base · 2^retries, capped, with ±25 % jitter so that a burst of failures does not retry in lockstep."""
    return min(base * 2.0 ** retries, MAX_BACKOFF) * random.uniform(0.75, 1.25)


class JobsMiddleware(TaskiqMiddleware):
    def __init__(self, rt: JobRuntime) -> None:
        super().__init__()
        self.rt = rt
        self._started: dict[str, tuple[float, float | None]] = {}
        self._outcome: dict[str, str] = {}
        self.running = 0
        self.done = 0
        self.failed = 0

    async def pre_execute(self, message: TaskiqMessage) -> TaskiqMessage:
        retries = int(message.labels.get("_retries", 0))
        delivery = await self.rt.queue.count_delivery(f"{message.task_id}:{retries}")
        message.labels["_delivery"] = delivery
        now = time.time()
        origin = float(message.labels.get("enqueued_at", now))
        if message.labels.get("not_before") is not None:
            origin = max(origin, float(message.labels["not_before"]))
        # A redelivery's wait is the dead worker's fault, not the queue's: only first deliveries count.
        delay = max(now - origin, 0.0) if delivery == 1 else None
        self._started[message.task_id] = (time.monotonic(), delay)
        self.running += 1
        return message

    async def on_error(self, message: TaskiqMessage, result: TaskiqResult[Any], exception: BaseException) -> None:
        task = message.task_name
        spec = JOBS.get(task)
        retries = int(message.labels.get("_retries", 0))
        limit = spec.retries if spec is not None and spec.retries is not None else self.rt.max_retries
        error = f"{type(exception).__name__}: {exception}"
        reason = "poison" if isinstance(exception, Poisoned) else "failed"
        log.warning("job %s (%s) failed on attempt %d: %s", task, message.task_id, retries + 1, error)
        await self.rt.stats.failure({"task": task, "taskId": message.task_id, "attempt": retries + 1,
                                     "error": error[:500], "at": time.time(), "worker": self.rt.worker_id})
        if not isinstance(exception, Poisoned | Permanent) and retries < limit:
            delay = backoff(self.rt.retry_base, retries)
            await self.rt.queue.enqueue(task, dict(message.kwargs), delay=delay, task_id=message.task_id,
                                        labels={"_retries": retries + 1})
            self._outcome[message.task_id] = "retried"
            return
        async with self.rt.sessionmaker.begin() as db:
            await deadletter.record(db, task=task, kwargs=dict(message.kwargs), task_id=message.task_id,
                                    reason=reason, error=error, attempts=retries + 1, now=self.rt.clock())
        self._outcome[message.task_id] = "dead"
        if spec is not None and spec.on_dead is not None:
            try:
                await spec.on_dead(self.rt, dict(message.kwargs), error)
            except Exception:
                log.exception("on_dead of %s failed", task)

    async def post_execute(self, message: TaskiqMessage, result: TaskiqResult[Any]) -> None:
        started, delay = self._started.pop(message.task_id, (time.monotonic(), None))
        self.running -= 1
        outcome = self._outcome.pop(message.task_id, "dead") if result.is_err else "ok"
        if outcome == "ok":
            self.done += 1
        else:
            self.failed += 1
        await self.rt.stats.finished(message.task_name, outcome, time.monotonic() - started, delay)
