"""The long-lived parts of one server process, made in the lifespan and kept on typed app state."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from handlers.context import Limits, Message
from handlers.security import Passwords, Tokens
from handlers.storage import Storage
from server.ratelimit import RateLimiter
from server.settings import Settings

Publisher = Callable[[Sequence[Message]], Awaitable[None]]


@dataclass
class AppState:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    passwords: Passwords
    tokens: Tokens
    limiter: RateLimiter
    storage: Storage
    limits: Limits
    clock: Callable[[], datetime]
    publish: Publisher
