"""What one AI stream carries while it runs (the lease it holds, the prompt it answers, the text and token usage
so far, whether a stop must wait for the frame being published) and what it ends with."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from ai.leases import StreamInfo
from ai.model import Usage
from handlers.live import prompts as live_ai
from handlers.live.prompts import PromptAccepted, Turn
from handlers.live.suggestions import SuggestedOperation
from persistence.errors import DomainError


@dataclass(frozen=True)
class GenerationConfig:
    context_tokens: int = 6000
    max_output_tokens: int = 1000
    tokens_per_minute_user: int = 20_000
    tokens_per_minute_session: int = 40_000
    lease_seconds: float = 5.0
    idle_timeout: float = 32.0  # a backstop behind the client's own read timeout


@dataclass
class GenerationResult:
    status: str  # completed | cancelled | error | interrupted
    stream_id: str
    text: str = ""
    message_id: uuid.UUID | None = None
    operations: list[SuggestedOperation] = field(default_factory=list)
    usage: dict[str, Any] = field(default_factory=dict)
    error: DomainError | None = None


@dataclass
class Running:
    info: StreamInfo
    accepted: PromptAccepted
    task: asyncio.Task[GenerationResult] | None = None
    stop_reason: str | None = None  # cancelled | interrupted | lost
    shielded: bool = False  # publishing a frame, or finishing: a stop waits for the next checkpoint
    started: float = field(default_factory=time.monotonic)
    first_token: float | None = None
    text: list[str] = field(default_factory=list)
    usage: Usage | None = None
    turn: Turn | None = None

    def add_usage(self, event: Usage) -> None:
        prev = self.usage
        self.usage = event if prev is None else Usage(
            prev.prompt_tokens + event.prompt_tokens, prev.completion_tokens + event.completion_tokens,
            prev.total_tokens + event.total_tokens)

    def usage_out(self) -> dict[str, Any]:
        """The tokens used, as the model reported them, else estimated from the prompt and the text so far."""
        if self.usage is not None:
            return {"promptTokens": self.usage.prompt_tokens, "completionTokens": self.usage.completion_tokens,
                    "totalTokens": self.usage.total_tokens}
        prompt = self.turn.estimated_prompt_tokens if self.turn is not None else 0
        completion = live_ai.estimate_tokens("".join(self.text)) if self.text else 0
        return {"promptTokens": prompt, "completionTokens": completion, "totalTokens": prompt + completion,
                "estimated": True}
