"""Thin REST routes: a route's signature declares its input and output models (`call: Call[Body, Query]`,
`-> Outcome[EventDetail]`), so mypy checks what flows through it; this module reads those same annotations to
parse, authenticate, own the transaction (commit, then publish), serialize camelCase and map errors once."""

from __future__ import annotations

import contextlib
import inspect
import logging
import re
import types
import typing
import uuid
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypedDict, TypeVar, Unpack, cast
from urllib.parse import parse_qsl

import orjson
from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from typing_extensions import TypeVar as DefaultedTypeVar

from adapters.security import AccessClaims, Tokens
from channels import wire_json
from handlers.accounts.sessions import Client, authenticate
from handlers.context import Context, Outcome
from handlers.schema import to_wire
from handlers.unit_of_work import Work, unit_of_work
from persistence.errors import (
    BadRequest,
    Conflict,
    DomainError,
    Forbidden,
    Invalid,
    PayloadTooLarge,
    RateLimited,
    Unauthorized,
    Unavailable,
    UnsupportedMediaType,
)
from persistence.models import User
from server import errors
from server.clientip import client_ip
from server.state import AppState

log = logging.getLogger("conversme.api")

MAX_JSON_BODY = 1024 * 1024
# The login form carries a username, a password and a few OAuth2 fields: a few KiB at most.
MAX_FORM_BODY = 16 * 1024
MAX_FORM_FIELDS = 50
_PARAM = re.compile(r"{([a-zA-Z_][a-zA-Z0-9_]*)(?::[a-z]+)?}")


class ORJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return wire_json.dumps(content)


def error_response(error: DomainError, request_id: str | None = None) -> JSONResponse:
    headers: dict[str, str] = {}
    if isinstance(error, Unauthorized):
        headers["WWW-Authenticate"] = "Bearer"
    if isinstance(error, RateLimited | Unavailable):
        headers["Retry-After"] = str(max(1, int(error.retry_after)))
    content = errors.body(error)
    if request_id:
        content["requestId"] = request_id
    return ORJSONResponse(content, status_code=errors.status_for(error), headers=headers)


# What a route receives, declared once in its signature (`call: Call[EventCreate, EventQuery]`): the router reads
# the body and query models from that annotation, and mypy checks what the route does with them. None: no body,
# no query, nothing prepared (the defaults, so a route without inputs is just `call: Call`). Covariant, so a
# helper that reads none of them takes any route's call (`SomeCall`).
BodyT = DefaultedTypeVar("BodyT", covariant=True, default=None)
QueryT = DefaultedTypeVar("QueryT", covariant=True, default=None)
PreparedT = DefaultedTypeVar("PreparedT", covariant=True, default=None)


@dataclass
class Call(Generic[BodyT, QueryT, PreparedT]):
    """One request as the endpoint function sees it: parsed inputs, the caller, and the unit of work."""

    request: Request
    state: AppState
    db: AsyncSession
    path: dict[str, uuid.UUID | str]
    body: BodyT
    query: QueryT
    claims: AccessClaims | None
    _ctx: Context | None
    prepared: PreparedT

    @property
    def ctx(self) -> Context:
        if self._ctx is None:
            raise Unauthorized("Not authenticated")
        return self._ctx

    @property
    def user(self) -> User:
        return self.ctx.user

    @property
    def client(self) -> Client:
        return Client(ip=client_ip(self.request, self.state.settings.trusted_proxies),
                      user_agent=self.request.headers.get("user-agent"))

    def id(self, name: str) -> uuid.UUID:
        """A path parameter named `id` or `*_id` (parsed as a UUID before the route runs)."""
        return cast(uuid.UUID, self.path[name])

    def text(self, name: str) -> str:
        """A path parameter other than an id, as sent."""
        return cast(str, self.path[name])


SomeCall = Call[object, object, object]  # a helper's parameter: any route's call, whose inputs it does not read
AnyCall = Call[Any, Any, Any]  # the router's side: it builds calls from models it only knows at runtime
EndpointFunc = Callable[[AnyCall], Awaitable[Any]]
F = TypeVar("F", bound=EndpointFunc)


def _model(tp: object, func: Callable[..., object], what: str) -> type[BaseModel] | None:
    if tp is None or tp is type(None):
        return None
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return tp
    raise TypeError(f"{func.__module__}.{func.__qualname__}: the {what} in `Call[...]` must be a pydantic model "
                    f"or None, not {tp!r}")


