"""server.route_index.RouteIndex picks the route Starlette's router would pick scanning every REST route in order:
for every route's path (with sample values, a trailing slash, a wrong method) and for paths no route has."""

from __future__ import annotations

import re
from typing import Any

from starlette.routing import BaseRoute, Match

from server.api import build_routes
from server.route_index import RouteIndex
from server.routes import all_endpoints

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")


def _pick(routes: list[BaseRoute], scope: dict[str, Any]) -> tuple[str, Any, Any] | None:
    """What Starlette's Router.app does: the first full match, else the first partial one (a 405)."""
    partial = None
    for route in routes:
        match, child = route.matches(scope)
        if match is Match.NONE:
            continue
        chosen = child.pop("conversme.route", route)
        if match is Match.FULL:
            return "full", chosen, child.get("path_params")
        if partial is None:
            partial = ("partial", chosen, child.get("path_params"))
    return partial


def test_the_index_picks_the_same_route_as_a_scan() -> None:
    [index] = build_routes(all_endpoints())
    assert isinstance(index, RouteIndex)
    flat: list[BaseRoute] = list(index.routes)
    paths = {re.sub(r"\{[^}]+\}", "00000000-0000-4000-8000-000000000001", r.path) for r in index.routes}
    paths |= {re.sub(r"\{[^}]+\}", "me", r.path) for r in index.routes}
    paths |= {p + "/" for p in paths} | {"/", "/nope", "/events/x/y/z/w", "//events", "/events//me", "/health"}
    checked = 0
    for path in sorted(paths):
        for method in METHODS:
            scope = {"type": "http", "path": path, "root_path": "", "method": method, "headers": []}
            assert _pick([index], dict(scope)) == _pick(flat, dict(scope)), (method, path)
            checked += 1
    assert checked > 1000
