"""The typed route seam: a route's signature declares its input and output models (`call: Call[Body, Query]`,
`-> Outcome[EventDetail]`), so mypy checks what flows through it; ApiRouter reads those same annotations into an
Endpoint, which the request pipeline (server/api.py) and the OpenAPI document (server/openapi.py) run from."""

from __future__ import annotations

import inspect
import re
import types
import typing
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypedDict, TypeVar, Unpack, cast

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response
from typing_extensions import TypeVar as DefaultedTypeVar

from adapters.security import AccessClaims
from handlers.accounts.sessions import Client
from handlers.context import Context, Outcome
from persistence.errors import Unauthorized
from persistence.models import User
from server.clientip import client_ip
from server.state import AppState

_PARAM = re.compile(r"{([a-zA-Z_][a-zA-Z0-9_]*)(?::[a-z]+)?}")



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
