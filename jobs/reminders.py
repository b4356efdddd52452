"""The reminder job: send one claimed reminder (exactly once, see handlers.reminders), then publish."""

from __future__ import annotations

import uuid

from handlers import reminders
from handlers.context import Outcome
from jobs.runtime import JobRuntime, job


@job("reminders.send")
async def send(rt: JobRuntime, reminder_id: str) -> None:
    async with rt.sessionmaker.begin() as db:
        messages = await reminders.send(db, uuid.UUID(reminder_id), rt.clock())
    # Committed: now the user may hear about it (a worker killed right here loses the live push, never the
    # stored notification, and never sends it twice).
    await rt.announce(Outcome(None, publish=messages))
