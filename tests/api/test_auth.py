"""Accounts over REST: sign-up, login, refresh (both kinds), rotation and reuse, logout, rate limits."""

from __future__ import annotations

import httpx

from tests.conftest import Account, MakeUser


async def test_sign_up_login_and_me(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    a: Account = await make_user("alice")
    r = await client.get("/users/me", headers=a.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["email"] == a.email and body["handle"] == a.handle
    assert "passwordHash" not in body and "password_hash" not in body


async def test_login_wrong_password_is_401_with_detail(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    a = await make_user()
    r = await client.post("/auth/token", data={"username": a.email, "password": "nope-nope"})
    assert r.status_code == 401
    assert r.json()["detail"] == "Incorrect email or password"
    assert r.json()["code"] == "unauthorized"


async def test_no_token_and_bad_token_are_401(client: httpx.AsyncClient) -> None:
    assert (await client.get("/users/me")).status_code == 401
    r = await client.get("/users/me", headers={"Authorization": "Bearer a.b.c"})
    assert r.status_code == 401 and r.json()["detail"] == "invalid token"


async def test_duplicate_sign_up_is_409(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    a = await make_user()
    r = await client.post("/users", json={"email": a.email.upper(), "password": "whatever123", "name": "x",
                                          "handle": "other_handle"})
    assert r.status_code == 409


async def test_sign_up_validation_is_422_with_fields(client: httpx.AsyncClient) -> None:
    r = await client.post("/users", json={"email": "not-an-email", "password": "short", "name": "",
                                          "handle": "x"})
    assert r.status_code == 422
    body = r.json()
    assert isinstance(body["detail"], str) and body["code"] == "invalid"
    assert {e["field"] for e in body["errors"]} >= {"email", "password", "name", "handle"}


async def test_refresh_token_rotates_and_reuse_revokes_family(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    a = await make_user()
    r1 = await client.post("/auth/refresh", json={"refreshToken": a.refresh_token})
    assert r1.status_code == 200, r1.text
    new = r1.json()
    assert new["refreshToken"] != a.refresh_token
    # Reusing the spent token revokes the whole sign-in, including the fresh tokens.
    r2 = await client.post("/auth/refresh", json={"refresh_token": a.refresh_token})
    assert r2.status_code == 401
    assert (await client.post("/auth/refresh", json={"refreshToken": new["refreshToken"]})).status_code == 401
    me = await client.get("/users/me", headers={"Authorization": f"Bearer {new['accessToken']}"})
    assert me.status_code == 401


async def test_refresh_with_access_token_like_original_frontend(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    a = await make_user()
    r = await client.post("/auth/refresh", headers=a.headers)
    assert r.status_code == 200, r.text
    assert r.json()["tokenType"] == "bearer" and r.json()["accessToken"].count(".") == 2
    assert (await client.post("/auth/refresh")).status_code == 401


async def test_logout_revokes_the_session(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    a = await make_user()
    assert (await client.post("/auth/logout", headers=a.headers)).status_code == 200
    assert (await client.get("/users/me", headers=a.headers)).status_code == 401
    assert (await client.post("/auth/refresh", json={"refreshToken": a.refresh_token})).status_code == 401


async def test_password_change_revokes_other_sessions(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    a = await make_user()
    r = await client.post("/auth/token", data={"username": a.email, "password": a.password})
    other = {"Authorization": f"Bearer {r.json()['accessToken']}"}
    r = await client.post("/settings/change-password", headers=a.headers,
                          json={"current_password": a.password, "new_password": "a brand new one"})
    assert r.status_code == 200, r.text
    assert (await client.get("/users/me", headers=other)).status_code == 401
    assert (await client.get("/users/me", headers=a.headers)).status_code == 200
    bad = await client.post("/settings/change-password", headers=a.headers,
                            json={"currentPassword": "wrong", "newPassword": "another new one"})
    assert bad.status_code == 400
    ok = await client.post("/auth/token", data={"username": a.email, "password": "a brand new one"})
    assert ok.status_code == 200


async def test_login_rate_limited_per_account(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    a = await make_user()
    statuses = [
        (await client.post("/auth/token", data={"username": a.email, "password": "bad-guess"})).status_code
        for _ in range(7)
    ]
    assert statuses[:5] == [401] * 5 and statuses[5:] == [429, 429]
    r = await client.post("/auth/token", data={"username": a.email, "password": a.password})
    assert r.status_code == 429 and "Retry-After" in r.headers
    assert r.headers.get("access-control-allow-origin") is None  # no Origin sent
    r = await client.post("/auth/token", data={"username": a.email, "password": "x"},
                          headers={"Origin": "http://localhost:3000"})
    assert r.status_code == 429 and r.headers["access-control-allow-origin"] == "http://localhost:3000"


async def test_login_requires_form_fields(client: httpx.AsyncClient) -> None:
    r = await client.post("/auth/token", data={"username": "x@example.com"})
    assert r.status_code == 422
    r = await client.post("/auth/token", content=b"{", headers={"content-type": "application/json"})
    assert r.status_code == 400


async def test_guest_login_is_refused_outside_debug(client: httpx.AsyncClient) -> None:
    r = await client.post("/auth/guest", json={"role": "dev"})
    assert r.status_code == 403
