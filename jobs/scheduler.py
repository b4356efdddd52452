"""The scheduler: every SCHEDULER_INTERVAL seconds it claims due reminders and enqueues their jobs; every
so often it re-enqueues media stuck in `processing` (a lost enqueue, a restart of the embedded server),
queues last period's reports once per period, and forgets old idempotency keys.

Everything it decides is claimed in the database first (reminder leases, job keys), so any number of
schedulers may run: each due reminder is claimed by one of them, and its job sends it exactly once anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import timedelta

from sqlalchemy import select, update

from handlers import reminders
from handlers.report_files import period_of
from jobs import reports
from jobs.idempotency import forget_before
from jobs.runtime import JobRuntime
from persistence.enums import MediaStatus, ReportType
from persistence.models import Media

log = logging.getLogger("conversme.scheduler")

REMINDER_LEASE = timedelta(seconds=60)
STUCK_MEDIA_AFTER = timedelta(minutes=3)
SWEEP_EVERY = 30.0
KEYS_KEPT = timedelta(days=30)


class Scheduler:
    def __init__(self, rt: JobRuntime, name: str, interval: float = 1.0, auto_reports: bool = False) -> None:
        self.rt = rt
        self.auto_reports = auto_reports
        self.name = name
        self.interval = interval
        self._last_sweep = 0.0
        self.claimed = 0
        self.ticks = 0

    async def claim_reminders(self) -> int:
        async with self.rt.sessionmaker.begin() as db:
            ids = await reminders.claim_due(db, self.rt.clock(), self.name, REMINDER_LEASE)
        for rid in ids:
            await self.rt.enqueue("reminders.send", {"reminder_id": str(rid)})
        self.claimed += len(ids)
        return len(ids)

    async def requeue_stuck_media(self) -> int:
        now = self.rt.clock()
        async with self.rt.sessionmaker.begin() as db:
            # Bumping updated_at is the claim: the next sweep (here or in another scheduler) waits again.
            ids = (await db.scalars(
                update(Media).where(Media.id.in_(
                    select(Media.id).where(Media.status == MediaStatus.PROCESSING,
                                           Media.updated_at.is_(None) | (Media.updated_at < now - STUCK_MEDIA_AFTER),
                                           Media.created_at < now - STUCK_MEDIA_AFTER)
                    .limit(100).with_for_update(skip_locked=True).scalar_subquery()))
                .values(updated_at=now).returning(Media.id))).all()
        for mid in ids:
            await self.rt.enqueue("media.process", {"media_id": str(mid)})
        return len(ids)

    async def periodic_reports(self) -> int:
        now = self.rt.clock()
        queued = 0
        for kind in (ReportType.WEEKLY, ReportType.QUARTERLY):
            current = period_of(kind, now)
            queued += await reports.enqueue_periodic(self.rt, current, reports.previous_of(current))
        return queued

    async def sweep(self) -> None:
        stuck = await self.requeue_stuck_media()
        if stuck:
            log.info("re-enqueued %d media items stuck in processing", stuck)
        if self.auto_reports:
            await self.periodic_reports()
        async with self.rt.sessionmaker.begin() as db:
            await forget_before(db, self.rt.clock() - KEYS_KEPT)

    async def tick(self) -> None:
        self.ticks += 1
        await self.claim_reminders()
        if time.monotonic() - self._last_sweep >= SWEEP_EVERY:
            self._last_sweep = time.monotonic()
            await self.sweep()

    async def run(self, stop: asyncio.Event | None = None) -> None:
        stop = stop or asyncio.Event()
        log.info("scheduler %s running every %.1f s", self.name, self.interval)
        while not stop.is_set():
            started = time.monotonic()
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:  # the database or the queue is down: try again next tick
                log.exception("scheduler tick failed")
            wait = max(self.interval - (time.monotonic() - started), 0.05)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)
