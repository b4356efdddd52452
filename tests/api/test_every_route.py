"""Properties every REST route holds: no token → 401 `{detail, code}`; garbage JSON → 400 (malformed) or 422
(wrong shape), never 500."""

from __future__ import annotations

import re

import httpx
import pytest

from server.routes import all_endpoints
from server.routing import Endpoint
from tests.conftest import MakeUser

PROTECTED = [ep for ep in all_endpoints() if ep.auth]
SAMPLE_ID = "00000000-0000-4000-8000-000000000000"


def concrete(ep: Endpoint) -> str:
    return re.sub(r"{[^}]+}", SAMPLE_ID, ep.path)


def ident(ep: Endpoint) -> str:
    return f"{ep.method} {ep.path}"


@pytest.mark.parametrize("ep", PROTECTED, ids=ident)
async def test_route_without_token_is_401(client: httpx.AsyncClient, ep: Endpoint) -> None:
    r = await client.request(ep.method, concrete(ep), json={})
    assert r.status_code == 401, r.text
    assert r.json()["code"] == "unauthorized" and isinstance(r.json()["detail"], str)


@pytest.mark.parametrize("ep", [ep for ep in PROTECTED if ep.body is not None], ids=ident)
async def test_route_with_garbage_body_is_4xx(client: httpx.AsyncClient, make_user: MakeUser, ep: Endpoint) -> None:
    """docs/api.md: malformed JSON → 400 `bad_request`; JSON of the wrong shape → 422 `invalid`, except that a
    caller who may not use the route (a non-admin on an admin route) is refused first, 403, seeing no schema."""
    a = await make_user()
    for content in (b"{not json", b"[1, 2", b"\xff\xfe"):
        r = await client.request(ep.method, concrete(ep), content=content,
                                 headers={**a.headers, "content-type": "application/json"})
        assert (r.status_code, r.json()["code"]) == (400, "bad_request"), (content, r.text)
        assert isinstance(r.json()["detail"], str)
    r = await client.request(ep.method, concrete(ep), content=b'"just a string"',
                             headers={**a.headers, "content-type": "application/json"})
    assert (r.status_code, r.json()["code"]) == ((403, "forbidden") if ep.admin else (422, "invalid")), r.text
    assert isinstance(r.json()["detail"], str)


async def test_unknown_route_is_404(client: httpx.AsyncClient) -> None:
    assert (await client.get("/no/such/route")).status_code == 404
