"""REST routes: sign-up, login, refresh, logout, sessions, password change, guest login."""

from __future__ import annotations

import secrets
import uuid
from datetime import timedelta

from pydantic import Field

from handlers.accounts import sessions as accounts
from handlers.accounts.sessions import ChangePassword, SessionOut, SignUp, TokenOut
from handlers.accounts.users import UserOut, user_out
from handlers.links import ServedLink
from handlers.schema import In, Out
from persistence.enums import GuestRole
from persistence.errors import BadRequest, Forbidden, NotFound, RateLimited, Unauthorized
from server.routing import ApiRouter, Call, SomeCall

router = ApiRouter("auth")


class LoginForm(In):
    username: str = Field(min_length=1, max_length=320, description="the account's email")
    password: str = Field(min_length=1, max_length=256)
    """the account's password"""


class RefreshIn(In):
    refresh_token: str | None = Field(default=None, max_length=200)
    """the refresh token of the sign-in (from /auth/token or the last refresh: they rotate)"""


class RevokeIn(In):
    session_id: uuid.UUID | None = None
    """one of my sessions to end; omitted: every session but the current one"""


class SettingsRevokeIn(In):
    # Any string: the original Security page sends ids of its own placeholder list ("1", "2"), and revocation
    # answers as RFC 7009 token revocation does: an id that is not one of the caller's sessions is a success
    # without effect.
    session_id: str | None = Field(default=None, max_length=200)
    """one of my sessions to end (anything else ends nothing and still succeeds); omitted: every session but
    the current one"""


class MessageOut(Out):
    message: str


class GuestIn(In):
    role: GuestRole = GuestRole.DEV
    """the new guest account's role: dev, pm, designer, ops, ... (DEBUG only)"""


class GuestOut(Out):
    access_token: str
    token_type: str = "bearer"
    refresh_token: str | None
    expires_in: int
    email: str
    password: str
    name: str
    handle: str
    profile_image: ServedLink


async def _check_login_rate(call: SomeCall, email: str) -> None:
    s = call.state.settings
    for key, limit in ((f"login:acct:{email}", s.login_rate_per_account),
                       (f"login:ip:{call.client.ip}", s.login_rate_per_ip)):
        retry = await call.state.limiter.hit(key, limit, s.login_rate_window_seconds)
        if retry is not None:
            raise RateLimited(f"too many login attempts; try again in {int(retry)} seconds", retry)


async def _login(call: Call[LoginForm]) -> TokenOut:
    form = call.body
    email = accounts.normalize_email(form.username)
    await _check_login_rate(call, email)
    user = await accounts.check_password(call.db, call.state.passwords, email, form.password)
    await call.state.limiter.reset(f"login:acct:{email}")
    lifetime = timedelta(days=call.state.settings.refresh_token_expire_days)
    issued = await accounts.start_session(call.db, call.state.tokens, user, call.state.clock(), call.client,
                                          lifetime)
    return issued.out()


@router.post("/auth/token", form=True, auth=False)
async def login(call: Call[LoginForm]) -> TokenOut:
    """Sign in with email and password (form fields `username`, `password`)."""
    return await _login(call)


@router.post("/token", form=True, auth=False)
async def login_alias(call: Call[LoginForm]) -> TokenOut:
    """Sign in (OAuth2 password-flow path)."""
    return await _login(call)


@router.post("/auth/refresh", auth=False)
async def refresh(call: Call[RefreshIn]) -> TokenOut:
    """Rotate a refresh token, or re-issue from a still-valid access token (the original frontend)."""
    body = call.body
    now = call.state.clock()
    if body.refresh_token:
        return (await accounts.refresh_with_token(call.db, call.state.tokens, body.refresh_token, now)).out()
    if call.claims is None or call._ctx is None:
        raise Unauthorized("send a refresh token, or a valid access token as Bearer")
    return (await accounts.refresh_with_access(call.db, call.state.tokens, call.claims, now)).out()


@router.post("/auth/logout")
async def logout(call: Call) -> MessageOut:
    """End this sign-in: its refresh token and access tokens stop working."""
    assert call.claims is not None and call.claims.session_id is not None
    await accounts.revoke_session(call.db, call.claims.session_id, call.ctx.now, "logout")
    return MessageOut(message="signed out")


