"""The route seam is typed: a route declares its body, query and prepared value once, in `call: Call[...]`; the
router validates with those models and mypy checks the route against them. Two halves: mypy run on routes that
misuse their inputs must flag each misuse (and pass the same routes written correctly), and the router must
refuse at registration what would let the declaration and the validation drift apart."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from mypy import api as mypy_api
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from handlers.context import Outcome
from server.routing import ApiRouter, Call
from server.state import AppState

ROOT = Path(__file__).resolve().parents[2]

HEADER = """\
from __future__ import annotations

from handlers.context import Outcome
from handlers.events import manage as events
from handlers.events.manage import EventCreate, EventQuery, EventUpdate
from handlers.events.views import EventDetail, EventListItem
from server.routing import ApiRouter, Call

router = ApiRouter("events")
"""

# The same three routes, right in GOOD; in BAD each passes a wrong input on the line marked `# wrong:` with the
# error mypy must report there, and nowhere else.
GOOD = HEADER + """
@router.post("/events", response=EventDetail, status=201)
async def create(call: Call[EventCreate]) -> Outcome[EventDetail]:
    return await events.create_event(call.ctx, call.body)


@router.put("/events/{event_id}", response=EventDetail)
async def update(call: Call[EventUpdate]) -> Outcome[EventDetail]:
    return await events.update_event(call.ctx, call.id("event_id"), call.body)


@router.get("/events", response=list[EventListItem])
async def listing(call: Call[None, EventQuery]) -> list[EventListItem]:
    return await events.list_events(call.ctx, call.query)
"""

BAD = HEADER + """
@router.post("/events", response=EventDetail, status=201)
async def create(call: Call[EventUpdate]) -> Outcome[EventDetail]:
    return await events.create_event(call.ctx, call.body)  # wrong: arg-type

@router.put("/events/{event_id}", response=EventDetail)
async def update(call: Call[EventUpdate]) -> Outcome[EventDetail]:
    return await events.update_event(call.ctx, call.id("event_id"), call.query)  # wrong: arg-type


@router.get("/events", response=list[EventListItem])
async def listing(call: Call) -> list[EventListItem]:
    return await events.list_events(call.ctx, call.body)  # wrong: arg-type
"""


def _wrong_lines(source: str) -> dict[int, str]:
    return {n: m.group(1) for n, line in enumerate(source.splitlines(), 1) if (m := re.search(r"# wrong: (\S+)", line))}


def test_mypy_follows_route_bodies_and_queries(tmp_path: Path) -> None:
    (tmp_path / "good_routes.py").write_text(GOOD)
    (tmp_path / "bad_routes.py").write_text(BAD)
    stdout, stderr, _ = mypy_api.run([
        "--config-file", str(ROOT / "pyproject.toml"), "--cache-dir", str(ROOT / ".mypy_cache"),
        "--no-error-summary", "--show-error-codes", "--hide-error-context",
        str(tmp_path / "good_routes.py"), str(tmp_path / "bad_routes.py"),
    ])
    assert not stderr, stderr
    found: dict[str, dict[int, str]] = {"good_routes.py": {}, "bad_routes.py": {}}
    for line in stdout.splitlines():
        m = re.match(r".*?(\w+_routes\.py):(\d+): error: .*\[([\w-]+)\]$", line)
        assert m, f"an error outside the snippets, or unparsed: {line}\n{stdout}"
        found[m.group(1)][int(m.group(2))] = m.group(3)
    assert found["good_routes.py"] == {}, stdout
    assert found["bad_routes.py"] == _wrong_lines(BAD), stdout


class Body(BaseModel):
    name: str


class Query(BaseModel):
    limit: int = 10


async def _prepare(request: Request, state: AppState) -> bytes:
    return b""


def test_the_router_reads_the_models_from_the_annotation() -> None:
    router = ApiRouter("t")

    @router.post("/things")
    async def create(call: Call[Body, Query]) -> None: ...

    @router.get("/things")
    async def listing(call: Call[None, Query]) -> None: ...

    @router.post("/things/upload", raw_body=True, prepare=_prepare)
    async def upload(call: Call[None, None, bytes]) -> None: ...

    @router.get("/things/count")
    async def count(call: Call) -> None: ...

    declared = {(ep.method, ep.path): (ep.body, ep.query) for ep in router.endpoints}
    assert declared == {("POST", "/things"): (Body, Query), ("GET", "/things"): (None, Query),
                        ("POST", "/things/upload"): (None, None), ("GET", "/things/count"): (None, None)}


def test_the_response_model_comes_from_the_return_annotation() -> None:
    router = ApiRouter("t")

    @router.get("/one")
    async def one(call: Call) -> Body: raise NotImplementedError

    @router.post("/many")
    async def many(call: Call[Body]) -> Outcome[list[Body]]: raise NotImplementedError

    @router.get("/own", response=Body)  # a Response of its own: response= says what it carries
    async def own(call: Call) -> Response: raise NotImplementedError

    @router.delete("/gone")
    async def gone(call: Call) -> Outcome[None]: raise NotImplementedError

    assert [ep.response for ep in router.endpoints] == [Body, list[Body], Body, None]


def test_the_router_refuses_what_could_drift() -> None:
    router = ApiRouter("t")
    with pytest.raises(TypeError, match="declare the body and query in the annotation"):
        @router.post("/a", body=Body)  # type: ignore[call-arg]  # mypy refuses it too
        async def a(call: Call[Body]) -> None: ...
    with pytest.raises(TypeError, match="prepare= returns"):
        @router.post("/b", raw_body=True, prepare=_prepare)
        async def b(call: Call[None, None, str]) -> None: ...
    with pytest.raises(TypeError, match="prepare= returns"):
        @router.post("/c", raw_body=True, prepare=_prepare)
        async def c(call: Call) -> None: ...
    with pytest.raises(TypeError, match="needs a `prepare=`"):
        @router.post("/d")
        async def d(call: Call[None, None, bytes]) -> None: ...
    with pytest.raises(TypeError, match="but the route returns"):
        @router.get("/g", response=Query)
        async def g(call: Call) -> Body: raise NotImplementedError
    with pytest.raises(TypeError, match="must be a pydantic model"):
        @router.post("/e")
        async def e(call: Call[dict[str, str]]) -> None: ...
    with pytest.raises(TypeError, match="annotate the parameter"):
        @router.post("/f")  # type: ignore[type-var]  # mypy refuses it too
        async def f(call: Body) -> None: ...
    assert router.endpoints == []

