"""Handing a committed change's jobs to the queue. The jobs were written to `job_handoffs` in the change's own
transaction (handlers.recording): right after the commit the committing process enqueues them and deletes the
rows; whatever is left — its process died, the queue was away — is enqueued by `relay`, which every API instance
runs every few seconds. A job therefore runs once its change is committed, whether or not the process that
committed it lives on. Jobs are idempotent, so a relay racing a slow first attempt costs a no-op run at most."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from jobs import deadletter
from jobs.runtime import JobRuntime
from persistence import handoffs

log = logging.getLogger("conversme.handoffs")

RELAY_LEASE = timedelta(seconds=30)  # a relay that took a row and died leaves it to another after this
GIVE_UP_AFTER = timedelta(hours=1)  # then the job becomes a dead letter an admin can retry


async def enqueue_committed(rt: JobRuntime, items: Sequence[tuple[str, dict[str, Any]]],
                            ids: Sequence[uuid.UUID]) -> None:
    """After the commit: enqueue each job under its hand-off id, then delete the rows of those enqueued. Never
    raises: the change is committed, and what could not be enqueued is still in the table for the relay."""
    if not ids:
        await _enqueue_unrecorded(rt, items)
        return
    sent = [hid for hid, (task, kwargs) in zip(ids, items, strict=True) if await _try(rt, task, kwargs, hid)]
    await _forget(rt, sent)


async def relay(rt: JobRuntime, now: datetime, *, give_up_after: timedelta = GIVE_UP_AFTER,
                limit: int = 100) -> int:
    """Enqueue the hand-offs their committing process did not (in time); returns how many were enqueued."""
    async with rt.sessionmaker.begin() as db:
        rows = await handoffs.claim(db, now, RELAY_LEASE, limit)
        expired = [r for r in rows if now - r.created_at > give_up_after]
        for row in expired:
            await deadletter.record(db, task=row.task, kwargs=dict(row.kwargs), task_id=row.id.hex,
                                    reason="enqueue_failed", error=f"not enqueued after {row.attempts} attempts",
                                    attempts=row.attempts, now=now)
        await handoffs.done(db, [r.id for r in expired])
        pending = [(r.id, r.task, dict(r.kwargs)) for r in rows if r not in expired]
    if expired:
        log.error("%d jobs could not be enqueued for %s; recorded as dead letters", len(expired), give_up_after)
    sent = [hid for hid, task, kwargs in pending if await _try(rt, task, kwargs, hid)]
    await _forget(rt, sent)
    if sent:
        log.info("relayed %d committed jobs their process did not enqueue", len(sent))
    return len(sent)


async def _try(rt: JobRuntime, task: str, kwargs: dict[str, Any], handoff: uuid.UUID) -> bool:
    try:
        await rt.enqueue(task, kwargs, task_id=handoff.hex)
        return True
    except Exception as exc:
        log.warning("could not enqueue %s (%s: %s); the relay tries again", task, type(exc).__name__, exc)
        try:
            await rt.stats.enqueued(task, failed=True)
        except Exception:
            log.debug("could not count the failed enqueue of %s", task)
        return False


async def _forget(rt: JobRuntime, sent: list[uuid.UUID]) -> None:
    if not sent:
        return
    try:
        async with rt.sessionmaker.begin() as db:
            await handoffs.done(db, sent)
    except Exception:  # enqueued, but the rows stay: a relay enqueues them again, and the jobs are idempotent
        log.warning("could not delete %d enqueued hand-offs", len(sent), exc_info=True)


async def _enqueue_unrecorded(rt: JobRuntime, items: Sequence[tuple[str, dict[str, Any]]]) -> None:
    """Jobs of a caller that wrote no hand-offs: enqueue; a job that cannot be enqueued becomes a dead letter."""
    for task, kwargs in items:
        try:
            await rt.enqueue(task, kwargs)
            continue
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            log.error("could not enqueue %s (%s); recorded as a dead letter", task, error)
        try:
            await rt.stats.enqueued(task, failed=True)
        except Exception:
            log.warning("could not count the failed enqueue of %s", task)
        try:
            async with rt.sessionmaker.begin() as db:
                await deadletter.record(db, task=task, kwargs=kwargs, task_id=None, reason="enqueue_failed",
                                        error=error, attempts=0, now=rt.clock())
        except Exception:
            log.exception("could not record the lost job %s %s", task, kwargs)
