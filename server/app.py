"""create_app and its lifespan: the one place where long-lived clients are made and closed."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from sqlalchemy import text
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from handlers.context import Limits, Message
from handlers.security import Passwords, Tokens
from handlers.storage import LocalStorage
from persistence import migrate
from persistence.database import create_engine, create_sessionmaker
from server import openapi
from server.api import ORJSONResponse, build_routes
from server.middleware import RequestIdMiddleware
from server.ratelimit import rate_limiter_for
from server.routes import all_endpoints
from server.settings import Settings, load_settings
from server.state import AppState, Publisher

log = logging.getLogger("conversme")

try:
    VERSION = version("conversme")
except PackageNotFoundError:  # running from a source tree without an install
    VERSION = "0.0.0"


async def _no_subscribers(messages: Sequence[Message]) -> None:
    """Until a hub is attached, committed changes have no live listeners in this process."""
    return None


def utc_now() -> datetime:
    return datetime.now(UTC)


def create_app(settings: Settings, *, publisher: Publisher | None = None) -> Starlette:
    endpoints = all_endpoints()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if settings.is_sqlite:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_engine(settings.database_url, pool_size=settings.db_pool_size,
                               max_overflow=settings.db_max_overflow, pool_timeout=settings.db_pool_timeout)
        if settings.auto_migrate and settings.is_sqlite:
            # The embedded default migrates itself; PostgreSQL deployments run `conversme migrate` once.
            await migrate.upgrade(engine)
        limiter = rate_limiter_for(settings.redis_url)
        app.state.conversme = AppState(
            settings=settings,
            engine=engine,
            sessionmaker=create_sessionmaker(engine),
            passwords=Passwords(settings.argon2_time_cost, settings.argon2_memory_cost,
                                settings.argon2_parallelism),
            tokens=Tokens(settings.secret_key, settings.algorithm,
                          timedelta(minutes=settings.access_token_expire_minutes)),
            limiter=limiter,
            storage=LocalStorage(settings.upload_dir, settings.upload_url_prefix),
            limits=Limits(max_page_size=settings.max_page_size, max_upload_bytes=settings.max_upload_bytes,
                          debug=settings.debug),
            clock=utc_now,
            publish=publisher or _no_subscribers,
        )
        try:
            yield
        finally:
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
        ok = all(v == "ok" for v in checks.values()) and len(checks) == 2
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
        Mount("/docs/assets", StaticFiles(directory=openapi.assets_dir())),
        *build_routes(endpoints),
        Mount(settings.upload_url_prefix, StaticFiles(directory=settings.upload_dir, check_dir=False)),
    ]
    middleware = [
        Middleware(RequestIdMiddleware),
        Middleware(CORSMiddleware, allow_origins=list(settings.allowed_origins), allow_methods=["*"],
                   allow_headers=["*"], expose_headers=["X-Request-ID", "Retry-After"], max_age=600),
    ]
    return Starlette(routes=routes, middleware=middleware, lifespan=lifespan)


def create_app_from_env() -> Starlette:
    """The uvicorn factory: settings from the environment and `.env`."""
    return create_app(load_settings())
