"""The reminder job: send one claimed reminder (exactly once, see handlers.reminders), then publish."""

from __future__ import annotations

import uuid

from handlers import reminders
from handlers.context import Outcome
from handlers.recording import record
from jobs.runtime import JobRuntime, job


@job("reminders.send")
async def send(rt: JobRuntime, reminder_id: str) -> None:
    async with rt.sessionmaker.begin() as db:
        now = rt.clock()
        outcome = Outcome(None, publish=await reminders.send(db, uuid.UUID(reminder_id), now))
        await record(db, outcome, now)  # in the topic log with the notification: a crash after commit loses neither
    await rt.announce(outcome)
