"""Live AI sessions, domain side: accepting a prompt, who may cancel, applying a suggestion, and what the
model is told on each turn. No I/O beyond the caller's session: the generation itself (the model call,
the stream) is `ai/runner.py`, which reaches this module through `build_turn` and `store_reply`.

Each turn's prompt is rebuilt from the current state (the original kept a stale system message): the
assistant's brief, the linked event (title, time, participants), the procedure with every step's and
substep's number, id and completion, then the session's most recent messages that fit the token budget.
Tokens are estimated as characters / 4 (plus a few per message) — close enough for English with OpenAI's
tokenizers, needs no tokenizer files, and errs on the generous side for budgets.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol, Self

from pydantic import Field, model_validator

from adapters.sniff import Sniffed, sniff
from channels import topics
from handlers import catalogue
from handlers.context import Context, Outcome
from handlers.live import contexts as live_contexts
from handlers.live import operation as live_operation
from handlers.live.contexts import LiveContextIn, LiveMessageOut, OptionalId
from handlers.live.operation import LiveOperationIn, LiveOperationOut
from handlers.live.suggestions import Checklist, StepSnapshot
from handlers.schema import In, Out
from persistence import live as live_rows
from persistence.enums import LiveRole
from persistence.errors import Forbidden, Invalid, NotFound, UnsupportedMediaType
from persistence.models import Event, LiveContext, LiveMessage, Process

CHARS_PER_TOKEN = 4
TOKENS_PER_MESSAGE = 4
MAX_PROMPT_CHARS = 8000
HISTORY_SCAN = 200  # messages looked at, newest first, before the token budget decides
PARTICIPANTS_LISTED = 30
CANCEL_LOOKBACK = 50

SYSTEM_PROMPT = """You are AIDE (Advanced Intelligent Digital Expert), the assistant of a team working through \
a standard operating procedure together in a live session. Several people may write to you; each user message \
is from the person named in it. Be confident, concise and technically precise; treat the people as experienced \
operators.

Your mission: help the team complete the procedure efficiently and accurately. Acknowledge what they are doing, \
refer to steps by their number, notice when a step looks done and propose marking it complete, suggest the next \
action, flag issues, risks and shortcuts, keep quality standards, and say so when deviating from the procedure \
is warranted.

Always answer in plain text first. Then, only if a change to the checklist would help, call \
suggest_process_actions with operations that name steps and substeps by the exact ids listed below \
(never invent an id; when no procedure is listed, do not call it)."""


def estimate_tokens(text: str) -> int:
    return TOKENS_PER_MESSAGE + (len(text) + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN


# ---- inputs and outcomes ------------------------------------------------------------------------------------

class PromptIn(In):
    """`push prompt`: `{text}` typed, or `{transcript}` from `POST /live/transcribe`."""

    text: str | None = Field(default=None, max_length=MAX_PROMPT_CHARS)
    transcript: str | None = Field(default=None, max_length=MAX_PROMPT_CHARS)

    @model_validator(mode="after")
    def _one_of(self) -> Self:
        if not (self.text or "").strip() and not (self.transcript or "").strip():
            raise ValueError("text (or transcript) must be a non-empty string")
        return self

    @property
    def content(self) -> str:
        return (self.text or "").strip() or (self.transcript or "").strip()

    @property
    def source(self) -> Literal["text", "voice"]:
        return "text" if (self.text or "").strip() else "voice"


class CancelIn(In):
    stream_id: str = Field(min_length=1, max_length=64)


class LiveMessageRequest(In):
    """`POST /live/message` (original §7.4): a context is created when `contextId` is absent."""

    message: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    """the question for the AI"""
    context_id: OptionalId = None
    """the live session to ask in; absent: a new one is created"""
    process_id: OptionalId = None
    """for a new session: the process it works on"""
    event_id: OptionalId = None
    """for a new session: the event it belongs to"""
    metadata: dict[str, Any] | None = None
    """for a new session: free-form JSON kept as sent"""


class GenerationGate(Protocol):
    """The server's side of starting a generation (a lease per session, token budgets, the model's presence).
    Raises AIUnavailable, RateLimited or Conflict; on success the stream is reserved under `stream_id`."""

    async def reserve(self, context_id: uuid.UUID, user_id: uuid.UUID, stream_id: str) -> None: ...


class PromptAccepted(Out):
    """The reply to a prompt: the stream that will carry the answer and the stored user message."""

    stream_id: str
    context_id: uuid.UUID
    message: LiveMessageOut


class CancelRequested(Out):
    stream_id: str
    context_id: uuid.UUID
    cancelling: bool = True


async def accept_prompt(ctx: Context, gate: GenerationGate, context_id: uuid.UUID,
                        body: PromptIn) -> Outcome[PromptAccepted]:
    """Store the member's message and reserve the session's one generation. A second prompt while an answer
    is being generated gets `conflict` (nothing stored): the team sees the answer in progress and may cancel
    it; queueing would answer questions the asker may have moved past."""
    context = await live_contexts.context_for_member(ctx, context_id, for_update=True)
    stream_id = uuid.uuid4().hex
    message = await live_contexts.append_message(ctx, context.id, LiveRole.USER, body.content,
                                                 {"streamId": stream_id, "source": body.source})
    # Last, so that a refusal (conflict, budget, no key) rolls the stored message back with it.
    await gate.reserve(context.id, ctx.user_id, stream_id)
    accepted = PromptAccepted(stream_id=stream_id, context_id=context.id, message=message)
    return Outcome(accepted, publish=[catalogue.MESSAGE_CREATED.message(topics.for_live(context.id), message)])


async def accept_message(ctx: Context, gate: GenerationGate, body: LiveMessageRequest) -> Outcome[PromptAccepted]:
    if body.context_id is None:
        links = LiveContextIn(process_id=body.process_id, event_id=body.event_id, metadata=body.metadata or {})
        context_id = (await live_contexts.create_context(ctx, links)).id
    else:
        context_id = body.context_id
    return await accept_prompt(ctx, gate, context_id, PromptIn(text=body.message))


async def _prompt_of(ctx: Context, context_id: uuid.UUID, stream_id: str) -> LiveMessage | None:
    recent = await live_rows.newest_prompts(ctx.db, context_id, CANCEL_LOOKBACK)
    return next((m for m in recent if (m.message_metadata or {}).get("streamId") == stream_id), None)


async def request_cancel(ctx: Context, context_id: uuid.UUID, body: CancelIn) -> Outcome[CancelRequested]:
    """Only the member who asked, or the session's owner, may cancel an answer."""
    context = await live_contexts.context_for_member(ctx, context_id)
    prompt = await _prompt_of(ctx, context.id, body.stream_id)
    if prompt is None:
        raise NotFound("stream", body.stream_id)
    if ctx.user_id not in (prompt.author_id, context.user_id):
        raise Forbidden("only the person who asked, or the session's owner, may cancel this answer")
    return Outcome(CancelRequested(stream_id=body.stream_id, context_id=context.id))


