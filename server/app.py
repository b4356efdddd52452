"""create_app and its lifespan: the one place where long-lived clients are made and closed."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import secrets
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from adapters.security import Passwords, Tokens
from adapters.storage import open_storages
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
from server import liveness, openapi
from server.ai import start_generations
from server.api import ORJSONResponse, build_routes
from server.connect_checks import ConnectChecks
from server.metrics_middleware import ApiMetrics, MetricsMiddleware
from server.middleware import RequestIdMiddleware
from server.ratelimit import rate_limiter_for
from server.routes import all_endpoints
from server.routes.console import static_routes as console_routes
from server.routes.ops import redis_answers
from server.security_headers import SecurityHeadersMiddleware
from server.session_watch import SessionWatch, run_sweeps
from server.settings import Settings, load_settings
from server.state import Announcer, AppState
from server.topic_log import DatabaseTopicLog, run_relay
from server.topic_log import stop as stop_relay
from server.uploads import uploads_app
from server.websocket import drain_connections, websocket_endpoint

log = logging.getLogger("conversme")

try:
    VERSION = version("conversme")
except PackageNotFoundError:  # running from a source tree without an install
    VERSION = "0.0.0"


def make_announcer(hub: Hub, outbox: Outbox, sessionmaker: async_sessionmaker[AsyncSession],
                   jobs: JobRuntime | None = None, auth_cache: AuthCache | None = None) -> Announcer:
    """After the commit: fan out the entries the transaction recorded in the durable log, publish the other
    topics' messages (through the outbox, so a Redis hiccup delays them instead of losing them), then the
    removals, then enqueue its jobs (hand-offs the transaction wrote: what cannot be enqueued now, a relay
    enqueues later). Failures are logged, not raised: the change is committed."""

    async def announce(outcome: Outcome[Any]) -> None:
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


# The apps this process serves, so a SIGTERM handler can drain their sockets before uvicorn closes them.
_LIVE_STATES: list[AppState] = []


async def drain_all() -> None:
    for state in list(_LIVE_STATES):
        await drain_connections(state, Close.RESTART, "server restarting", state.settings.shutdown_timeout / 2)


def utc_now() -> datetime:
    return datetime.now(UTC)


def create_app(settings: Settings) -> Starlette:
    endpoints = all_endpoints()
    metrics = ApiMetrics()
    # Made here, not in the lifespan: the uploads mount serves from the same store (a client, no connection yet).
    files, report_files = open_storages(settings.storage)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if settings.is_sqlite:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_engine(settings.database_url, pool_size=settings.db_pool_size,
                               max_overflow=settings.db_max_overflow, pool_timeout=settings.db_pool_timeout)
        if settings.auto_migrate and settings.is_sqlite:
            # The embedded default migrates itself; PostgreSQL deployments run `conversme migrate` once.
            await migrate.upgrade(engine)
        limiter = rate_limiter_for(settings.redis_url, settings.redis_prefix)
        instance_id = settings.instance_id or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        hub = create_hub(settings.redis_url, instance_id, settings.redis_prefix)
        sessionmaker = create_sessionmaker(engine)
        topic_log = DatabaseTopicLog(sessionmaker, history_limit=settings.log_retention_messages)
        hub.attach_log(topic_log)
        await hub.start()
        outbox = Outbox(hub)
        queue = create_queue(settings.broker_url, redeliver_after=settings.job_redeliver_seconds,
                             consumer=instance_id, prefix=settings.redis_prefix)
        job_stats = create_stats(settings.broker_url, settings.redis_prefix)
        await queue.startup()
        if not settings.storage.is_bucket:
            # Served by a StaticFiles mount, which answers 500 for every request while its directory does not exist.
            settings.upload_dir.mkdir(parents=True, exist_ok=True)
        app.state.conversme = AppState(
            settings=settings,
            engine=engine,
            sessionmaker=sessionmaker,
            passwords=Passwords(settings.argon2_time_cost, settings.argon2_memory_cost,
                                settings.argon2_parallelism),
            tokens=Tokens(settings.secret_key, settings.algorithm,
                          timedelta(minutes=settings.access_token_expire_minutes)),
            limiter=limiter,
            storage=files,
            limits=Limits(max_page_size=settings.max_page_size, max_upload_bytes=settings.max_upload_bytes,
                          debug=settings.debug),
            clock=utc_now,
            hub=hub,
            announce=make_announcer(hub, outbox, sessionmaker),
            outbox=outbox,
            instance_id=instance_id,
        )
        state: AppState = app.state.conversme
        state.metrics = metrics
        state.reports_storage = report_files
        state.jobs = JobRuntime(
            sessionmaker=state.sessionmaker, hub=hub, announce=state.announce, storage=state.storage,
            private_storage=state.reports_storage, clock=utc_now, queue=queue, stats=job_stats,
            limits=state.limits, worker_id=instance_id, job_timeout=settings.job_timeout,
            max_retries=settings.job_max_retries, retry_base=settings.job_retry_base)
        state.auth_cache = AuthCache(settings.auth_cache_seconds)
        state.connect_checks = ConnectChecks(engine)
        state.announce = make_announcer(hub, outbox, sessionmaker, state.jobs, state.auth_cache)
        jobs_rt = state.jobs
        state.jobs.announce = state.announce
        job_service: JobService | None = None
        scheduler_stop = asyncio.Event()
        if queue.url == "memory://":
            # The embedded default: this process runs its own jobs and (unless disabled) the scheduler.
            job_service = JobService(state.jobs, concurrency=settings.worker_concurrency, role="embedded",
                                     dashboard_url=settings.taskiq_dashboard_url,
                                     dashboard_token=settings.taskiq_dashboard_token)
            job_service.start()
            if settings.embedded_scheduler:
                loop_task = asyncio.get_running_loop().create_task(
                    Scheduler(state.jobs, instance_id, settings.scheduler_interval,
                              settings.auto_reports).run(scheduler_stop))
                state.background.add(loop_task)
        state.generations = await start_generations(settings, state)
        state.session_watch = SessionWatch(hub, state.connections, state.auth_cache)
        if (retrying := await state.session_watch.start()) is not None:
            state.background.add(retrying)
        state.background.add(asyncio.get_running_loop().create_task(run_sweeps(
            state.session_watch, sessionmaker, utc_now, settings.ws_session_sweep_seconds), name="session-sweep"))
        relay = asyncio.get_running_loop().create_task(run_relay(
            hub, topic_log, timedelta(seconds=settings.log_retention_seconds), settings.log_retention_messages,
            handoffs=lambda: relay_handoffs(jobs_rt, utc_now())), name="topic-log-relay")
        _LIVE_STATES.append(app.state.conversme)
        # Everything loaded so far lives as long as the process: keep the cyclic GC from rescanning it on
        # every collection (measured: the month calendar with 3,000 events ~650 → ~520 ms).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            state = app.state.conversme
            _LIVE_STATES.remove(state)
            await drain_connections(state, Close.RESTART, "server restarting")
            if state.generations is not None:  # running answers end as `interrupted` while the hub is still up
                await state.generations.close()
            scheduler_stop.set()
            if job_service is not None:
                await job_service.stop(grace=settings.shutdown_timeout / 2)
            await stop_relay(relay)
            await state.session_watch.stop()
            for task in list(state.background):
                task.cancel()
            await queue.shutdown()
            await job_stats.close()
            await outbox.close()
            await hub.close()
            await limiter.close()
            await engine.dispose()

    async def health(request: Request) -> Response:
        return ORJSONResponse({"status": "ok", "version": VERSION})

    async def ready(request: Request) -> Response:
        state: AppState = request.app.state.conversme
        checks: dict[str, Any] = {}
        try:
            async with state.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            checks["database"] = "ok"
            current, head = await migrate.current_revision(state.engine), migrate.head_revision()
            checks["migrations"] = "ok" if current == head else f"at {current}, head is {head}"
        except Exception as exc:  # readiness reports, it does not raise
            checks["database"] = f"unreachable: {type(exc).__name__}"
        redis_up = await redis_answers(state)
        if redis_up is not None:  # only where REDIS_URL names a Redis
            checks["redis"] = "ok" if redis_up else "unreachable"
        ok = all(v == "ok" for v in checks.values()) and "migrations" in checks
        return ORJSONResponse({"status": "ok" if ok else "unavailable", "checks": checks},
                              status_code=200 if ok else 503)

    async def root(request: Request) -> Response:
        return ORJSONResponse({"message": "Convers.me API", "version": VERSION, "docs": "/docs"})

    spec: dict[str, Any] = {}

    async def openapi_json(request: Request) -> Response:
        if not spec:
            spec.update(openapi.document(endpoints, VERSION))
        return JSONResponse(spec)

    async def swagger(request: Request) -> Response:
        return openapi.swagger_page()

    async def swagger_init(request: Request) -> Response:
        return PlainTextResponse(openapi.SWAGGER_INIT, media_type="application/javascript")

    async def redoc(request: Request) -> Response:
        return openapi.redoc_page()

    routes: list[BaseRoute] = [
        Route("/", root),
        Route("/health", health),
        Route("/ready", ready),
        Route("/openapi.json", openapi_json),
        Route("/docs", swagger),
        Route("/docs/swagger-init.js", swagger_init),
        Route("/redoc", redoc),
        WebSocketRoute("/ws", websocket_endpoint),
        Mount("/docs/assets", StaticFiles(directory=openapi.assets_dir())),
        *console_routes(),
        *liveness.routes(),
        *build_routes(endpoints),
        Mount(settings.upload_url_prefix, uploads_app(files, settings.upload_dir)),
    ]
    middleware = [
        Middleware(MetricsMiddleware, metrics=metrics),
        Middleware(RequestIdMiddleware),
        Middleware(SecurityHeadersMiddleware),
        Middleware(CORSMiddleware, allow_origins=list(settings.allowed_origins), allow_methods=["*"],
                   allow_headers=["*"], expose_headers=["X-Request-ID", "Retry-After"], max_age=600),
    ]
    return ConversmeApp(routes=routes, middleware=middleware, lifespan=lifespan)


class ConversmeApp(Starlette):
    """The app, with `/ws` taken before the HTTP middleware stack: each of those layers (metrics, request id,
    security headers, CORS, the error and exception handlers, the router) passes a WebSocket straight through,
    but kept a coroutine frame of its own alive for as long as the socket stayed open — measured (bench/
    ws_conn_profile.py) at ~7 KiB of the ~34 KiB an idle joined connection held, and ~5 % of the CPU of a
    connection storm."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and scope["path"] == "/ws":
            scope["app"] = self
            await websocket_endpoint(WebSocket(scope, receive, send), send)
        else:
            await super().__call__(scope, receive, send)


def create_app_from_env() -> Starlette:
    """The uvicorn factory: settings from the environment and `.env`."""
    return create_app(load_settings())
