"""The REST request pipeline: for each Endpoint (server/routing.py) parse its inputs (server/request_parsing.py),
authenticate, own the transaction (commit, then publish), serialize camelCase and map errors once."""

from __future__ import annotations

import contextlib
import logging
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from adapters.security import AccessClaims, Tokens
from handlers.accounts.sessions import authenticate
from handlers.context import Context, Outcome
from handlers.schema import to_wire
from handlers.unit_of_work import Work, unit_of_work
from persistence.database import close_session
from persistence.errors import Conflict, DomainError, Forbidden, Unauthorized
from persistence.models import User
from server import errors
from server.request_parsing import bearer, parse_path, query_dict, read_body, validate
from server.responses import ORJSONResponse, error_response
from server.route_index import RouteIndex
from server.routing import AnyCall, Call, Endpoint
from server.state import AppState

log = logging.getLogger("conversme.api")


def make_handler(endpoint: Endpoint) -> Callable[[Request], Awaitable[Response]]:
    async def handle(request: Request) -> Response:
        state: AppState = request.app.state.conversme
        request_id: str | None = request.scope.get("state", {}).get("request_id")
        try:
            return await _run(endpoint, request, state)
        except DomainError as exc:
            return error_response(exc, request_id)
        except IntegrityError:
            log.info("integrity error on %s %s", request.method, request.url.path, exc_info=True)
            return error_response(Conflict("the change conflicts with existing data"), request_id)
        except Exception as exc:
            if (down := errors.unavailable(exc)) is not None:
                # The database or Redis did not answer: nothing to debug here, the client retries.
                log.warning("%s %s: dependency unavailable (%s: %s)", request.method, request.url.path,
                            type(exc).__name__, exc)
                return error_response(down, request_id)
            log.exception("unhandled error on %s %s", request.method, request.url.path)
            return ORJSONResponse(
                {"detail": "internal server error", "code": "internal", "requestId": request_id},
                status_code=500,
            )
    return handle


VERIFIED_TOKENS = 4096
_verified_tokens: weakref.WeakKeyDictionary[Tokens, OrderedDict[str, AccessClaims]] = weakref.WeakKeyDictionary()


def _verified(tokens: Tokens, token: str, now: datetime) -> AccessClaims:
    """The claims of an access token, verified once per instance rather than on every request: a client sends
    the same token for minutes, and its signature check and base64 decoding were about half of the CPU of a
    request answered from memory (`GET /users/me`). Only the expiry depends on the moment and is checked on
    every use, as decode_access would; revocation is the session's business (authenticate), never the token's."""
    seen = _verified_tokens.get(tokens)
    if seen is None:
        seen = _verified_tokens[tokens] = OrderedDict()
    claims = seen.get(token)
    if claims is not None and int(claims.expires_at.timestamp()) > int(now.timestamp()):
        return claims
    seen.pop(token, None)
    claims = tokens.decode_access(token, now)  # raises Unauthorized: nothing is remembered
    seen[token] = claims
    if len(seen) > VERIFIED_TOKENS:
        seen.popitem(last=False)
    return claims


_read_makers: weakref.WeakKeyDictionary[async_sessionmaker[AsyncSession], async_sessionmaker[AsyncSession]] = (
    weakref.WeakKeyDictionary())


def _read_sessionmaker(state: AppState) -> async_sessionmaker[AsyncSession]:
    """Sessions on the same pool whose connections run in autocommit: a read-only request then costs its
    statements' round trips only, not a BEGIN and a COMMIT besides (two of the ~eight of an event read)."""
    maker = state.sessionmaker
    reader = _read_makers.get(maker)
    if reader is None:
        bind = maker.kw["bind"].execution_options(isolation_level="AUTOCOMMIT")
        reader = _read_makers[maker] = async_sessionmaker(**{**maker.kw, "bind": bind}, class_=maker.class_)
    return reader


@contextlib.asynccontextmanager
async def _read_work(state: AppState, now: datetime) -> AsyncIterator[Work]:
    db = _read_sessionmaker(state)()
    try:
        yield Work(db, now)
    finally:
        await close_session(db)


async def _run(endpoint: Endpoint, request: Request, state: AppState) -> Response:
    now = state.clock()
    token = bearer(request)
    claims = None
    if token:
        try:
            claims = _verified(state.tokens, token, now)
        except Unauthorized:
            # A public route (login, refresh by refresh token) ignores a stale token the client still sends.
            if endpoint.auth:
                raise
    if endpoint.auth and claims is None:
        raise Unauthorized("Not authenticated")
    path = parse_path(endpoint, request)
    raw_body = await read_body(endpoint, request) if endpoint.body is not None else None
    prepared = await endpoint.prepare(request, state) if endpoint.prepare is not None else None
    if endpoint.read_only:
        unit = _read_work(state, now)
    else:
        guard = state.generations.reservations() if state.generations is not None else None
        unit = unit_of_work(state.sessionmaker, now, state.announce, guard)
    async with unit as work:
        db = work.db
        ctx = None
        user: User | None = None
        if claims is not None:
            try:
                user = await authenticate(db, claims, now, state.auth_cache)
            except Unauthorized:
                if endpoint.auth:
                    raise
                user = None
        if user is not None:
            if endpoint.admin and not user.is_admin:
                raise Forbidden("administrators only")
            ctx = Context(db=db, user=user, now=now, limits=state.limits)
        # Inputs are validated only once the caller may use the route, so a refusal reveals no schema.
        query = validate(endpoint.query, query_dict(request), "query") if endpoint.query else None
        body = validate(endpoint.body, raw_body, "body") if endpoint.body is not None else None
        call: AnyCall = Call(request, state, db, path, body, query, claims, ctx, prepared)
        result = await endpoint.func(call)
        if isinstance(result, Outcome):
            if endpoint.read_only:
                raise TypeError(f"{endpoint.method} {endpoint.path} is read_only and may not announce")
            result = work.add(result)  # announced (and its jobs handed off) once the unit commits
    if isinstance(result, Response):
        return result
    if endpoint.status == 204 and result is None:
        return Response(status_code=204)
    return ORJSONResponse(to_wire(result, endpoint.response), status_code=endpoint.status)


def _specificity(path: str) -> tuple[int, ...]:
    # Literal segments win over parameters at the same depth (`/events/me` before `/events/{event_id}`).
    return tuple(1 if seg.startswith("{") else 0 for seg in path.strip("/").split("/"))


def build_routes(endpoints: Sequence[Endpoint]) -> list[BaseRoute]:
    """The endpoints as Starlette routes, one per path (its methods dispatched inside), behind one RouteIndex."""
    by_path: dict[str, list[Endpoint]] = {}
    for ep in endpoints:
        by_path.setdefault(ep.path, []).append(ep)
    routes: list[Route] = []
    for path in sorted(by_path, key=_specificity):
        group = by_path[path]
        handlers = {m: make_handler(ep) for ep in group for m in (ep.method, *ep.extra_methods)}

        def dispatch(handlers: dict[str, Callable[[Request], Awaitable[Response]]]) -> Any:
            async def endpoint(request: Request) -> Response:
                return await (handlers.get(request.method) or handlers["GET"])(request)
            return endpoint

        methods = sorted(handlers)
        routes.append(Route(path, dispatch(handlers), methods=methods))
    return [RouteIndex(routes)]
