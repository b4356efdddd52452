"""Jobs for operating the queue itself: a no-op (benchmarks, liveness) and a probe whose effect must happen
once however often it is delivered (the redelivery tests)."""

from __future__ import annotations

import asyncio
import uuid

from handlers.catalogue import OPS_NOOP, OPS_PROBE
from jobs.idempotency import first_time
from jobs.runtime import JobRuntime, job
from persistence.enums import NotificationType
from persistence.models import Notification


@job(OPS_NOOP)
async def noop(rt: JobRuntime) -> None:
    return None


@job(OPS_PROBE, timeout=60)
async def probe(rt: JobRuntime, key: str, user_id: str, before: float = 0.0, after: float = 0.0,
                fail: bool = False) -> None:
    """Wait `before`, then store one system notification for `user_id` guarded by the key `probe:<key>`,
    then wait `after` (so that a worker can be killed between the commit and the acknowledgement). With
    `fail`, raise instead (to watch retries, backoff and dead letters)."""
    await asyncio.sleep(before)
    if fail:
        raise RuntimeError(f"probe {key} was asked to fail")
    async with rt.sessionmaker.begin() as db:
        now = rt.clock()
        if await first_time(db, f"probe:{key}", OPS_PROBE.name, now):
            db.add(Notification(type=NotificationType.SYSTEM, title="Worker probe", message=f"probe {key}",
                                read=False, reference_type="probe", notification_metadata={"key": key},
                                user_id=uuid.UUID(user_id), created_at=now))
    await asyncio.sleep(after)
