"""Live AI sessions, storage side: contexts, and their messages as ordered rows (`live_messages.seq`).

`append_message`, `list_messages` and `context_for_member` are the seam the WebSocket/AI feature builds on.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from channels import topics
from channels.messages import LeftReason
from handlers import access, catalogue
from handlers.clock import UTCInput
from handlers.context import Context, Outcome, Removal
from handlers.processes import instances
from handlers.schema import UTC, In, Limit, Out, metadata_field
from persistence import live as live_rows
from persistence.enums import LiveRole
from persistence.errors import NotFound
from persistence.models import Event, LiveContext, LiveMessage, Process

# List views carry only the tail of each conversation; GET one returns all of it.
LIST_MESSAGE_CAP = 200
MAX_MESSAGE_CHARS = 100_000
MAX_MESSAGES_PER_REQUEST = 1000


def _blank_to_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


# An id that may be cleared: "" and null both mean "no link".
OptionalId = Annotated[uuid.UUID | None, BeforeValidator(_blank_to_none)]


class LiveMessageIn(In):
    role: LiveRole
    """user, assistant or system"""
    content: str = Field(max_length=MAX_MESSAGE_CHARS)
    """the message's text"""
    timestamp: UTCInput | None = None
    """when it was written (ISO 8601); default now"""
    metadata: dict[str, Any] | None = None
    """free-form JSON kept as sent"""


class LiveContextIn(In):
    """POST and PUT body. On PUT only the keys sent change; `messages` replaces the stored rows."""

    process_id: OptionalId = None
    """the process (checklist) the session works on"""
    event_id: OptionalId = None
    """the event the session belongs to (its members may join; its checklist is the default process)"""
    template_id: OptionalId = None
    """a template the session is about (mine or the library's)"""
    messages: list[LiveMessageIn] | None = Field(default=None, max_length=MAX_MESSAGES_PER_REQUEST)
    """messages to store (on PUT they replace the stored ones)"""
    metadata: dict[str, Any] | None = metadata_field("live_context")
    """free-form JSON kept as sent (also accepted as `liveContextMetadata`)"""


class LiveContextQuery(In):
    process_id: OptionalId = None
    """only sessions on this process"""
    event_id: OptionalId = None
    """only sessions of this event"""
    template_id: OptionalId = None
    """only sessions about this template"""
    limit: Limit = 10
    """sessions per page, newest first"""


class LiveMessageOut(Out):
    id: uuid.UUID
    context_id: uuid.UUID
    seq: int
    role: LiveRole
    content: str
    timestamp: UTC
    author_id: uuid.UUID | None
    metadata: dict[str, Any]


class LiveContextOut(Out):
    id: uuid.UUID
    user_id: uuid.UUID
    process_id: uuid.UUID | None
    event_id: uuid.UUID | None
    template_id: uuid.UUID | None
    messages: list[LiveMessageOut]
    metadata: dict[str, Any]
    created_at: UTC
    updated_at: UTC | None


def message_out(row: LiveMessage) -> LiveMessageOut:
    return LiveMessageOut(
        id=row.id, context_id=row.context_id, seq=row.seq, role=row.role, content=row.content,
        timestamp=row.created_at, author_id=row.author_id, metadata=dict(row.message_metadata or {}),
    )


def context_out(row: LiveContext, messages: list[LiveMessageOut]) -> LiveContextOut:
    return LiveContextOut(
        id=row.id, user_id=row.user_id, process_id=row.process_id, event_id=row.event_id,
        template_id=row.template_id, messages=messages, metadata=dict(row.live_context_metadata or {}),
        created_at=row.created_at, updated_at=row.updated_at,
    )


# ---- access -------------------------------------------------------------------------------------------------

async def _own_context(ctx: Context, context_id: uuid.UUID, *, for_update: bool = False) -> LiveContext:
    row = await live_rows.context(ctx.db, context_id, for_update=for_update)
    if row is None or row.user_id != ctx.user_id:
        raise NotFound("live context", context_id)
    return row


async def context_for_member(ctx: Context, context_id: uuid.UUID, *, for_update: bool = False) -> LiveContext:
    """A session the caller may join: its owner, or a member of the event it is linked to."""
    row = await live_rows.context(ctx.db, context_id, for_update=for_update)
    if row is None:
        raise NotFound("live context", context_id)
    if row.user_id == ctx.user_id:
        return row
    if row.event_id is not None:
        event = await ctx.db.get(Event, row.event_id)
        if event is not None and await access.is_member(ctx, event):
            return row
    raise NotFound("live context", context_id)


async def _template_for_caller(ctx: Context, template_id: uuid.UUID) -> Process:
    template = await ctx.db.get(Process, template_id)
    if template is None or not template.is_template or (
            template.created_by_id != ctx.user_id and not instances.is_library(template)):
        raise NotFound("template", template_id)
    return template


async def _check_links(ctx: Context, links: dict[str, Any]) -> None:
    """Every id being linked must be visible to the caller (404 otherwise, so ids do not leak)."""
    if links.get("process_id") is not None:
        await access.process_for_member(ctx, links["process_id"])
    if links.get("event_id") is not None:
        await access.event_for_member(ctx, links["event_id"])
    if links.get("template_id") is not None:
        await _template_for_caller(ctx, links["template_id"])


# ---- messages -----------------------------------------------------------------------------------------------

