"""What the realtime layer asks of the domain: may this user join this topic, and what does a `push` do.

A push runs the same handler as the REST route for that change, so every writer feeds one topic log."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import AliasChoices, BaseModel, Field, ValidationError
from sqlalchemy import Select

from handlers import access
from handlers.context import Context, Outcome
from handlers.events import chat
from handlers.events import manage as events
from handlers.events.manage import EventUpdate
from handlers.live import contexts as live_contexts
from handlers.live import prompts as live_ai
from handlers.processes import steps
from handlers.processes.checklist import StepChange, SubStepChange
from handlers.schema import to_wire
from persistence import events as persisted_events
from persistence import processes
from persistence.enums import EventStatus
from persistence.errors import AIUnavailable, Forbidden, Invalid, NotFound

_KINDS = ("event", "live", "user")
M = TypeVar("M", bound=BaseModel)


def parse_topic(topic: str) -> tuple[str, uuid.UUID]:
    kind, _, raw = topic.partition(":")
    if kind not in _KINDS:
        raise Invalid(f"unknown topic kind {kind!r}")
    try:
        return kind, uuid.UUID(raw)
    except ValueError:
        raise Invalid("topic id must be a UUID") from None


async def authorize_join(ctx: Context, topic: str) -> None:
    """Event rooms: the creator and non-declined participants. Live sessions: the owner and members of the
    linked event. User topics: that user only."""
    kind, ident = parse_topic(topic)
    if kind == "event":
        await access.event_for_member(ctx, ident)
    elif kind == "live":
        await live_contexts.context_for_member(ctx, ident)
    elif ident != ctx.user_id:
        raise Forbidden("a user topic is for its user only")


class StepPush(StepChange):
    step_id: uuid.UUID = Field(validation_alias=AliasChoices("stepId", "step_id", "id"))


class SubStepPush(SubStepChange):
    sub_step_id: uuid.UUID = Field(validation_alias=AliasChoices("subStepId", "substepId", "sub_step_id",
                                                                 "substep_id", "id"))


class StatusPush(BaseModel):
    status: EventStatus


async def _in_room(ctx: Context, event_id: uuid.UUID, process_of: Select[uuid.UUID], resource: str,
                   ident: uuid.UUID) -> None:
    """The caller is a member of the room and the step (substep) is on the room's checklist, in one query: only
    this room's checklist can be changed through this room. `process_of` selects the item's process id."""
    row = await persisted_events.room_item(ctx.db, event_id, member=access.member_clause(ctx.user_id),
                                           item_process=process_of)
    if row is None or not row[0]:
        raise NotFound("event", event_id)
    if row[1] is None or row[2] != row[1]:
        raise NotFound(resource, ident)


async def _step_update(ctx: Context, event_id: uuid.UUID, data: dict[str, Any]) -> Outcome[Any]:
    push = _validate(StepPush, data)
    await _in_room(ctx, event_id, processes.step_process(push.step_id), "step", push.step_id)
    change = StepChange.model_validate({k: v for k, v in push.given().items() if k != "step_id"})
    return await steps.update_step(ctx, push.step_id, change)


async def _substep_update(ctx: Context, event_id: uuid.UUID, data: dict[str, Any]) -> Outcome[Any]:
    push = _validate(SubStepPush, data)
    await _in_room(ctx, event_id, processes.substep_process(push.sub_step_id), "substep", push.sub_step_id)
    change = SubStepChange.model_validate({k: v for k, v in push.given().items() if k != "sub_step_id"})
    return await steps.update_substep(ctx, push.sub_step_id, change)


async def _event_status(ctx: Context, event_id: uuid.UUID, data: dict[str, Any]) -> Outcome[Any]:
    push = _validate(StatusPush, data)
    return await events.update_event(ctx, event_id, EventUpdate(status=push.status))


async def _chat_send(ctx: Context, event_id: uuid.UUID, data: dict[str, Any]) -> Outcome[Any]:
    return await chat.send(ctx, event_id, _validate(chat.ChatIn, data))


async def _live_prompt(ctx: Context, gate: live_ai.GenerationGate, context_id: uuid.UUID,
                       data: dict[str, Any]) -> Outcome[Any]:
    return await live_ai.accept_prompt(ctx, gate, context_id, _validate(live_ai.PromptIn, data))


async def _live_cancel(ctx: Context, context_id: uuid.UUID, data: dict[str, Any]) -> Outcome[Any]:
    return await live_ai.request_cancel(ctx, context_id, _validate(live_ai.CancelIn, data))


async def _live_operation(ctx: Context, context_id: uuid.UUID, data: dict[str, Any]) -> Outcome[Any]:
    return await live_ai.apply_operation(ctx, context_id, data)


PushHandler = Callable[[Context, uuid.UUID, dict[str, Any]], Awaitable[Outcome[Any]]]
GatedPushHandler = Callable[[Context, live_ai.GenerationGate, uuid.UUID, dict[str, Any]], Awaitable[Outcome[Any]]]


@dataclass(frozen=True)
class PushRoute:
    handler: PushHandler
    summary: str


@dataclass(frozen=True)
class GatedPushRoute:
    """A push that starts AI work: it also gets the server's generation gate (lease, budgets, model)."""

    handler: GatedPushHandler
    summary: str


