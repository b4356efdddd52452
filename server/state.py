"""The long-lived parts of one server process, made in the lifespan and kept on typed app state."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from adapters.security import Passwords, Tokens
from adapters.storage import Storage
from ai.runner import Generations
from channels.hub import Hub
from channels.outbox import Outbox
from channels.protocol import Limits as ProtocolLimits
from handlers.accounts.auth_cache import AuthCache
from handlers.context import Limits, Outcome
from jobs.runtime import JobRuntime
from server.connect_checks import ConnectChecks
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
    jobs: JobRuntime | None = None  # enqueueing (and on memory://, running) background jobs
    reports_storage: Storage | None = None  # private: report files, served only to their owner
    metrics: Any = None  # server.metrics_middleware.ApiMetrics
    # Frames of connections that have closed, and sockets ever opened (live ones are summed at read time).
    ws_totals: dict[str, int] = field(default_factory=lambda: {"framesIn": 0, "framesOut": 0, "opened": 0})
    generations: Generations | None = None  # live AI streams: the prompt gate and the running generations
    background: set[asyncio.Task[Any]] = field(default_factory=set)
    session_watch: Any = None  # server.session_watch.SessionWatch
    auth_cache: AuthCache | None = None
    ws_limits: ProtocolLimits | None = None  # every socket's protocol limits (server.websocket)
    connect_checks: ConnectChecks | None = None  # connecting sockets' lookups, batched
