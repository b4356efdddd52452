"""The browser console at `/console` (static files shipped inside the package, no CDN, no build step) and
the admin view of this instance's realtime figures, `GET /admin/realtime`, which the console polls."""

from __future__ import annotations

from collections import Counter

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

from handlers.schema import Out
from server.routing import ApiRouter, Call
from server.websocket import stats

router = ApiRouter("console")

# Revalidate (ETag): a deploy shows at once. The security headers are server/security_headers.py's, as for
# every response.
CACHE_HEADERS = [(b"cache-control", b"no-cache")]


class TopicLoad(Out):
    topic: str
    connections: int


class RealtimeOut(Out):
    instance_id: str
    hub: str
    connections: int
    authenticated: int
    queued_bytes: int
    topics: int
    subscriptions: int
    published: int
    top_topics: list[TopicLoad]


@router.get("/admin/realtime", admin=True)
async def realtime_overview(call: Call) -> RealtimeOut:
    """This instance's WebSocket figures: connections, topics and their local subscribers (the 50 busiest)."""
    state = call.state
    figures = stats(state)
    load: Counter[str] = Counter()
    for conn in list(state.connections):
        load.update(conn.views.keys())
    return RealtimeOut(
        instance_id=state.instance_id, hub=state.settings.redis_url.split("://")[0] or "memory",
        connections=figures.get("connections", 0), authenticated=figures.get("authenticated", 0),
        queued_bytes=figures.get("queuedBytes", 0), topics=figures.get("topics", 0),
        subscriptions=figures.get("subscriptions", 0), published=figures.get("published", 0),
        top_topics=[TopicLoad(topic=t, connections=n) for t, n in load.most_common(50)],
    )


class _Headers:
    def __init__(self, app: StaticFiles) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *CACHE_HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)


async def _to_index(request: Request) -> Response:
    return RedirectResponse("/console/", status_code=308)


def static_routes() -> list[BaseRoute]:
    """`/console/` and its assets, read from the installed package (`server/console/`)."""
    files = StaticFiles(packages=[("server", "console")], html=True)
    return [Route("/console", _to_index), Mount("/console", app=_Headers(files), name="console")]
