"""create_app: the routes, the middleware, and a lifespan that holds the process's state (server.lifespan)."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncIterator
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from sqlalchemy import text
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from adapters.storage import open_storages
from persistence import migrate
from server import liveness, openapi
from server.api import build_routes
from server.lifespan import drain, open_state
from server.metrics_middleware import ApiMetrics, MetricsMiddleware
from server.middleware import RequestIdMiddleware
from server.responses import ORJSONResponse
from server.routes import all_endpoints
from server.routes.console import static_routes as console_routes
from server.routes.ops import redis_answers
from server.security_headers import SecurityHeadersMiddleware
from server.settings import Settings, load_settings
from server.state import AppState
from server.uploads import uploads_app
from server.websocket import websocket_endpoint

try:
    VERSION = version("conversme")
except PackageNotFoundError:  # running from a source tree without an install
    VERSION = "0.0.0"


# The cyclic GC's thresholds while the app serves. Python's default (700, 10, 10) scans the young objects every
# 700 allocations, and the whole heap whenever it grew by a quarter since the last full scan: a connection storm
# grows the heap by every socket it opens, so the full scans came back again and again — measured at ~0.25 ms of
# CPU per connection (bench/ws_conn_profile.py, 2,000 connections: ~480 young, ~40 middle and 3-4 full scans).
# Most of what a request or a socket allocates dies by reference counting before a scan would reach it, so
# scanning less often finds the same garbage (uvicorn's upgrade leaves ~30 cyclic objects per socket) for a
# fraction of the work: ~6 young scans and no full one for the same storm.
GC_THRESHOLDS = (50_000, 20, 10)


def create_app(settings: Settings) -> Starlette:
    endpoints = all_endpoints()
    metrics = ApiMetrics()
    # Made here, not in the lifespan: the uploads mount serves from the same store (a client, no connection yet).
    files, report_files = open_storages(settings.storage)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with open_state(settings, metrics=metrics, storage=files, reports_storage=report_files) as state:
            app.state.conversme = state
            # Everything loaded so far lives as long as the process: keep the cyclic GC from rescanning it on
            # every collection (measured: the month calendar with 3,000 events ~650 → ~520 ms).
            gc.collect()
            gc.freeze()
            previous = gc.get_threshold()
            gc.set_threshold(*GC_THRESHOLDS)
            try:
                yield
            finally:
                gc.set_threshold(*previous)

    async def health(request: Request) -> Response:
        return ORJSONResponse({"status": "ok", "version": VERSION})

    async def ready(request: Request) -> Response:
        state: AppState = request.app.state.conversme
        checks: dict[str, str] = {}
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

    async def drain(self) -> None:
        """Close every socket with 1012 once it has what is queued for it (server.serving, on SIGTERM, before
        uvicorn closes the connections itself)."""
        state = getattr(self.state, "conversme", None)
        if isinstance(state, AppState):  # None before the lifespan has started
            await drain(state, state.settings.shutdown_timeout / 2)


def create_app_from_env() -> Starlette:
    """The uvicorn factory: settings from the environment and `.env`."""
    return create_app(load_settings())