def _new_message(ctx: Context, context_id: uuid.UUID, seq: int, role: LiveRole, content: str,
                 metadata: dict[str, Any] | None, timestamp: datetime | None = None) -> LiveMessage:
    return LiveMessage(
        context_id=context_id, seq=seq, role=role, content=content,
        author_id=ctx.user_id if role == LiveRole.USER else None,
        message_metadata=dict(metadata or {}), created_at=timestamp or ctx.now,
    )


async def _store(ctx: Context, context_id: uuid.UUID, messages: list[LiveMessageIn], first_seq: int) -> None:
    await live_rows.add_messages(ctx.db, [
        _new_message(ctx, context_id, first_seq + i, m.role, m.content, m.metadata, m.timestamp)
        for i, m in enumerate(messages)
    ])


async def _messages_of(ctx: Context, context_ids: list[uuid.UUID],
                       cap: int | None) -> dict[uuid.UUID, list[LiveMessageOut]]:
    """Messages per context in `seq` order; with `cap`, only each context's most recent `cap` (one query)."""
    out: dict[uuid.UUID, list[LiveMessageOut]] = {cid: [] for cid in context_ids}
    if not context_ids:
        return out
    for row in await live_rows.messages_of(ctx.db, context_ids, cap):
        out[row.context_id].append(message_out(row))
    return out


async def append_message(ctx: Context, context_id: uuid.UUID, role: LiveRole | str, content: str,
                         metadata: dict[str, Any] | None = None) -> LiveMessageOut:
    """Append one message at the end of a session the caller may join. The context row is locked first so
    concurrent appends get consecutive `seq`s (the unique (context_id, seq) constraint backs this up)."""
    context = await context_for_member(ctx, context_id, for_update=True)
    seq = await live_rows.last_seq(ctx.db, context.id) + 1
    row = _new_message(ctx, context.id, seq, LiveRole(role), content, metadata)
    context.updated_at = ctx.now
    await live_rows.save(ctx.db, row)
    return message_out(row)


async def list_messages(ctx: Context, context_id: uuid.UUID, limit: int) -> list[LiveMessageOut]:
    """The most recent `limit` messages of a session the caller may join, oldest first."""
    context = await context_for_member(ctx, context_id)
    return (await _messages_of(ctx, [context.id], max(1, limit)))[context.id]


# ---- REST ---------------------------------------------------------------------------------------------------

async def create_context(ctx: Context, body: LiveContextIn) -> LiveContextOut:
    given = body.given()
    await _check_links(ctx, given)
    row = LiveContext(
        user_id=ctx.user_id, process_id=body.process_id, event_id=body.event_id, template_id=body.template_id,
        live_context_metadata=dict(body.metadata or {}), created_at=ctx.now,
    )
    await live_rows.save(ctx.db, row)
    if body.messages:
        await _store(ctx, row.id, body.messages, 1)
    return context_out(row, (await _messages_of(ctx, [row.id], None))[row.id])


async def list_contexts(ctx: Context, query: LiveContextQuery) -> list[LiveContextOut]:
    rows = await live_rows.contexts_of(ctx.db, ctx.user_id, process_id=query.process_id, event_id=query.event_id,
                                       template_id=query.template_id,
                                       limit=min(query.limit, ctx.limits.max_page_size))
    messages = await _messages_of(ctx, [r.id for r in rows], LIST_MESSAGE_CAP)
    return [context_out(r, messages[r.id]) for r in rows]


async def get_context(ctx: Context, context_id: uuid.UUID) -> LiveContextOut:
    row = await _own_context(ctx, context_id)
    return context_out(row, (await _messages_of(ctx, [row.id], None))[row.id])


async def update_context(ctx: Context, context_id: uuid.UUID, body: LiveContextIn) -> Outcome[LiveContextOut]:
    row = await _own_context(ctx, context_id, for_update=True)
    given = body.given()
    await _check_links(ctx, given)
    for key in ("process_id", "event_id", "template_id"):
        if key in given:
            setattr(row, key, given[key])
    if "metadata" in given:
        row.live_context_metadata = dict(body.metadata or {})
    if "messages" in given:
        await live_rows.clear_messages(ctx.db, row.id)
        await _store(ctx, row.id, body.messages or [], 1)
    row.updated_at = ctx.now
    await live_rows.save(ctx.db, row)
    out = context_out(row, (await _messages_of(ctx, [row.id], None))[row.id])
    return Outcome(out, publish=[catalogue.CONTEXT_UPDATED.message(topics.for_live(row.id), out)])


async def delete_context(ctx: Context, context_id: uuid.UUID) -> Outcome[None]:
    row = await _own_context(ctx, context_id, for_update=True)
    await live_rows.remove(ctx.db, row)
    topic = topics.for_live(context_id)
    return Outcome(None, publish=[catalogue.CONTEXT_DELETED.message(topic, {"id": str(context_id)})],
                   remove=[Removal(topic, None, "deleted")])


async def revoke_sessions_of_event(ctx: Context, event_id: uuid.UUID, user_ids: list[uuid.UUID],
                                   reason: LeftReason = "revoked") -> list[Removal]:
    """Members who leave an event leave the live sessions linked to it too (their owners stay): call this
    before the membership rows go, and add the removals to the outcome (an AI stream stops reaching them)."""
    rows = await live_rows.sessions_of_event(ctx.db, event_id)
    return [Removal(topics.for_live(cid), uid, reason) for cid, owner in rows for uid in user_ids if uid != owner]
