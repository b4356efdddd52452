"""Users over REST: partial profile updates, lookups without other users' emails, preferences, reset 501."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import select

from persistence.models import User, UserPreferences
from tests.conftest import Backend, MakeUser


async def _db_user(backend: Backend, user_id: str) -> User:
    async with backend.state.sessionmaker() as db:
        user = await db.get(User, uuid.UUID(user_id))
        assert user is not None
        return user


async def test_partial_update_never_nulls_omitted_fields(client: httpx.AsyncClient, make_user: MakeUser,
                                                         backend: Backend) -> None:
    a = await make_user("alice")
    r = await client.put("/users/me", headers=a.headers,
                         json={"profileImage": "/img/a.png", "bio": "hello", "user_metadata": {"location": "Paris"}})
    assert r.status_code == 200, r.text
    # The settings page (client A) sends snake_case and no email: the email must survive (lockout defect).
    r = await client.put("/users/me", headers=a.headers, json={"name": "Alice B", "bio": "new bio"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["name"] == "Alice B" and body["bio"] == "new bio"
    assert body["email"] == a.email and body["handle"] == a.handle
    assert body["profileImage"] == "/img/a.png"
    assert body["userMetadata"] == {"location": "Paris"}
    assert "passwordHash" not in body and "password_hash" not in body
    stored = await _db_user(backend, a.id)
    assert stored.email == a.email and stored.profile_image == "/img/a.png"
    # Login still works with the untouched email.
    r = await client.post("/auth/token", data={"username": a.email, "password": a.password})
    assert r.status_code == 200


async def test_metadata_merges_by_key_and_keeps_inner_keys(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    a = await make_user()
    await client.put("/users/me", headers=a.headers, json={"metadata": {"location": "Paris", "team_name": "x"}})
    r = await client.put("/users/me", headers=a.headers, json={"userMetadata": {"location": "Rome", "id": 3}})
    assert r.status_code == 200
    assert r.json()["userMetadata"] == {"location": "Rome", "team_name": "x", "id": 3}
    r = await client.put("/users/me", headers=a.headers, json={"metadata": {"team_name": None}})
    assert r.json()["userMetadata"] == {"location": "Rome", "id": 3}


async def test_camel_case_client_and_email_normalisation(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    a = await make_user()
    new_email = f"New.{uuid.uuid4().hex[:6]}@Example.COM"
    r = await client.put("/users/me", headers=a.headers,
                         json={"name": "N", "email": new_email, "handle": a.handle, "profileImage": "/p.png"})
    assert r.status_code == 200, r.text
    assert r.json()["email"] == new_email.lower() and r.json()["profileImage"] == "/p.png"
    r = await client.post("/auth/token", data={"username": new_email.lower(), "password": a.password})
    assert r.status_code == 200


async def test_handle_and_email_uniqueness_are_409_and_change_nothing(client: httpx.AsyncClient,
                                                                      make_user: MakeUser) -> None:
    a = await make_user("alice")
    b = await make_user("bob")
    r = await client.put("/users/me", headers=a.headers, json={"handle": b.handle.upper(), "name": "Changed"})
    assert r.status_code == 409
    r = await client.put("/users/me", headers=a.headers, json={"email": b.email.upper(), "name": "Changed"})
    assert r.status_code == 409
    me = (await client.get("/users/me", headers=a.headers)).json()
    assert me["name"] == "Alice" and me["handle"] == a.handle and me["email"] == a.email


async def test_invalid_profile_input_is_422(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    a = await make_user()
    for body in ({"email": None}, {"name": None}, {"handle": "has space"}, {"email": "not-an-email"},
                 {"name": ""}, {"metadata": "text"}):
        r = await client.put("/users/me", headers=a.headers, json=body)
        assert r.status_code == 422, (body, r.text)
        assert isinstance(r.json()["detail"], str)
    me = (await client.get("/users/me", headers=a.headers)).json()
    assert me["email"] == a.email and me["handle"] == a.handle


async def test_password_in_profile_update_needs_current_password(client: httpx.AsyncClient,
                                                                 make_user: MakeUser) -> None:
    a = await make_user()
    r = await client.put("/users/me", headers=a.headers, json={"name": "X", "password": "brand-new-pass"})
    assert r.status_code == 422 and "change-password" in r.json()["detail"]
    assert (await client.get("/users/me", headers=a.headers)).json()["name"] != "X"
    r = await client.put("/users/me", headers=a.headers,
                         json={"password": "brand-new-pass", "currentPassword": "wrong-one"})
    assert r.status_code == 400
    r = await client.put("/users/me", headers=a.headers,
                         json={"password": "brand-new-pass", "current_password": a.password})
    assert r.status_code == 200, r.text
    assert (await client.post("/auth/token", data={"username": a.email, "password": a.password})).status_code == 401
    ok = await client.post("/auth/token", data={"username": a.email, "password": "brand-new-pass"})
    assert ok.status_code == 200
    # The session that made the change keeps working.
    assert (await client.get("/users/me", headers=a.headers)).status_code == 200


async def test_user_lists_hide_other_users_emails(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    a = await make_user("alice")
    b = await make_user("bob")
    r = await client.get("/users", headers=a.headers, params={"limit": 10, "offset": 0})
    assert r.status_code == 200
    by_id = {u["id"]: u for u in r.json()}
    assert by_id[b.id]["email"] is None and by_id[b.id]["handle"] == b.handle
    assert by_id[a.id]["email"] == a.email
    r = await client.get("/users", headers=a.headers, params={"query": "bo"})
    assert [u["id"] for u in r.json()] == [b.id]
    assert r.json()[0]["email"] is None
    r = await client.get("/users", headers=a.headers, params={"search": "%"})
    assert r.json() == []
    r = await client.get("/users", headers=a.headers, params={"limit": 1, "offset": 1})
    assert len(r.json()) == 1
    assert (await client.get("/users", headers=a.headers, params={"limit": 0})).status_code == 422


async def test_get_user_by_id_and_handle(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    a = await make_user("alice")
    b = await make_user("bob")
    r = await client.get(f"/users/{b.id}", headers=a.headers)
    assert r.status_code == 200 and r.json()["handle"] == b.handle and r.json()["email"] is None
    r = await client.get(f"/users/handle/{b.handle.upper()}", headers=a.headers)
    assert r.status_code == 200 and r.json()["id"] == b.id and r.json()["email"] is None
    assert (await client.get(f"/users/{uuid.uuid4()}", headers=a.headers)).status_code == 404
    assert (await client.get("/users/handle/nobody_here", headers=a.headers)).status_code == 404
    assert (await client.get("/users/not-a-uuid", headers=a.headers)).status_code == 422


async def test_admin_sees_emails(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    admin = await make_user("root", admin=True)
    b = await make_user("bob")
    r = await client.get(f"/users/{b.id}", headers=admin.headers)
    assert r.json()["email"] == b.email


async def test_preferences_defaults_and_partial_update(client: httpx.AsyncClient, make_user: MakeUser,
                                                       backend: Backend) -> None:
    a = await make_user()
    async with backend.state.sessionmaker.begin() as db:  # a legacy account without a preferences row
        row = await db.scalar(select(UserPreferences).where(UserPreferences.user_id == uuid.UUID(a.id)))
        assert row is not None
        await db.delete(row)
    r = await client.get("/users/me/preferences", headers=a.headers)
    assert r.status_code == 200, r.text
    p = r.json()
    assert p["userId"] == a.id and p["theme"] == "system" and p["timeZone"] == "UTC"
    assert p["emailNotifications"] is True and p["pushNotifications"] is True and p["reminderMinutes"] == 15
    assert p["additionalSettings"] == {} and "createdAt" in p and "id" in p
    # Client A: snake_case, toggles inside additional_settings (inner keys stored exactly as sent).
    r = await client.put("/users/me/preferences", headers=a.headers, json={
        "theme": "dark", "time_zone": "Europe/Paris", "email_notifications": False,
        "additional_settings": {"push_notifications": False, "session_timeout": 30, "two_factor_enabled": True}})
    assert r.status_code == 200, r.text
    p = r.json()
    assert p["theme"] == "dark" and p["timeZone"] == "Europe/Paris" and p["emailNotifications"] is False
    assert p["pushNotifications"] is False
    assert p["additionalSettings"] == {"push_notifications": False, "session_timeout": 30,
                                       "two_factor_enabled": True}
    # Client M: camelCase; additionalSettings merged by key, other fields untouched.
    r = await client.put("/users/me/preferences", headers=a.headers, json={
        "language": "fr", "reminderMinutes": 60, "additionalSettings": {"privacy_mode": "strict"}})
    p = r.json()
    assert p["language"] == "fr" and p["reminderMinutes"] == 60 and p["theme"] == "dark"
    assert p["timeZone"] == "Europe/Paris" and p["additionalSettings"]["session_timeout"] == 30
    assert p["additionalSettings"]["privacy_mode"] == "strict"
    again = (await client.get("/users/me/preferences", headers=a.headers)).json()
    assert again == p


async def test_preferences_validation(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    a = await make_user()
    before = (await client.get("/users/me/preferences", headers=a.headers)).json()
    for body in ({"theme": "purple"}, {"time_zone": "Mars/Olympus"}, {"timeZone": "../../etc/passwd"},
                 {"reminder_minutes": -1}, {"reminderMinutes": 10081}, {"additional_settings": [1]},
                 {"email_notifications": "maybe"}):
        r = await client.put("/users/me/preferences", headers=a.headers, json={"language": "de", **body})
        assert r.status_code == 422, (body, r.text)
    assert (await client.get("/users/me/preferences", headers=a.headers)).json() == before
    r = await client.put("/users/me/preferences", headers=a.headers, json={"theme": "Light"})
    assert r.json()["theme"] == "light"


async def test_legacy_preferences_path_redirects(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    a = await make_user()
    r = await client.get("/users/preferences", headers=a.headers)
    assert r.status_code == 307 and r.headers["location"] == "/users/me/preferences"


async def test_password_reset_is_501_not_fake_success(client: httpx.AsyncClient) -> None:
    r = await client.post("/users/reset-password/request", json={"email": "a@b.c"})
    assert r.status_code == 501 and "email" in r.json()["detail"]
    r = await client.post("/users/reset-password/confirm", json={"token": "t", "newPassword": "x" * 10})
    assert r.status_code == 501


async def test_profile_update_cannot_grant_admin_or_guest_flags(client: httpx.AsyncClient,
                                                                make_user: MakeUser) -> None:
    a = await make_user()
    r = await client.put("/users/me", headers=a.headers, json={"isAdmin": True, "is_admin": True, "isGuest": True,
                                                                "name": "Still me"})
    assert r.status_code == 200
    assert r.json()["isAdmin"] is False and r.json()["isGuest"] is False and r.json()["name"] == "Still me"
    assert (await client.get("/admin/users", headers=a.headers)).status_code == 403
