"""The REST routes looked up by their path's first segment rather than one by one.

Starlette's router tries its routes in order, a regular expression each: a request for `/events/{id}` tried
about a hundred before its own (measured ~90 µs a request, more than half of what `GET /health` costs in all).
`RouteIndex` stands in the router's list for the whole block of REST routes and tries only those that can match:
the routes whose first segment is the request's, and those whose first segment is a parameter, in their order.
A route with another literal first segment never matches such a path, so the answer is the same route."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette._utils import get_route_path
from starlette.datastructures import URLPath
from starlette.routing import BaseRoute, Match, NoMatchFound, Route
from starlette.types import Receive, Scope, Send

_MATCHED = "conversme.route"  # the route that matched, from matches() to handle() through the scope


def _first(path: str) -> str | None:
    """A route's first segment; None when it is a parameter (it may match any)."""
    head = path.lstrip("/").split("/", 1)[0]
    return None if "{" in head else head


class RouteIndex(BaseRoute):
    def __init__(self, routes: Sequence[Route]) -> None:
        self.routes = list(routes)
        firsts = [_first(r.path) for r in self.routes]
        self._any = [r for r, f in zip(self.routes, firsts, strict=True) if f is None]
        self._by_first = {
            literal: [r for r, f in zip(self.routes, firsts, strict=True) if f in (literal, None)]
            for literal in {f for f in firsts if f is not None}
        }

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http":
            return Match.NONE, {}
        head = get_route_path(scope).lstrip("/").split("/", 1)[0]
        partial: tuple[Route, Scope] | None = None
        for route in self._by_first.get(head, self._any):
            match, child = route.matches(scope)
            if match is Match.FULL:
                return Match.FULL, {**child, _MATCHED: route}
            if match is Match.PARTIAL and partial is None:
                partial = (route, child)
        if partial is not None:  # the path is known, the method is not: the route answers 405
            return Match.PARTIAL, {**partial[1], _MATCHED: partial[0]}
        return Match.NONE, {}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        route: Route = scope.pop(_MATCHED)
        scope["route"] = route  # as the router would have set it (the metrics label it by its path)
        await route.handle(scope, receive, send)

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        for route in self.routes:
            try:
                return route.url_path_for(name, **path_params)
            except NoMatchFound:
                pass
        raise NoMatchFound(name, path_params)
