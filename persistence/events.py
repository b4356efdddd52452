"""Events, their participants and status log: the reads and inserts features outside `handlers/events` need."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from persistence.models import Event, EventParticipant, StatusLog


async def upcoming_for_participant(db: AsyncSession, user_id: uuid.UUID, now: datetime) -> Sequence[Event]:
    """The events the user takes part in that start after `now`."""
    return (await db.scalars(
        select(Event).join(EventParticipant, EventParticipant.event_id == Event.id)
        .where(EventParticipant.user_id == user_id, Event.start_time > now))).all()


async def add_event(db: AsyncSession, event: Event, participant: EventParticipant, log: StatusLog) -> None:
    """Insert the event (flushed, so it has its id), then stage its first participant and status log entry on
    it: they are written with the session's next flush."""
    db.add(event)
    await db.flush()
    participant.event_id = event.id
    log.event_id = event.id
    db.add(participant)
    db.add(log)