async def _session_process(ctx: Context, context: LiveContext) -> uuid.UUID | None:
    if context.process_id is not None:
        return context.process_id
    if context.event_id is not None:
        event = await ctx.db.get(Event, context.event_id)
        return event.process_id if event is not None else None
    return None


async def apply_operation(ctx: Context, context_id: uuid.UUID, data: dict[str, Any]) -> Outcome[LiveOperationOut]:
    """`push operation.apply`: a suggestion applied through the same step handlers as `POST /live/operation`
    (so the event topic sees `step.updated`), and announced on the session as `operation.applied`."""
    context = await live_contexts.context_for_member(ctx, context_id)
    op = LiveOperationIn.model_validate(data)
    process_id = await _session_process(ctx, context)
    if op.process_id in (None, ""):
        op.process_id = str(process_id) if process_id else None
    elif process_id is not None and str(op.process_id) != str(process_id):
        raise Invalid("this session works on another process; apply the operation there")
    done = await live_operation.perform(ctx, op)
    applied: catalogue.OperationApplied = {"operation": op.operation, "processId": str(op.process_id),
                                           "details": done.value.details, "appliedBy": str(ctx.user_id)}
    return Outcome(done.value, publish=[*done.publish,
                                        catalogue.OPERATION_APPLIED.message(topics.for_live(context.id), applied)])


async def store_reply(ctx: Context, context_id: uuid.UUID, text: str, metadata: dict[str, Any]) -> LiveMessageOut:
    """The assistant's answer as the session's next message (`ctx` acts as the session's owner)."""
    return await live_contexts.append_message(ctx, context_id, LiveRole.ASSISTANT, text, metadata)


# ---- the turn -----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Turn:
    messages: list[dict[str, Any]]
    checklist: Checklist | None
    estimated_prompt_tokens: int


async def _load_process(ctx: Context, process_id: uuid.UUID | None) -> Process | None:
    if process_id is None:
        return None
    return await live_rows.checklist(ctx.db, process_id)


def checklist_of(process: Process | None) -> Checklist | None:
    if process is None:
        return None
    return Checklist(process.id, tuple(StepSnapshot(s.id, s.completed, tuple(ss.id for ss in s.sub_steps))
                                       for s in process.steps))


async def current_checklist(ctx: Context, context_id: uuid.UUID) -> Checklist | None:
    context = await live_contexts.context_for_member(ctx, context_id)
    return checklist_of(await _load_process(ctx, await _session_process(ctx, context)))


def _mark(done: bool) -> str:
    return "done" if done else "pending"


