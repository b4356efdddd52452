"""The scheduler: every SCHEDULER_INTERVAL seconds it claims due reminders and enqueues their jobs; every
so often it re-enqueues media stuck in `processing` (a lost enqueue, a restart of the embedded server),
queues last period's reports once per period, and forgets old idempotency keys.

Everything it decides is claimed in the database first (reminder leases, job keys), so any number of
schedulers may run: each due reminder is claimed by one of them, and its job sends it exactly once anyway.

A tick that fails (Redis or the database away) is logged and the next one tries again: the loop never ends
before `stop`. Reminders claimed in a tick whose enqueue failed are released at once, so they go out on the
first tick after Redis is back rather than when their lease runs out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from datetime import timedelta

from sqlalchemy import select, update

from handlers.catalogue import MEDIA_PROCESS, REMINDERS_SEND
from handlers.events import reminders
from handlers.insights.report_files import period_of
from jobs import reports
from jobs.idempotency import forget_before
from jobs.runtime import JobRuntime
from persistence.enums import MediaStatus, ReportType
from persistence.models import Media, Reminder

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
        for n, rid in enumerate(ids):
            try:
                await self.rt.enqueue(*REMINDERS_SEND.call({"reminder_id": str(rid)}))
            except Exception:
                await self._release(ids[n:])
                raise
        self.claimed += len(ids)
        return len(ids)

    async def _release(self, ids: list[uuid.UUID]) -> None:
        # If the enqueue did reach Redis after all, the reminder is queued twice: its job sends it once anyway.
        try:
            async with self.rt.sessionmaker.begin() as db:
                await db.execute(update(Reminder).where(Reminder.id.in_(ids), Reminder.claimed_by == self.name[:100],
                                                        Reminder.sent_at.is_(None))
                                 .values(claimed_by=None, claimed_at=None))
        except Exception:  # the database is away too: the lease runs out instead
            log.warning("could not release %d claimed reminders", len(ids), exc_info=True)

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
            await self.rt.enqueue(*MEDIA_PROCESS.call({"media_id": str(mid)}))
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
        failing = 0
        while not stop.is_set():
            started = time.monotonic()
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:  # the database or the queue is down: try again next tick
                if not failing:  # once per outage, not every tick
                    log.exception("scheduler tick failed; retrying every tick")
                failing += 1
            else:
                if failing:
                    log.warning("scheduler ticks again after %d failed ticks", failing)
                failing = 0
            wait = max(self.interval - (time.monotonic() - started), 0.05)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)