def _declared_inputs(func: Callable[..., object]) -> tuple[type[BaseModel] | None, type[BaseModel] | None, object]:
    """The body model, the query model and the prepared type a route declares in its `call` parameter."""
    params = list(inspect.signature(func).parameters)
    if len(params) != 1:
        raise TypeError(f"{func.__module__}.{func.__qualname__}: a route takes one parameter, `call: Call[...]`")
    annotation = typing.get_type_hints(func).get(params[0])
    args: tuple[object, ...]
    if annotation is Call:
        args = ()
    elif typing.get_origin(annotation) is Call:
        args = typing.get_args(annotation)
    else:
        raise TypeError(f"{func.__module__}.{func.__qualname__}: annotate the parameter as `Call[...]`, "
                        f"not {annotation!r}")
    body, query, prepared = (*args, None, None, None)[:3]
    return _model(body, func, "body"), _model(query, func, "query"), None if prepared is type(None) else prepared


def _answers_itself(returns: object) -> bool:
    """Whether a route's return annotation is no data shape: it builds its own Response, or answers nothing."""
    union = isinstance(returns, types.UnionType) or typing.get_origin(returns) is typing.Union
    members = typing.get_args(returns) if union else (returns,)
    return any(m is None or m is type(None) or (isinstance(m, type) and issubclass(m, Response)) for m in members)


def _declared_response(func: Callable[..., object]) -> tuple[bool, object]:
    """(False, the data shape) from the return annotation, `Outcome[...]` unwrapped; (True, None) when the route
    answers with a Response of its own (then `response=` says what that carries) or with nothing."""
    returns = typing.get_type_hints(func).get("return")
    if typing.get_origin(returns) is Outcome:
        returns = typing.get_args(returns)[0]
    if returns is None or _answers_itself(returns):
        return True, None
    return False, returns


def _prepared_type(prepare: Callable[..., object]) -> object:
    returns = typing.get_type_hints(prepare).get("return")
    if typing.get_origin(returns) in (Awaitable, typing.Awaitable):
        returns = typing.get_args(returns)[0]
    return returns


@dataclass
class Endpoint:
    method: str
    path: str
    func: EndpointFunc
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: Any = None
    status: int = 200
    auth: bool = True
    admin: bool = False
    form: bool = False
    summary: str = ""
    tags: tuple[str, ...] = ()
    raw_body: bool = False  # the body is not JSON: the endpoint (or its `prepare`) reads it (multipart uploads)
    # Runs before the database session opens, so a slow upload never holds a pooled connection.
    prepare: Callable[[Request, AppState], Awaitable[Any]] | None = None
    extra_methods: tuple[str, ...] = field(default=())
    # Reads only, announces nothing: runs without BEGIN/COMMIT (see _read_sessionmaker). Under READ COMMITTED
    # each statement sees its own snapshot inside a transaction too, so nothing a reader sees changes.
    read_only: bool = False

    @property
    def param_names(self) -> list[str]:
        return _PARAM.findall(self.path)


class RouteOptions(TypedDict, total=False):
    """What a route's decorator may say besides its method and path (see Endpoint); its inputs and, unless it
    returns a Response of its own, its output are read from its signature."""

    response: object
    status: int
    auth: bool
    admin: bool
    form: bool
    summary: str
    raw_body: bool
    prepare: Callable[[Request, AppState], Awaitable[object]]
    extra_methods: tuple[str, ...]
    read_only: bool


class ApiRouter:
    def __init__(self, *tags: str) -> None:
        self.tags = tags
        self.endpoints: list[Endpoint] = []

    def route(self, method: str, path: str, **options: Unpack[RouteOptions]) -> Callable[[F], F]:
        def register(func: F) -> F:
            where = f"{method} {path} ({func.__module__}.{func.__qualname__})"
            if "body" in options or "query" in options:
                # One place only, so the validated model and the type the route is checked against cannot drift.
                raise TypeError(f"{where}: declare the body and query in the annotation, `call: Call[Body, Query]`")
            body, query, prepared = _declared_inputs(func)
            prepare = options.get("prepare")
            if prepare is None and prepared is not None:
                raise TypeError(f"{where}: `Call[..., ..., {prepared!r}]` needs a `prepare=` that returns it")
            if prepare is not None and _prepared_type(prepare) != prepared:
                raise TypeError(f"{where}: prepare= returns {_prepared_type(prepare)!r}, the route declares "
                                f"{prepared!r}")
            answers_itself, returns = _declared_response(func)
            response = options.get("response")
            if not answers_itself:
                if "response" in options and response != returns:
                    raise TypeError(f"{where}: response={response!r} but the route returns {returns!r}")
                response = returns
            summary = options.get("summary") or (func.__doc__ or "").strip().split("\n")[0]
            settings: RouteOptions = {**options, "response": response, "summary": summary}
            self.endpoints.append(
                Endpoint(method=method, path=path, func=func, tags=self.tags, body=body, query=query, **settings)
            )
            return func
        return register

    def get(self, path: str, **options: Unpack[RouteOptions]) -> Callable[[F], F]:
        return self.route("GET", path, **options)

    def post(self, path: str, **options: Unpack[RouteOptions]) -> Callable[[F], F]:
        return self.route("POST", path, **options)

    def put(self, path: str, **options: Unpack[RouteOptions]) -> Callable[[F], F]:
        return self.route("PUT", path, **options)

    def patch(self, path: str, **options: Unpack[RouteOptions]) -> Callable[[F], F]:
        return self.route("PATCH", path, **options)

    def delete(self, path: str, **options: Unpack[RouteOptions]) -> Callable[[F], F]:
        options.setdefault("status", 204)
        return self.route("DELETE", path, **options)


