"""The long-lived parts of one server process: built together by server.lifespan.open_state, kept on app state."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol, TypeVar

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
from server.metrics_middleware import ApiMetrics
from server.ratelimit import RateLimiter
from server.session_watch import SessionWatch
from server.settings import Settings

if TYPE_CHECKING:  # server.ws_connection and server.ws_chat_lines import this module
    from server.ws_chat_lines import ChatLines
    from server.ws_connection import Connection

T = TypeVar("T")


class Announcer(Protocol):
    """After a commit: publish what an outcome recorded, remove whom it removed, enqueue its jobs."""

    def __call__(self, outcome: Outcome[T], /) -> Awaitable[None]: ...


@dataclass
class AppState:
    settings: Settings
    instance_id: str
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    passwords: Passwords
    tokens: Tokens
    limiter: RateLimiter
    storage: Storage
    reports_storage: Storage  # private: report files, served only to their owner
    limits: Limits
    clock: Callable[[], datetime]
    hub: Hub
    outbox: Outbox
    announce: Announcer
    jobs: JobRuntime  # enqueueing (and on memory://, running) background jobs
    auth_cache: AuthCache
    connect_checks: ConnectChecks  # connecting sockets' lookups, batched
    metrics: ApiMetrics
    generations: Generations  # live AI streams: the prompt gate and the running generations
    session_watch: SessionWatch
    connections: set[Connection]  # the open sockets, shared with session_watch
    background: set[asyncio.Task[object]]  # cancelled at shutdown
    # Frames of connections that have closed, and sockets ever opened (live ones are summed at read time).
    ws_totals: dict[str, int] = field(default_factory=lambda: {"framesIn": 0, "framesOut": 0, "opened": 0})
    ws_limits: ProtocolLimits | None = None  # every socket's protocol limits, made by the first (server/websocket.py)
    chat_lines: ChatLines | None = None  # pushed chat lines stored in groups (PostgreSQL; else one push at a time)
