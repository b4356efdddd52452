"""Running live AI turns: reserving a session's one generation, streaming the model's answer onto the
session's topic, storing it, and ending every stream exactly once — completed, cancelled, failed, or
interrupted because the instance running it died.

One `Generations` per server process. Its lifecycle per stream:
1. `reserve` (inside the prompt's transaction, via `handlers.live.prompts.GenerationGate`): model configured, token
   budgets left, then the session's lease (`ai.leases`); conflict while another stream holds it.
2. After the commit the pump (or the REST route) calls `launch`: a task publishes `ai.started`, builds the
   turn (`live_ai.build_turn`), streams the model (`ai.model`) and publishes `ai.delta {streamId, index, text}`
   per upstream text chunk, in order, through the same outbox → hub path as every other change.
3. The end: `claim_end` first (exactly one instance publishes a terminal event), then `ai.completed` /
   `ai.cancelled` / `ai.error`, then the lease is released and the tokens used are spent from the budgets.

Cancelling cancels the task: the OpenAI stream's context closes the upstream HTTP request at once. A cancel
that arrives while a frame is being published waits for that publish (so the log and the stored text agree).
A keeper loop refreshes this instance's leases and, on every instance, ends streams whose registration ran
out (their instance died) with `ai.error` code `interrupted`.

What one stream carries is in `ai/stream_state.py`, the model's tool calls in `ai/tool_calls.py`, storing the
answer in `ai/turns.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import ContextVar
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ai import metrics as ai_metrics
from ai import turns
from ai.budgets import TokenBudget
from ai.leases import Coordination, StreamInfo
from ai.model import HOW_TO_CONFIGURE, LLM, Finish, TextDelta, ToolCall, Usage
from ai.stream_state import GenerationConfig, GenerationResult, Running
from ai.tool_calls import followup, tools_for
from channels import topics
from handlers.catalogue import AI_CANCELLED, AI_COMPLETED, AI_DELTA, AI_ERROR, AI_STARTED, AiCancelled
from handlers.context import Context, Limits, Message
from handlers.live import prompts as live_ai
from handlers.live.prompts import CancelRequested, PromptAccepted
from handlers.schema import to_wire
from persistence.errors import AITimeout, AIUnavailable, Conflict, DomainError, RateLimited

# The streams reserved by the unit of work running in this task (see Generations.reservations).
_reserved_here: ContextVar[list[StreamInfo] | None] = ContextVar("ai_reserved_here", default=None)

log = logging.getLogger("conversme.ai")

Publish = Callable[[str, str, Any], Awaitable[None]]


class Generations:
    """The `GenerationGate` of `handlers.live.prompts`, and the runner of the streams it admits."""

    def __init__(self, *, llm: LLM, coordination: Coordination, budget: TokenBudget,
                 sessionmaker: async_sessionmaker[AsyncSession], publish: Publish, clock: Callable[[], datetime],
                 limits: Limits, instance_id: str, config: GenerationConfig,
                 error_code: Callable[[DomainError], str]) -> None:
        self.llm = llm
        self.coordination = coordination
        self.budget = budget
        self.sessionmaker = sessionmaker
        self.publish = publish
        self.clock = clock
        self.limits = limits
        self.instance_id = instance_id
        self.config = config
        self.error_code = error_code
        self._local: dict[str, Running] = {}
        self._keeper: asyncio.Task[None] | None = None
        self._closing = False

    # ---- lifecycle ----------------------------------------------------------------------------------

    async def start(self) -> None:
        await self.coordination.start(self._on_cancel_signal)
        self._keeper = asyncio.create_task(self._keep(), name="ai-keeper")

    async def close(self, grace: float = 5.0) -> None:
        """Stop: streams still running end for everyone as `interrupted` (members ask again elsewhere)."""
        self._closing = True
        running = list(self._local.values())
        for r in running:
            self._stop(r, "interrupted")
        tasks = [r.task for r in running if r.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=grace)
        if self._keeper is not None:
            self._keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._keeper
        await self.coordination.close()
        await self.budget.close()
        await self.llm.aclose()

    @property
    def active(self) -> int:
        return len(self._local)

    # ---- the gate -----------------------------------------------------------------------------------

    async def reserve(self, context_id: uuid.UUID, user_id: uuid.UUID, stream_id: str) -> None:
        if not self.llm.configured:
            raise AIUnavailable(HOW_TO_CONFIGURE)
        wait = await self.budget.wait_needed([(f"user:{user_id}", self.config.tokens_per_minute_user),
                                              (f"session:{context_id}", self.config.tokens_per_minute_session)])
        if wait is not None:
            seconds = math.ceil(wait)  # whole seconds for Retry-After, rounded up so a retry then finds room
            raise RateLimited(f"the AI token budget of the last minute is used up; try again in {seconds} s", seconds)
        info = StreamInfo(stream_id, str(context_id), topics.for_live(context_id), str(user_id), self.instance_id)
        if not await self.coordination.acquire(info, self.config.lease_seconds):
            raise Conflict("an answer is already being generated in this session: wait for it, or cancel it")
        pending = _reserved_here.get()
        if pending is not None:
            pending.append(info)

    @contextlib.asynccontextmanager
    async def reservations(self) -> AsyncIterator[None]:
        """Around one unit of work: a stream reserved inside it whose transaction then fails is given up at once —
        its lease released and its registration ended without a word, since no member ever heard of it (else
        everyone would get `ai.error interrupted` for a stream that never existed)."""
        token = _reserved_here.set([])
        try:
            yield
        except BaseException:
            for info in _reserved_here.get() or []:
                with contextlib.suppress(Exception):
                    await self.coordination.claim_end(info.stream_id)
                    await self.coordination.release(info)
            raise
        finally:
            _reserved_here.reset(token)

    # ---- after commit -------------------------------------------------------------------------------

    async def after_commit(self, value: Any) -> None:
        """What a committed push asks for: start a reserved stream, or cancel one."""
        if isinstance(value, PromptAccepted):
            self.launch(value)
        elif isinstance(value, CancelRequested):
            await self.cancel(value.stream_id)

    def launch(self, accepted: PromptAccepted) -> asyncio.Task[GenerationResult]:
        assert accepted.message.author_id is not None
        info = StreamInfo(accepted.stream_id, str(accepted.context_id), topics.for_live(accepted.context_id),
                          str(accepted.message.author_id), self.instance_id)
        running = Running(info, accepted)
        self._local[info.stream_id] = running
        running.task = asyncio.get_running_loop().create_task(self._run(running), name=f"ai-{info.stream_id}")
        return running.task

    async def run_to_end(self, accepted: PromptAccepted) -> GenerationResult:
        """For REST: start the stream (members on the topic see it too) and wait for its end."""
        return await asyncio.shield(self.launch(accepted))

    async def cancel(self, stream_id: str) -> None:
        running = self._local.get(stream_id)
        if running is not None:
            self._stop(running, "cancelled")
        else:
            await self.coordination.send_cancel(stream_id)

    def _on_cancel_signal(self, stream_id: str) -> None:
        running = self._local.get(stream_id)
        if running is not None:
            self._stop(running, "cancelled")

    def _stop(self, r: Running, reason: str) -> None:
        if r.stop_reason is None:
            r.stop_reason = reason
        if not r.shielded and r.task is not None and not r.task.done():
            r.task.cancel()

    # ---- one stream ---------------------------------------------------------------------------------

    async def _send(self, message: Message) -> None:
        await self.publish(message.topic, message.event, message.data)

    async def _emit(self, r: Running, message: Message) -> None:
        r.shielded = True
        try:
            await self._send(message)
        finally:
            r.shielded = False
        if r.stop_reason is not None:
            raise asyncio.CancelledError  # the stop that arrived while publishing

    async def _as_owner(self, r: Running, work: Callable[[Context], Awaitable[Any]]) -> Any:
        return await turns.as_owner(self.sessionmaker, self.clock(), self.limits, r.accepted.context_id, work)

    async def _stream_round(self, r: Running, messages: list[dict[str, Any]], tool_choice: str,
                            calls: list[ToolCall]) -> None:
        tools = tools_for(r.turn)
        events = self.llm.stream_chat(messages, tools=tools, tool_choice=tool_choice,
                                      max_tokens=self.config.max_output_tokens)
        try:
            while True:
                try:
                    async with asyncio.timeout(self.config.idle_timeout):
                        event = await anext(events)
                except StopAsyncIteration:
                    return
                except TimeoutError:
                    raise AITimeout(f"the AI service sent nothing for {self.config.idle_timeout:g} s") from None
                if isinstance(event, TextDelta):
                    if r.first_token is None:
                        r.first_token = time.monotonic()
                        ai_metrics.TIME_TO_FIRST_TOKEN.observe(r.first_token - r.started)
                    await self._emit(r, AI_DELTA.message(r.info.topic, {"streamId": r.info.stream_id,
                                                                         "index": len(r.text), "text": event.text}))
                    r.text.append(event.text)
                elif isinstance(event, ToolCall):
                    calls.append(event)
                elif isinstance(event, Usage):
                    r.add_usage(event)
                elif isinstance(event, Finish):
                    pass
        finally:
            await events.aclose()  # closes the upstream response if we leave early

    async def _run(self, r: Running) -> GenerationResult:
        sid = r.info.stream_id
        result = GenerationResult("error", sid)
        try:
            await self._emit(r, AI_STARTED.message(r.info.topic, {
                "streamId": sid, "contextId": r.info.context_id, "promptMessageId": str(r.accepted.message.id),
                "requestedBy": r.info.user_id}))
            r.turn = await self._as_owner(
                r, lambda ctx: live_ai.build_turn(ctx, r.accepted.context_id, self.config.context_tokens))
            assert r.turn is not None
            calls: list[ToolCall] = []
            await self._stream_round(r, r.turn.messages, "auto", calls)
            if calls and not r.text:
                # The model only called the tool: hand it the call's result so that it writes the answer.
                await self._stream_round(r, followup(r.turn.messages, calls), "none", [])
            r.shielded = True  # finishing: a late cancel no longer applies
            result = await self._complete(r, calls)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            reason = r.stop_reason or ("interrupted" if self._closing else "cancelled")
            if reason == "cancelled":
                result = await self._end_early(r, "cancelled", None)
            else:
                result = await self._end_early(r, "interrupted", AIUnavailable(
                    "the server running this answer stopped; ask again"), announce=reason != "lost")
        except DomainError as exc:
            result = await self._end_early(r, "error", exc)
        except Exception:
            log.exception("generation %s failed", sid)
            result = await self._end_early(r, "error", DomainError("internal error"))
        finally:
            self._local.pop(sid, None)
            with contextlib.suppress(Exception):
                await self.coordination.release(r.info)
            with contextlib.suppress(Exception):
                await self.budget.spend([f"user:{r.info.user_id}", f"session:{r.info.context_id}"],
                                        int(r.usage_out()["totalTokens"]))
            ai_metrics.GENERATIONS.labels(result.status).inc()
            if r.first_token is not None and result.status == "completed":
                elapsed = time.monotonic() - r.first_token
                tokens = r.usage_out()["completionTokens"]
                if elapsed > 0 and tokens:
                    ai_metrics.TOKENS_PER_SECOND.observe(tokens / elapsed)
        return result

    async def _complete(self, r: Running, calls: list[ToolCall]) -> GenerationResult:
        text = "".join(r.text)
        usage = r.usage_out()
        metadata = {"streamId": r.info.stream_id, "status": "completed", "usage": usage, "model": self.llm.model,
                    "inReplyTo": str(r.accepted.message.id)}
        message_id, operations = await self._as_owner(
            r, lambda ctx: turns.store_completed(ctx, r.accepted.context_id, text, calls, metadata))
        result = GenerationResult("completed", r.info.stream_id, text, message_id, operations, usage)
        if await self.coordination.claim_end(r.info.stream_id):
            await self._free(r)
            await self._send(AI_COMPLETED.message(r.info.topic, {
                "streamId": r.info.stream_id, "messageId": str(message_id), "text": text,
                "suggestedOperations": [to_wire(o) for o in operations],
                "usage": usage}))
        return result

    async def _end_early(self, r: Running, status: str, error: DomainError | None, *,
                         announce: bool = True) -> GenerationResult:
        r.shielded = True
        text = "".join(r.text)
        code = "interrupted" if status == "interrupted" else None
        if error is not None and code is None:
            code = "timeout" if isinstance(error, AITimeout) else self.error_code(error)
        result = GenerationResult(status, r.info.stream_id, text, usage=r.usage_out(), error=error)
        if text:  # what the members saw is kept, marked as unfinished
            metadata: dict[str, Any] = {"streamId": r.info.stream_id, "status": status, "usage": result.usage,
                                        "model": self.llm.model, "inReplyTo": str(r.accepted.message.id)}
            if error is not None:
                metadata["error"] = {"code": code, "message": error.message}
            try:
                result.message_id = await self._as_owner(
                    r, lambda ctx: turns.store_partial(ctx, r.accepted.context_id, text, metadata))
            except Exception:
                log.warning("could not store the partial answer of %s", r.info.stream_id, exc_info=True)
        if not announce or not await self.coordination.claim_end(r.info.stream_id):
            return result
        data: AiCancelled = {"streamId": r.info.stream_id}
        if result.message_id is not None:
            data["messageId"] = str(result.message_id)
        await self._free(r)
        if status == "cancelled":
            await self._send(AI_CANCELLED.message(r.info.topic, data))
        else:
            await self._send(AI_ERROR.message(r.info.topic, {
                **data, "code": code or "internal",
                "message": error.message if error else "the answer could not be finished"}))
        return result

    async def _free(self, r: Running) -> None:
        """Release the session's lease before the last event is published: a member who hears that the answer
        ended may ask again at once, and must not be told another answer is still being generated."""
        with contextlib.suppress(Exception):
            await self.coordination.release(r.info)

    # ---- keeping leases, and ending streams whose instance died ------------------------------------

    async def _keep(self) -> None:
        period = max(0.2, min(1.0, self.config.lease_seconds / 4))
        while True:
            await asyncio.sleep(period)
            try:
                await self._keep_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("AI stream keeper: %s", exc)

    async def _keep_once(self) -> None:
        mine = [r.info for r in self._local.values()]
        for stream_id in await self.coordination.refresh(mine, self.config.lease_seconds):
            running = self._local.get(stream_id)
            if running is not None:  # ended elsewhere (we were too slow to refresh): stop without a word
                self._stop(running, "lost")
        for info in await self.coordination.expired():
            if info.stream_id in self._local:
                continue  # ours, refreshed late; the next refresh revives it unless its end was claimed
            if await self.coordination.claim_end(info.stream_id):
                log.warning("AI stream %s of instance %s stopped being refreshed: ending it", info.stream_id,
                            info.instance)
                await self._send(AI_ERROR.message(info.topic, {
                    "streamId": info.stream_id, "code": "interrupted",
                    "message": "the server running this answer stopped; ask again"}))
                await self.coordination.release(info)
                ai_metrics.GENERATIONS.labels("interrupted").inc()
