"""Recording a change's announcements in the durable topic log, inside the change's own transaction: the log
and the change commit together or not at all, so a committed change is never lost between the commit and the
publish (a dead instance, Redis away) — any instance can deliver it from the log afterwards."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from channels import messages as m
from channels.topics import is_durable
from handlers.context import Message, Outcome, Recorded
from persistence import handoffs, topic_log


def wire_time(now: datetime) -> str:
    return now.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def record(db: AsyncSession, outcome: Outcome[Any], now: datetime) -> None:
    """Move `outcome`'s durable messages into the log (and into `outcome.recorded`); the rest stay in
    `outcome.publish` for the hub to sequence. Its jobs become hand-off rows (`outcome.handoffs`), so a commit
    followed by a crash still runs them. Call it last in the transaction: the head rows it locks are then held
    only for the commit."""
    if outcome.enqueue and not outcome.handoffs:
        outcome.handoffs = await handoffs.add(db, outcome.enqueue, now)
    durable: dict[str, list[Message]] = {}
    others: list[Message] = []
    for message in outcome.publish:
        (durable.setdefault(message.topic, []) if is_durable(message.topic) else others).append(message)
    if not durable:
        return
    ts = wire_time(now)
    if len(durable) > 1:
        many = await topic_log.append_topics(
            db, {topic: [frame_parts(topic, msg, ts) for msg in messages] for topic, messages in durable.items()}, now)
        if many is not None:
            outcome.recorded.extend(Recorded(topic, epoch, tuple(entries))
                                    for topic, (epoch, entries) in sorted(many.items()))
            outcome.publish = others
            return
    rows: list[tuple[str, int, str]] = []
    # Topics in one order in every transaction: two writers never wait on each other's head rows crosswise.
    for topic in sorted(durable):
        messages = durable[topic]
        parts = [frame_parts(topic, msg, ts) for msg in messages]
        fast = await topic_log.append_frames(db, topic, parts, now)
        if fast is not None:
            outcome.recorded.append(Recorded(topic, fast[0], tuple(fast[1])))
            continue
        epoch, head = await topic_log.advance(db, topic, len(messages), now)
        first = head - len(messages) + 1
        entries = tuple((first + i, f'{pre}{first + i},"epoch":"{epoch}"{suf}') for i, (pre, suf) in enumerate(parts))
        rows.extend((topic, offset, frame) for offset, frame in entries)
        outcome.recorded.append(Recorded(topic, epoch, entries))
    await topic_log.append(db, rows, now)
    outcome.publish = others


def frame_parts(topic: str, msg: Message, ts: str) -> tuple[str, str]:
    """The frame around its offset and epoch: `prefix<offset>,"epoch":"<epoch>"suffix` (channels.messages.msg)."""
    head = m.msg(topic, msg.event, 0, "", ts, "null")
    cut = head.index('"offset":') + len('"offset":')
    return head[:cut], ',"ts":"' + ts + '","data":' + m.encode_data(msg.data) + "}"
