"""Input no client can use to break the server: numbers past JavaScript's safe range, NUL characters, paging
past any table, oversize or malformed login forms. Each is a clear 4xx and writes nothing; what is already
stored never makes a read fail."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from pydantic import BaseModel
from sqlalchemy import select, update

from persistence.models import Directory, Event, User
from server.request_parsing import MAX_FORM_BODY
from server.routes import all_endpoints
from tests.api.eventkit import create_event
from tests.conftest import Backend, MakeUser

TOO_BIG = ["1e20", "100000000000000000000", "9007199254740992", "-9007199254740992", "1.5e300",
           "18446744073709551616"]


def _raw(client: httpx.AsyncClient, method: str, path: str, body: str, headers: dict[str, str]) -> Any:
    return client.request(method, path, content=body.encode(),
                          headers={**headers, "content-type": "application/json"})


@pytest.mark.parametrize("number", TOO_BIG)
async def test_unsafe_numbers_are_refused_and_nothing_is_written(client: httpx.AsyncClient, make_user: MakeUser,
                                                                 backend: Backend, number: str) -> None:
    a = await make_user("a")
    r = await _raw(client, "PUT", "/users/me", f'{{"bio": "new", "metadata": {{"size": {number}}}}}', a.headers)
    assert (r.status_code, r.json()["code"]) == (422, "invalid"), r.text
    assert r.json()["errors"][0]["field"] == "metadata.size" and "2^53" in r.json()["detail"]
    r = await _raw(client, "POST", "/directories", f'{{"name": "d", "metadata": {{"deep": [1, {number}]}}}}',
                   a.headers)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "metadata.deep[1]", r.text
    async with backend.state.sessionmaker() as db:
        assert (await db.scalar(select(User.bio).where(User.id == uuid.UUID(a.id)))) != "new"
        assert (await db.scalar(select(Directory.id))) is None


async def test_the_largest_safe_integer_is_kept_exactly(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    a = await make_user("a")
    r = await _raw(client, "PUT", "/users/me", '{"metadata": {"max": 9007199254740991, "min": -9007199254740991}}',
                   a.headers)
    assert r.status_code == 200, r.text
    assert r.json()["userMetadata"] == {"max": 2**53 - 1, "min": -(2**53 - 1)}


async def test_stored_numbers_past_64_bits_never_break_a_read(client: httpx.AsyncClient, make_user: MakeUser,
                                                             backend: Backend) -> None:
    """Rows written before the rule (or by hand) are read back, and written out exactly, for every caller."""
    a, b = await make_user("a"), await make_user("b")
    event = await create_event(client, a, participantIds=[b.id])
    huge = 10**20
    async with backend.state.sessionmaker.begin() as db:
        await db.execute(update(User).where(User.id == uuid.UUID(a.id)).values(user_metadata={"n": huge}))
        await db.execute(update(Event).where(Event.id == uuid.UUID(event["id"]))
                         .values(event_metadata={"n": huge, "list": [huge, 1.5]}))
    # Written behind the server's back: no `user.changed` was announced, so drop what it remembers of `a`.
    assert backend.state.auth_cache is not None
    backend.state.auth_cache.forget({"userId": a.id})
    for who, path in ((a, "/users/me"), (b, f"/users/{a.id}"), (b, f"/users/handle/{a.handle}"),
                      (b, f"/events/{event['id']}"), (a, f"/events/{event['id']}")):
        r = await client.get(path, headers=who.headers)
        assert r.status_code == 200, (path, r.text)
        assert b'"n":100000000000000000000' in r.content, path


NUL_CASES = [
    ("PUT", "/users/me", {"json": {"bio": "a\x00b"}}, "bio"),
    ("PUT", "/users/me", {"json": {"metadata": {"k\x00": 1}}}, "metadata"),
    ("POST", "/directories", {"json": {"name": "x", "metadata": {"a": ["ok", "n\x00"]}}}, "metadata.a[1]"),
    ("GET", "/search", {"params": {"q": "a\x00"}}, "q"),
    ("GET", "/events", {"params": {"status\x00": "x"}}, "parameter name"),
    ("GET", "/users/handle/%00", {}, "handle"),
]


@pytest.mark.parametrize(("method", "path", "kwargs", "field"), NUL_CASES,
                         ids=[f"{m} {p} {f}" for m, p, _, f in NUL_CASES])
async def test_nul_is_refused_before_any_query(client: httpx.AsyncClient, make_user: MakeUser, method: str,
                                               path: str, kwargs: dict[str, Any], field: str) -> None:
    a = await make_user("a")
    r = await client.request(method, path, headers=a.headers, **kwargs)
    assert (r.status_code, r.json()["code"]) == (422, "invalid"), r.text
    assert r.json()["errors"][0]["field"] == field and "NUL" in r.json()["detail"]


async def test_nul_in_the_login_form_and_in_uploads(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    a = await make_user("a")
    r = await client.post("/auth/token", data={"username": a.email + "\x00", "password": a.password})
    assert (r.status_code, r.json()["code"]) == (422, "invalid"), r.text
    r = await client.post("/auth/token", json={"username": "\x00", "password": "x"})
    assert r.status_code == 422, r.text
    # Written by hand: httpx would percent-encode the NUL in the file name.
    body = (b'--b\r\nContent-Disposition: form-data; name="file"; filename="a\x00.png"\r\n'
            b"Content-Type: image/png\r\n\r\n" + b"\x89PNG\r\n\x1a\n" + b"\x00" * 64 + b"\r\n--b--\r\n")
    r = await client.post("/media/upload", content=body,
                          headers={**a.headers, "content-type": "multipart/form-data; boundary=b"})
    assert (r.status_code, r.json()["code"]) == (422, "invalid"), r.text


def _paged() -> list[tuple[str, str]]:
    out = []
    for ep in all_endpoints():
        if ep.method == "GET" and ep.query is not None and "{" not in ep.path \
                and {"skip", "limit"} & set(ep.query.model_fields):
            out.append((ep.path, "skip" if "skip" in ep.query.model_fields else "limit"))
    return out


async def test_paging_past_any_table_is_422(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    admin = await make_user("admin", admin=True)
    paged = _paged()
    assert len(paged) > 20
    for path, param in paged:
        for value in (str(2**63), str(2**64), "1" + "0" * 30, "-1"):
            r = await client.get(path, params={param: value}, headers=admin.headers)
            assert (r.status_code, r.json()["code"]) == (422, "invalid"), (path, value, r.text)
        if param == "skip":
            r = await client.get(path, params={"offset": str(2**63)}, headers=admin.headers)
            assert r.status_code == 422, (path, r.text)


def _integer_fields(model: type[BaseModel]) -> list[tuple[str, dict[str, Any]]]:
    fields = []
    for name, prop in model.model_json_schema().get("properties", {}).items():
        options = prop.get("anyOf", [prop])
        for option in options:
            if option.get("type") in ("integer", "number"):
                fields.append((name, option))
    return fields


# Integer fields bounded elsewhere, with the reason.
BOUNDED_ELSEWHERE = {
    ("EventCreate", "duration"): "parse_duration: 0 minutes to 366 days",
    ("EventUpdate", "duration"): "parse_duration: 0 minutes to 366 days",
}


def test_every_numeric_input_declares_its_bounds() -> None:
    """A new numeric query or body field without a maximum fails here, before it can overflow a column."""
    missing = []
    seen: set[type[BaseModel]] = set()
    for ep in all_endpoints():
        for model in (ep.query, ep.body):
            if model is None or model in seen:
                continue
            seen.add(model)
            for name, option in _integer_fields(model):
                if (model.__name__, name) in BOUNDED_ELSEWHERE:
                    continue
                if "maximum" not in option and "exclusiveMaximum" not in option:
                    missing.append(f"{model.__name__}.{name}")
    assert not missing, missing


async def test_login_form_is_capped_and_strict(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    a = await make_user("a")
    big = "x" * (MAX_FORM_BODY + 1)
    r = await client.post("/auth/token", data={"username": a.email, "password": big})
    assert (r.status_code, r.json()["code"]) == (413, "payload_too_large"), r.text[:200]
    r = await client.post("/auth/token", data={"username": "u", "password": "x" * (1024 * 1024 + 1)})
    assert r.status_code == 413, r.text[:200]
    form = {"content-type": "application/x-www-form-urlencoded"}
    for body in (b"username=%ff%fe&password=x", b"username=\xff&password=x"):
        r = await client.post("/auth/token", content=body, headers=form)
        assert (r.status_code, r.json()["code"]) == (400, "bad_request"), (body, r.text)
    r = await client.post("/auth/token", content="&".join(f"f{i}=1" for i in range(60)).encode(), headers=form)
    assert r.status_code == 400 and "fields" in r.json()["detail"], r.text
    r = await client.post("/auth/token", files={"username": (None, a.email), "password": (None, a.password)})
    assert (r.status_code, r.json()["code"]) == (415, "unsupported_media_type"), r.text
    r = await client.post("/auth/token", content=b"--x\r\nbroken", headers={"content-type": "multipart/form-data"})
    assert r.status_code == 415, r.text
    # The form still works, repeated keys keep their first value.
    r = await client.post("/auth/token", content=f"username={a.email}&password={a.password}&username=other".encode()
                          .replace(b"@", b"%40").replace(b" ", b"+"), headers=form)
    assert r.status_code == 200, r.text
