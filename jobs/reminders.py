"""The reminder job: send one claimed reminder (exactly once, see handlers.events.reminders), then publish."""

from __future__ import annotations

import uuid

from handlers.catalogue import REMINDERS_SEND
from handlers.context import Outcome
from handlers.events import reminders
from handlers.unit_of_work import unit_of_work
from jobs.runtime import JobRuntime, job


@job(REMINDERS_SEND)
async def send(rt: JobRuntime, reminder_id: str) -> None:
    # The notification and its live message commit together: a worker killed after the commit loses neither.
    async with unit_of_work(rt.sessionmaker, rt.clock(), rt.announce) as work:
        work.add(Outcome(None, publish=await reminders.send(work.db, uuid.UUID(reminder_id), work.now)))
