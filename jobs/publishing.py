"""After a commit, for the server and the job processes alike: fan out the entries the transaction recorded in
the durable topic log, and publish the other topics' messages through the outbox (hub-sequenced)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels.hub import Entry, Hub
from channels.outbox import Outbox
from channels.topics import is_durable
from handlers.context import Outcome
from handlers.recording import record

log = logging.getLogger("conversme.publishing")


async def publish_outcome(hub: Hub, outbox: Outbox, sessionmaker: async_sessionmaker[AsyncSession],
                          outcome: Outcome[Any]) -> None:
    if any(is_durable(msg.topic) for msg in outcome.publish):
        # A caller that did not record inside its own transaction: record now, in a transaction of ours — still
        # sequenced by the log and durable from here on, though not atomically with the change.
        log.warning("late recording of %s", sorted({m.event for m in outcome.publish if is_durable(m.topic)}))
        async with sessionmaker.begin() as db:
            await record(db, outcome, datetime.now(UTC))
    for rec in outcome.recorded:
        await hub.publish_entries(rec.topic, rec.epoch, [Entry(o, f) for o, f in rec.entries])
    outcome.recorded = []
    for message in outcome.publish:
        await outbox.publish(message.topic, message.event, message.data)