_PROMPT = "ask the session's assistant {text} (or {transcript}); the answer streams as ai.* messages"
_CANCEL = "cancel the answer {streamId} (the member who asked, or the session's owner)"

PUSHES: dict[tuple[str, str], PushRoute | GatedPushRoute] = {
    ("event", "step.update"): PushRoute(_step_update, "update a step of the room's checklist "
                                                      "(PUT /processes/steps/{id})"),
    ("event", "substep.update"): PushRoute(_substep_update, "update a substep (PUT /processes/substeps/{id})"),
    ("event", "event.status"): PushRoute(_event_status, "change the event's status (PUT /events/{id})"),
    ("event", "chat.send"): PushRoute(_chat_send, "send a chat line (POST /events/{id}/chat)"),
    # `prompt` and `cancel` are the contract's names; `ai.prompt` and `ai.cancel` the same pushes in noun.verb form.
    ("live", "prompt"): GatedPushRoute(_live_prompt, _PROMPT),
    ("live", "ai.prompt"): GatedPushRoute(_live_prompt, _PROMPT),
    ("live", "cancel"): PushRoute(_live_cancel, _CANCEL),
    ("live", "ai.cancel"): PushRoute(_live_cancel, _CANCEL),
    ("live", "operation.apply"): PushRoute(_live_operation, "apply a suggested operation to the session's "
                                                            "checklist (POST /live/operation)"),
}


def _validate(model: type[M], data: dict[str, Any]) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "data"
        raise Invalid(f"{where}: {first['msg']}") from None


def chat_line(topic: str, event: str, data: dict[str, Any]) -> tuple[uuid.UUID, chat.ChatIn] | None:
    """The room and the line of a valid `chat.send` push: lines that arrive together may be stored together
    (chat.send_many, the same rules as its route). None for any other push, and for an invalid line: `run_push`
    carries those out (and answers the invalid line with its error)."""
    if event != "chat.send":
        return None
    try:
        kind, ident = parse_topic(topic)
        return (ident, chat.ChatIn.model_validate(data)) if kind == "event" else None
    except (Invalid, ValidationError):
        return None


async def run_push(ctx: Context, topic: str, event: str, data: dict[str, Any],
                   gate: live_ai.GenerationGate | None = None) -> Outcome[Any]:
    kind, ident = parse_topic(topic)
    route = PUSHES.get((kind, event))
    if route is None:
        known = ", ".join(sorted(e for k, e in PUSHES if k == kind)) or "none"
        raise Invalid(f"unknown push event {event!r} on {kind} topics (known: {known})")
    if isinstance(route, GatedPushRoute):
        if gate is None:
            raise AIUnavailable("AI is not available on this server")
        return await route.handler(ctx, gate, ident, data)
    return await route.handler(ctx, ident, data)


def reply_data(value: Any) -> dict[str, Any]:
    if isinstance(value, BaseModel):
        dumped = to_wire(value)
        return dumped if isinstance(dumped, dict) else {"value": dumped}
    return {} if value is None else {"value": value}
