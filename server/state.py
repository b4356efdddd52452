"""The long-lived parts of one server process, made in the lifespan and kept on typed app state."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from channels.hub import Hub
from channels.outbox import Outbox
from handlers.context import Limits, Outcome
from handlers.security import Passwords, Tokens
from handlers.storage import Storage
from server.ratelimit import RateLimiter
from server.settings import Settings

Announcer = Callable[[Outcome[Any]], Awaitable[None]]


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
    hub: Hub
    announce: Announcer
    outbox: Outbox
    instance_id: str
    connections: set[Any] = field(default_factory=set)  # server.websocket.Connection
    background: set[asyncio.Task[Any]] = field(default_factory=set)