def _parse_path(endpoint: Endpoint, request: Request) -> dict[str, uuid.UUID | str]:
    parsed: dict[str, uuid.UUID | str] = {}
    for name, value in request.path_params.items():
        if name == "id" or name.endswith("_id"):
            try:
                parsed[name] = uuid.UUID(str(value))
            except ValueError:
                raise errors.validation_errors(
                    ValidationError.from_exception_data(
                        "path", [{"type": "uuid_parsing", "loc": (name,), "input": value,
                                  "ctx": {"error": "invalid UUID"}}]),
                    "path") from None
        else:
            _refuse_nul(str(value), name, "path")
            parsed[name] = value
    return parsed


def _refuse(where: str, problem: str) -> Invalid:
    field, _, message = problem.partition(": ")
    return Invalid(f"invalid {where}: {problem}", errors=[{"field": field, "message": message, "type": "value_error"}])


def _refuse_nul(value: str, name: str, where: str) -> None:
    # PostgreSQL refuses NUL in text: caught here, before any query runs, rather than as a 500 deep in one.
    if "\x00" in value:
        raise _refuse(where, f"{name}: may not contain a NUL character")


def _query_dict(request: Request) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in request.query_params.multi_items():
        _refuse_nul(key, "parameter name", "query")
        _refuse_nul(value, key, "query")
        key = key.removesuffix("[]")
        if key in out:
            current = out[key]
            out[key] = [*current, value] if isinstance(current, list) else [current, value]
        else:
            out[key] = value
    return out


async def _read_body(endpoint: Endpoint, request: Request) -> Any:
    if endpoint.form:
        content_type = request.headers.get("content-type", "")
        if "json" in content_type:
            return await _read_json(request)
        if "application/x-www-form-urlencoded" not in content_type:
            raise UnsupportedMediaType("send the form as application/x-www-form-urlencoded")
        return _parse_form(await _read_capped(request, MAX_FORM_BODY))
    return await _read_json(request)


def _parse_form(raw: bytes) -> dict[str, str]:
    """A urlencoded form, strictly: UTF-8, a bounded number of fields, no NUL; the first value of a repeated key."""
    try:
        text = raw.decode("ascii")  # urlencoded bodies are ASCII; anything else is percent-encoded
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS, encoding="utf-8",
                          errors="strict")
    except UnicodeDecodeError:
        raise BadRequest("the form is not valid urlencoded UTF-8") from None
    except ValueError:
        raise BadRequest(f"the form has more than {MAX_FORM_FIELDS} fields") from None
    form: dict[str, str] = {}
    for key, value in pairs:
        _refuse_nul(key, "field name", "body")
        _refuse_nul(value, key, "body")
        form.setdefault(key, value)
    return form


async def _read_capped(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _read_json(request: Request) -> Any:
    raw = await _read_capped(request, MAX_JSON_BODY)
    if not raw.strip():
        return {}
    content_type = request.headers.get("content-type", "application/json")
    if "json" not in content_type and "text/plain" not in content_type:
        raise UnsupportedMediaType("send the body as application/json")
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"body is not valid JSON: {exc}") from None
    if (problem := wire_json.problem(value)) is not None:
        raise _refuse("body", problem)
    return value


def _validate(model: type[BaseModel], data: Any, where: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise errors.validation_errors(exc, where) from None


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


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
    async with _read_sessionmaker(state)() as db:
        yield Work(db, now)


async def _run(endpoint: Endpoint, request: Request, state: AppState) -> Response:
    now = state.clock()
    token = _bearer(request)
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
    path = _parse_path(endpoint, request)
    raw_body = await _read_body(endpoint, request) if endpoint.body is not None else None
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
        query = _validate(endpoint.query, _query_dict(request), "query") if endpoint.query else None
        body = _validate(endpoint.body, raw_body, "body") if endpoint.body is not None else None
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


def build_routes(endpoints: Sequence[Endpoint]) -> list[Route]:
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
    return routes
