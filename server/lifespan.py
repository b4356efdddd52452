"""One server process's state, built in one place and closed in the reverse order it was built.

`open_state` makes every long-lived client and task, registering each one's stop as soon as it exists: a
start-up that fails half-way closes what it had opened, and shutdown is the same list read backwards —
sockets drained (1012) first, then AI streams ended, jobs and relays stopped, clients closed, the engine last."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.security import Passwords, Tokens
from adapters.storage import Storage
from channels import topics
from channels.hub import Hub, create_hub
from channels.outbox import Outbox
from channels.protocol import Close
from handlers.accounts.auth_cache import AuthCache
from handlers.context import Limits, Outcome
from jobs.broker import create_queue
from jobs.handoffs import enqueue_committed
from jobs.handoffs import relay as relay_handoffs
from jobs.metrics import create_stats
from jobs.publishing import publish_outcome
from jobs.runtime import JobRuntime
from jobs.scheduler import Scheduler
from jobs.worker import JobService
from persistence import migrate
from persistence.database import create_engine, create_sessionmaker
from server.ai import start_generations
from server.connect_checks import ConnectChecks
from server.metrics_middleware import ApiMetrics
from server.ratelimit import rate_limiter_for
from server.session_watch import SessionWatch, run_sweeps
from server.settings import Settings
from server.state import Announcer, AppState
from server.topic_log import DatabaseTopicLog, run_relay
from server.topic_log import stop as stop_relay
from server.websocket import drain_connections
from server.ws_chat_lines import ChatLines
from server.ws_connection import Connection

log = logging.getLogger("conversme")
T = TypeVar("T")


def utc_now() -> datetime:
    return datetime.now(UTC)


def make_announcer(hub: Hub, outbox: Outbox, sessionmaker: async_sessionmaker[AsyncSession],
                   jobs: JobRuntime | None = None, auth_cache: AuthCache | None = None) -> Announcer:
    """After the commit: fan out the entries the transaction recorded in the durable log, publish the other
    topics' messages (through the outbox, so a Redis hiccup delays them instead of losing them), then the
    removals, then enqueue its jobs (hand-offs the transaction wrote: what cannot be enqueued now, a relay
    enqueues later). Failures are logged, not raised: the change is committed."""

    async def announce(outcome: Outcome[T]) -> None:
        if auth_cache is not None:
            # This instance forgets an ended session or a changed user before anyone can hear of the change;
            # the others forget when the announcement reaches them (server.session_watch).
            for message in outcome.publish:
                if message.topic == topics.SESSIONS:
                    auth_cache.forget(message.data)
        await publish_outcome(hub, outbox, sessionmaker, outcome)
        for removal in outcome.remove:
            try:
                await hub.remove_user(removal.topic, str(removal.user_id) if removal.user_id else "*", removal.reason)
            except Exception:
                log.exception("could not remove %s from %s", removal.user_id, removal.topic)
        if outcome.enqueue and jobs is not None:
            await enqueue_committed(jobs, outcome.enqueue, outcome.handoffs)

    return announce


async def _not_wired(outcome: Outcome[T]) -> None:
    raise RuntimeError("a job announced before the job runtime was given its announcer")


def _cancel_all(tasks: set[asyncio.Task[object]]) -> None:
    for task in list(tasks):
        task.cancel()


async def drain(state: AppState, grace: float) -> None:
    """Every socket gets what is queued for it, then 1012: clients reconnect (elsewhere) and resume."""
    await drain_connections(state, Close.RESTART, "server restarting", grace)


@asynccontextmanager
async def open_state(settings: Settings, *, metrics: ApiMetrics, storage: Storage,
                     reports_storage: Storage) -> AsyncIterator[AppState]:
    """Everything this process serves with, started; closed (in reverse) when the block ends."""
    async with AsyncExitStack() as stack:
        if settings.is_sqlite:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        if not settings.storage.is_bucket:
            # Served by a StaticFiles mount, which answers 500 for every request while its directory does not exist.
            settings.upload_dir.mkdir(parents=True, exist_ok=True)
        instance_id = settings.instance_id or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        engine = create_engine(settings.database_url, pool_size=settings.db_pool_size,
                               max_overflow=settings.db_max_overflow, pool_timeout=settings.db_pool_timeout)
        stack.push_async_callback(engine.dispose)
        if settings.auto_migrate and settings.is_sqlite:
            # The embedded default migrates itself; PostgreSQL deployments run `conversme migrate` once.
            await migrate.upgrade(engine)
        sessionmaker = create_sessionmaker(engine)
        limiter = rate_limiter_for(settings.redis_url, settings.redis_prefix)
        stack.push_async_callback(limiter.close)
        hub = create_hub(settings.redis_url, instance_id, settings.redis_prefix)
        topic_log = DatabaseTopicLog(sessionmaker, history_limit=settings.log_retention_messages)
        hub.attach_log(topic_log)
        await hub.start()
        stack.push_async_callback(hub.close)
        outbox = Outbox(hub)
        stack.push_async_callback(outbox.close)
        job_stats = create_stats(settings.broker_url, settings.redis_prefix)
        stack.push_async_callback(job_stats.close)
        queue = create_queue(settings.broker_url, redeliver_after=settings.job_redeliver_seconds,
                             consumer=instance_id, prefix=settings.redis_prefix)
        await queue.startup()
        stack.push_async_callback(queue.shutdown)
        background: set[asyncio.Task[object]] = set()
        stack.callback(_cancel_all, background)

        limits = Limits(max_page_size=settings.max_page_size, max_upload_bytes=settings.max_upload_bytes,
                        debug=settings.debug)
        auth_cache = AuthCache(settings.auth_cache_seconds)
        jobs = JobRuntime(
            sessionmaker=sessionmaker, hub=hub, announce=_not_wired, storage=storage, private_storage=reports_storage,
            clock=utc_now, queue=queue, stats=job_stats, limits=limits, worker_id=instance_id,
            job_timeout=settings.job_timeout, max_retries=settings.job_max_retries, retry_base=settings.job_retry_base)
        # The runtime announces what its jobs changed, and the announcer enqueues through the runtime.
        announce = jobs.announce = make_announcer(hub, outbox, sessionmaker, jobs, auth_cache)

        connections: set[Connection] = set()
        session_watch = SessionWatch(hub, connections, auth_cache)
        if (retrying := await session_watch.start()) is not None:
            background.add(retrying)
        stack.push_async_callback(session_watch.stop)
        background.add(asyncio.create_task(run_sweeps(
            session_watch, sessionmaker, utc_now, settings.ws_session_sweep_seconds), name="session-sweep"))
        relay = asyncio.create_task(run_relay(
            hub, topic_log, timedelta(seconds=settings.log_retention_seconds), settings.log_retention_messages,
            handoffs=lambda: relay_handoffs(jobs, utc_now())), name="topic-log-relay")
        stack.push_async_callback(stop_relay, relay)
        if queue.url == "memory://":
            # The embedded default: this process runs its own jobs and (unless disabled) the scheduler.
            job_service = JobService(jobs, concurrency=settings.worker_concurrency, role="embedded",
                                     dashboard_url=settings.taskiq_dashboard_url,
                                     dashboard_token=settings.taskiq_dashboard_token)
            job_service.start()
            stack.push_async_callback(job_service.stop, grace=settings.shutdown_timeout / 2)
            if settings.embedded_scheduler:
                scheduler_stop = asyncio.Event()
                background.add(asyncio.create_task(Scheduler(
                    jobs, instance_id, settings.scheduler_interval, settings.auto_reports).run(scheduler_stop)))
                stack.callback(scheduler_stop.set)
        generations = await start_generations(settings, sessionmaker=sessionmaker, outbox=outbox, clock=utc_now,
                                              limits=limits, instance_id=instance_id)
        # Running answers end as `interrupted` while the hub is still up.
        stack.push_async_callback(generations.close)

        chat_lines = None
        if not settings.is_sqlite:
            # Written by their own task; closed before the hub and the engine, after the sockets (registered later).
            chat_lines = ChatLines(sessionmaker, announce, utc_now, limits)
            stack.push_async_callback(chat_lines.close)

        state = AppState(
            settings=settings, instance_id=instance_id, engine=engine, sessionmaker=sessionmaker,
            passwords=Passwords(settings.argon2_time_cost, settings.argon2_memory_cost, settings.argon2_parallelism),
            tokens=Tokens(settings.secret_key, settings.algorithm,
                          timedelta(minutes=settings.access_token_expire_minutes)),
            limiter=limiter, storage=storage, reports_storage=reports_storage, limits=limits, clock=utc_now, hub=hub,
            outbox=outbox, announce=announce, jobs=jobs, auth_cache=auth_cache, connect_checks=ConnectChecks(engine),
            metrics=metrics, generations=generations, session_watch=session_watch, connections=connections,
            background=background, chat_lines=chat_lines)
        # First at shutdown (a SIGTERM has drained them already, server.serving): sockets close with 1012.
        stack.push_async_callback(drain, state, 5.0)
        yield state