def describe_checklist(process: Process) -> str:
    steps = list(process.steps)
    done = sum(1 for s in steps if s.completed)
    percent = round(100 * done / len(steps)) if steps else 0
    lines = ["## Procedure", f"Title: {process.title}"]
    if process.description:
        lines.append(f"Objective: {process.description}")
    lines.append(f"Progress: {done}/{len(steps)} steps complete ({percent}%)")
    lines.append("Steps (number, state, text, id; substeps under their step):")
    for i, step in enumerate(steps, start=1):
        lines.append(f"{i}. [{_mark(step.completed)}] {step.content} (step_id: {step.id})")
        subs = list(step.sub_steps)
        for j, sub in enumerate(subs, start=1):
            lines.append(f"   {i}.{j} [{_mark(sub.completed)}] {sub.content} (substep_id: {sub.id})")
        if subs:
            lines.append(f"   substeps complete: {sum(1 for s in subs if s.completed)}/{len(subs)}")
    return "\n".join(lines)


async def _describe_event(ctx: Context, event: Event) -> str:
    rows = await live_rows.participant_names(ctx.db, event.id, PARTICIPANTS_LISTED)
    people = ", ".join(f"{name} (@{handle})" for name, handle in rows) or "none listed"
    lines = ["## Event", f"Title: {event.title}",
             f"When: {_iso(event.start_time)} to {_iso(event.end_time)} (UTC)", f"Status: {event.status}",
             f"Participants: {people}"]
    if event.description:
        lines.insert(2, f"Details: {event.description[:2000]}")
    return "\n".join(lines)


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


_NAME_OK = re.compile(r"[^a-zA-Z0-9_-]")


async def _history(ctx: Context, context_id: uuid.UUID, budget: int) -> list[dict[str, Any]]:
    """The newest messages that fit `budget` tokens, oldest first; the newest always (cut to fit)."""
    rows = await live_rows.newest_talk(ctx.db, context_id, HISTORY_SCAN)
    names = await live_rows.author_names(ctx.db, {m.author_id for m in rows if m.author_id is not None})
    picked: list[dict[str, Any]] = []
    used = 0
    for row in rows:
        content = row.content
        if row.role == LiveRole.USER and row.author_id in names:
            name, handle = names[row.author_id]
            content = f"{name} (@{handle}): {content}"
        cost = estimate_tokens(content)
        if used + cost > budget:
            if picked:
                break
            content = content[-max(1, (budget - TOKENS_PER_MESSAGE) * CHARS_PER_TOKEN):]
            cost = estimate_tokens(content)
        message: dict[str, Any] = {"role": str(row.role), "content": content}
        if row.role == LiveRole.USER and row.author_id in names:
            message["name"] = _NAME_OK.sub("_", names[row.author_id][1])[:64]
        picked.append(message)
        used += cost
    picked.reverse()
    return picked


async def build_turn(ctx: Context, context_id: uuid.UUID, budget_tokens: int) -> Turn:
    """What the model gets for this turn (see the module docstring)."""
    context = await live_contexts.context_for_member(ctx, context_id)
    sections = [SYSTEM_PROMPT, f"Current time: {_iso(ctx.now)}"]
    event = await ctx.db.get(Event, context.event_id) if context.event_id else None
    if event is not None:
        sections.append(await _describe_event(ctx, event))
    process = await _load_process(ctx, await _session_process(ctx, context))
    sections.append(describe_checklist(process) if process is not None else
                    "## Procedure\nNo procedure is linked to this session.")
    system = "\n\n".join(sections)
    system_tokens = estimate_tokens(system)
    history = await _history(ctx, context.id, max(64, budget_tokens - system_tokens))
    used = system_tokens + sum(estimate_tokens(m["content"]) for m in history)
    return Turn([{"role": "system", "content": system}, *history], checklist_of(process), used)


# ---- recordings ---------------------------------------------------------------------------------------------

# What browsers' MediaRecorder and phones produce, and the transcription API accepts. A WebM/MP4/Ogg
# container sniffs as video when it could hold video; an audio-only recording in it is still fine.
RECORDING_TYPES = frozenset({"audio/webm", "video/webm", "audio/ogg", "video/ogg", "audio/mpeg", "audio/wav",
                             "audio/flac", "audio/mp4", "video/mp4"})


def recording_type(data: bytes) -> Sniffed:
    """The recording's real type, from its first bytes (the client's filename and type are not trusted)."""
    kind = sniff(data)
    if kind is None or kind.mime_type not in RECORDING_TYPES:
        raise UnsupportedMediaType("send the recording as WebM, Ogg, MP3, WAV, FLAC or M4A audio")
    if kind.mime_type == "video/webm":  # MediaRecorder's audio/webm sniffs as a WebM container
        return Sniffed(kind.kind, "audio/webm", kind.extension)
    return kind