async def _revoke_others(call: SomeCall) -> MessageOut:
    ctx = call.ctx
    current = call.claims.session_id if call.claims else None
    count = await accounts.revoke_user_sessions(ctx.db, ctx.user_id, ctx.now, "revoked_by_user", keep=current)
    return MessageOut(message=f"{count} other session(s) revoked")


async def _revoke(call: Call[RevokeIn]) -> MessageOut:
    body = call.body
    ctx = call.ctx
    if body.session_id is None:
        return await _revoke_others(call)
    if not await accounts.revoke_own_session(ctx.db, ctx.user_id, body.session_id, ctx.now, "revoked_by_user"):
        raise NotFound("session", body.session_id)
    return MessageOut(message="session revoked")


@router.post("/auth/revoke-sessions")
async def revoke_sessions(call: Call[RevokeIn]) -> MessageOut:
    """Revoke one sign-in session (`sessionId`), or every other one when none is given."""
    return await _revoke(call)


@router.post("/settings/sessions/revoke")
async def revoke_sessions_settings(call: Call[SettingsRevokeIn]) -> MessageOut:
    """Revoke one of my sessions from the settings page, or every other one when `sessionId` is absent.

    As in RFC 7009, an id that is malformed or not one of my sessions gets the same success answer and ends
    nothing, so this route neither fails the page nor tells whether someone else's session id exists."""
    body = call.body
    ctx = call.ctx
    if body.session_id is None:
        return await _revoke_others(call)
    try:
        session_id = uuid.UUID(body.session_id)
    except ValueError:
        return MessageOut(message="session revoked")
    await accounts.revoke_own_session(ctx.db, ctx.user_id, session_id, ctx.now, "revoked_by_user")
    return MessageOut(message="session revoked")


@router.get("/auth/sessions")
async def list_sessions(call: Call) -> list[SessionOut]:
    """My active sign-in sessions."""
    ctx = call.ctx
    current = call.claims.session_id if call.claims else None
    return await accounts.list_sessions(ctx.db, ctx.user_id, ctx.now, current)


@router.post("/users", status=201, auth=False)
async def sign_up(call: Call[SignUp]) -> UserOut:
    """Create an account. Guest flags in the body are ignored: guests come from /auth/guest."""
    user = await accounts.create_user(call.db, call.state.passwords, call.body)
    return user_out(user, viewer=user)


@router.post("/settings/change-password")
async def change_password(call: Call[ChangePassword]) -> MessageOut:
    """Change my password; every other sign-in session is revoked."""
    ctx = call.ctx
    sid = call.claims.session_id if call.claims else None
    count = await accounts.change_password(ctx.db, call.state.passwords, ctx.user, call.body, sid, ctx.now)
    return MessageOut(message=f"password changed; {count} other session(s) signed out")


@router.post("/auth/guest", auth=False)
async def guest_login(call: Call[GuestIn]) -> GuestOut:
    """A throw-away guest account with a random password (DEBUG only; expires after a day)."""
    if not call.state.settings.debug:
        raise Forbidden("guest login is only available when DEBUG is on")
    body = call.body
    role = GuestRole.DEV if body.role == GuestRole.LEADERSHIP else body.role
    tag = secrets.token_hex(4)
    password = secrets.token_urlsafe(18)
    now = call.state.clock()
    data = SignUp(email=f"{role.value}.{tag}@guest.convers.me", password=password,
                  name=f"Guest {role.value.upper()} {tag[:4]}", handle=f"guest_{role.value}_{tag}")
    user = await accounts.create_user(call.db, call.state.passwords, data, is_guest=True, guest_role=role.value,
                                      guest_expires_at=now + timedelta(days=1))
    issued = await accounts.start_session(call.db, call.state.tokens, user, now, call.client, timedelta(days=1))
    if issued.refresh_token is None:
        raise BadRequest("could not start a session")
    return GuestOut(access_token=issued.access_token, refresh_token=issued.refresh_token,
                    expires_in=issued.expires_in, email=user.email, password=password, name=user.name,
                    handle=user.handle, profile_image=user.profile_image)
