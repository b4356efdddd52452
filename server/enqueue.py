"""Enqueueing a committed outcome's jobs: the last step of commit, publish, enqueue.

The change is already committed, so nothing here may fail the request: a job that cannot be enqueued
(the queue is down) is logged, counted, and stored as a dead letter that an admin can retry — the original
enqueued synchronously and answered 500 after committing."""

from __future__ import annotations

import logging
from typing import Any

from jobs import deadletter
from jobs.runtime import JobRuntime

log = logging.getLogger("conversme.enqueue")


async def enqueue_after_commit(jobs: JobRuntime, items: list[tuple[str, dict[str, Any]]]) -> None:
    for task, kwargs in items:
        try:
            await jobs.enqueue(task, kwargs)
            continue
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            log.error("could not enqueue %s (%s); recorded as a dead letter", task, error)
        try:
            await jobs.stats.enqueued(task, failed=True)
        except Exception:
            log.warning("could not count the failed enqueue of %s", task)
        try:
            async with jobs.sessionmaker.begin() as db:
                await deadletter.record(db, task=task, kwargs=kwargs, task_id=None, reason="enqueue_failed",
                                        error=error, attempts=0, now=jobs.clock())
        except Exception:
            log.exception("could not record the lost job %s %s", task, kwargs)
