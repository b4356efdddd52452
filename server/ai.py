"""Wiring the live AI feature in the lifespan: the LLM port, the cross-instance coordination (leases, cancel
signals) and token budgets — Redis when REDIS_URL is redis://, like the hub — and the Generations service."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ai.budgets import create_token_budget
from ai.leases import create_coordination
from ai.model import LLMConfig, create_llm
from ai.runner import Generations
from ai.stream_state import GenerationConfig
from channels.outbox import Outbox
from handlers.context import Limits
from server.errors import ws_code
from server.settings import Settings


def llm_config(settings: Settings) -> LLMConfig:
    return LLMConfig(api_key=settings.openai_api_key, base_url=settings.openai_base_url,
                     model=settings.openai_model, transcribe_model=settings.openai_transcribe_model,
                     timeout=settings.openai_timeout)


async def start_generations(settings: Settings, *, sessionmaker: async_sessionmaker[AsyncSession], outbox: Outbox,
                            clock: Callable[[], datetime], limits: Limits, instance_id: str) -> Generations:
    generations = Generations(
        llm=create_llm(llm_config(settings)),
        coordination=create_coordination(settings.redis_url, settings.redis_prefix),
        budget=create_token_budget(settings.redis_url, settings.redis_prefix), sessionmaker=sessionmaker,
        publish=outbox.publish, clock=clock, limits=limits, instance_id=instance_id,
        config=GenerationConfig(
            context_tokens=settings.ai_context_tokens, max_output_tokens=settings.ai_max_output_tokens,
            tokens_per_minute_user=settings.ai_tokens_per_minute_user,
            tokens_per_minute_session=settings.ai_tokens_per_minute_session,
            lease_seconds=settings.ai_lease_seconds, idle_timeout=settings.openai_timeout + 2),
        error_code=ws_code)
    await generations.start()
    return generations
