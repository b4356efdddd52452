"""Per-router liveness, as the original backend answered it: `GET /<router>/health` (and `/templates/test`,
`/directories/test`, which the original frontend's health page also calls) without authentication.

The original's `/…/test` routes returned sample data; these read nothing and disclose nothing — the process
answering is all they prove, like `GET /health`. Readiness (database, migrations, Redis) is `GET /ready`.
They are listed before the REST routes, so `/templates/{template_id}` never sees `health` as an id.
"""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from server.responses import ORJSONResponse

ROUTERS = ("users", "events", "processes", "live-processes", "posts", "topics", "live", "plan", "progress",
           "reports", "templates", "directories")
TESTED = ("templates", "directories")  # the original frontend's health page calls /<router>/test for these


def _answer(router: str, check: str) -> Route:
    async def alive(request: Request) -> Response:
        return ORJSONResponse({"status": "ok", "router": router, "check": check,
                               "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z")})
    return Route(f"/{router}/{check}", alive, methods=["GET"], name=f"{router}-{check}")


def routes() -> list[Route]:
    return [_answer(r, "health") for r in ROUTERS] + [_answer(r, "test") for r in TESTED]
