"""Accounts: sign-up, sign-in sessions, rotating refresh tokens, revocation and password changes."""

from __future__ import annotations

import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import EmailStr, Field, field_validator
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.security import AccessClaims, Passwords, Tokens
from channels import topics
from handlers import catalogue
from handlers.accounts.auth_cache import AuthCache
from handlers.context import announce_after_commit
from handlers.links import OptionalLink
from handlers.schema import UTC, In, Out
from persistence import accounts as stored
from persistence.errors import BadRequest, Conflict, Invalid, TokenReuse, Unauthorized
from persistence.models import AuthSession, RefreshToken, User, UserPreferences

HANDLE_RE = re.compile(r"^[A-Za-z0-9_.-]{2,50}$")
MIN_PASSWORD = 8


class SignUp(In):
    email: EmailStr
    """the sign-in email (unique)"""
    password: str = Field(min_length=MIN_PASSWORD, max_length=256)
    """the password, at least 8 characters"""
    name: str = Field(min_length=1, max_length=200)
    """the name shown to others"""
    handle: str = Field(min_length=2, max_length=50)
    """the unique @handle: letters, digits, '_', '.' and '-'"""
    bio: str | None = Field(default=None, max_length=5000)
    """a short text about the person"""
    profile_image: OptionalLink = None
    """an http(s) or /uploads/ link to the profile picture"""

    @field_validator("handle")
    @classmethod
    def _handle(cls, value: str) -> str:
        if not HANDLE_RE.match(value):
            raise ValueError("handle may contain letters, digits, '_', '.' and '-' (2-50 characters)")
        return value


class ChangePassword(In):
    current_password: str = Field(min_length=1)
    """the password in use now"""
    new_password: str = Field(min_length=MIN_PASSWORD, max_length=256)
    """the new password, at least 8 characters"""


class TokenOut(Out):
    access_token: str
    token_type: str = "bearer"
    refresh_token: str | None = None
    expires_in: int


class SessionOut(Out):
    id: uuid.UUID
    created_at: UTC
    last_used_at: UTC
    expires_at: UTC
    ip: str | None
    user_agent: str | None
    current: bool


@dataclass(frozen=True)
class Client:
    """Who is asking, as far as the transport can tell; recorded on the sign-in session."""

    ip: str | None = None
    user_agent: str | None = None


def normalize_email(email: str) -> str:
    return email.strip().lower()


async def user_by_email(db: AsyncSession, email: str) -> User | None:
    return await stored.user_by_email(db, normalize_email(email))


async def create_user(db: AsyncSession, passwords: Passwords, data: SignUp, *, is_admin: bool = False,
                      is_guest: bool = False, guest_role: str | None = None,
                      guest_expires_at: datetime | None = None) -> User:
    email = normalize_email(str(data.email))
    if await stored.email_taken(db, email):
        raise Conflict("an account with this email already exists")
    if await stored.handle_taken(db, data.handle):
        raise Conflict("this handle is taken")
    user = User(
        email=email, name=data.name, handle=data.handle, bio=data.bio, profile_image=data.profile_image,
        password_hash=await passwords.hash(data.password), is_admin=is_admin, is_guest=is_guest,
        guest_role=guest_role, guest_expires_at=guest_expires_at, user_metadata={},
    )
    if not await stored.add_user(db, user):
        raise Conflict("an account with this email or handle already exists")
    await stored.add_preferences(db, UserPreferences(user_id=user.id))
    return user


async def check_password(db: AsyncSession, passwords: Passwords, email: str, password: str) -> User:
    user = await user_by_email(db, email)
    ok = await passwords.verify(user.password_hash if user else None, password)
    if user is None or not ok:
        raise Unauthorized("Incorrect email or password")
    assert user.password_hash is not None
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = await passwords.hash(password)
    return user


@dataclass(frozen=True)
class Issued:
    access_token: str
    refresh_token: str | None
    expires_in: int

    def out(self) -> TokenOut:
        return TokenOut(access_token=self.access_token, refresh_token=self.refresh_token,
                        expires_in=self.expires_in)


async def _new_refresh(db: AsyncSession, session: AuthSession) -> str:
    secret = Tokens.new_refresh_secret()
    token = RefreshToken(session_id=session.id, token_hash=Tokens.hash_refresh(secret))
    await stored.add_refresh_token(db, token)
    # The token names its row, so a lookup is by primary key and the secret is only ever compared hashed.
    return f"{token.id.hex}.{secret}"


async def start_session(db: AsyncSession, tokens: Tokens, user: User, now: datetime, client: Client,
                        lifetime: timedelta) -> Issued:
    session = AuthSession(user_id=user.id, created_at=now, last_used_at=now, expires_at=now + lifetime,
                          ip=client.ip, user_agent=(client.user_agent or "")[:300] or None)
    await stored.add_session(db, session)
    refresh = await _new_refresh(db, session)
    return Issued(tokens.issue_access(user.id, session.id, now), refresh, int(tokens.access_ttl.total_seconds()))


def sessions_ended(db: AsyncSession, *, session_id: uuid.UUID | None = None, user_id: uuid.UUID | None = None,
                   keep: uuid.UUID | None = None, reason: str) -> None:
    """Once the transaction commits, every instance closes the sockets of the ended sign-in: one session, or all
    of a user's but `keep`. Without it a socket outlives its session until its access token expires."""
    data: catalogue.SessionEnded = {"reason": reason, "keep": str(keep) if keep else None,
                                   "sessionId": str(session_id) if session_id else None,
                                   "userId": str(user_id) if user_id else None}
    announce_after_commit(db, catalogue.SESSION_ENDED.message(topics.SESSIONS, data))


async def revoke_session(db: AsyncSession, session_id: uuid.UUID, now: datetime, reason: str) -> None:
    await stored.revoke_session(db, session_id, now, reason)
    sessions_ended(db, session_id=session_id, reason=reason)


async def revoke_user_sessions(db: AsyncSession, user_id: uuid.UUID, now: datetime, reason: str,
                               keep: uuid.UUID | None = None) -> int:
    count = await stored.revoke_user_sessions(db, user_id, now, reason, keep=keep)
    sessions_ended(db, user_id=user_id, keep=keep, reason=reason)
    return count


async def revoke_own_session(db: AsyncSession, user_id: uuid.UUID, session_id: uuid.UUID, now: datetime,
                             reason: str) -> bool:
    """End one of the user's sign-in sessions; False, ending nothing, when it is not theirs or does not exist."""
    session = await stored.session(db, session_id)
    if session is None or session.user_id != user_id:
        return False
    await revoke_session(db, session.id, now, reason)
    return True


async def list_sessions(db: AsyncSession, user_id: uuid.UUID, now: datetime,
                        current: uuid.UUID | None) -> list[SessionOut]:
    """The user's active sign-in sessions (at most 100), most recently used first."""
    rows = await stored.live_sessions(db, user_id, now, limit=100)
    return [SessionOut(id=r.id, created_at=r.created_at, last_used_at=r.last_used_at, expires_at=r.expires_at,
                       ip=r.ip, user_agent=r.user_agent, current=r.id == current) for r in rows]


async def live_session(db: AsyncSession, session_id: uuid.UUID, now: datetime) -> AuthSession | None:
    session = await stored.session(db, session_id)
    if session is None or session.revoked_at is not None or session.expires_at <= now:
        return None
    return session


async def refresh_with_token(db: AsyncSession, tokens: Tokens, raw: str, now: datetime) -> Issued:
    """Rotate a refresh token. Presenting a spent one means it leaked: the whole family is revoked."""
    token_id, _, secret = raw.partition(".")
    try:
        row_id = uuid.UUID(hex=token_id)
    except ValueError:
        raise Unauthorized("invalid refresh token") from None
    row = await stored.refresh_token(db, row_id)
    if row is None or not secrets.compare_digest(row.token_hash, Tokens.hash_refresh(secret)):
        raise Unauthorized("invalid refresh token")
    session = await live_session(db, row.session_id, now)
    if session is None:
        raise Unauthorized("session ended; sign in again")
    if row.used_at is not None:
        await revoke_session(db, session.id, now, "refresh_token_reuse")
        raise TokenReuse("refresh token already used; all tokens of this sign-in are revoked")
    row.used_at = now
    session.last_used_at = now
    refresh = await _new_refresh(db, session)
    return Issued(tokens.issue_access(session.user_id, session.id, now), refresh,
                  int(tokens.access_ttl.total_seconds()))


async def refresh_with_access(db: AsyncSession, tokens: Tokens, claims: AccessClaims, now: datetime) -> Issued:
    """The original frontend refreshes with its still-valid access token. The new token stays inside the
    sign-in session's absolute lifetime, so re-signing cannot go on forever."""
    if claims.session_id is None:
        raise Unauthorized("token cannot be refreshed")
    session = await live_session(db, claims.session_id, now)
    if session is None:
        raise Unauthorized("session ended; sign in again")
    session.last_used_at = now
    ttl = min(tokens.access_ttl, session.expires_at - now)
    if ttl.total_seconds() < 1:
        raise Unauthorized("session ended; sign in again")
    return Issued(tokens.issue_access(session.user_id, session.id, now), None, int(ttl.total_seconds()))


async def authenticate(db: AsyncSession, claims: AccessClaims, now: datetime, cache: AuthCache | None = None) -> User:
    """The user behind a verified access token, if the account and its sign-in session still stand: from the
    instance's cache when it remembers them (no query), otherwise in one query that it then remembers."""
    if claims.session_id is None:
        raise Unauthorized("session revoked")
    user = cache.user(claims.session_id, claims.user_id, now) if cache is not None else None
    if user is not None:
        db.add(user)  # attached as loaded: handlers read and change it as usual
    else:
        row = await stored.user_and_session_expiry(db, claims.user_id, claims.session_id)
        if row is None:
            raise Unauthorized("account no longer exists")
        user, session_expires_at = row
        if session_expires_at is None or session_expires_at <= now:
            raise Unauthorized("session revoked")
        if cache is not None:
            cache.remember(claims.session_id, user, session_expires_at)
    if user.is_guest and user.guest_expires_at is not None and user.guest_expires_at <= now:
        raise Unauthorized("guest account expired")
    return user


async def change_password(db: AsyncSession, passwords: Passwords, user: User, data: ChangePassword,
                          session_id: uuid.UUID | None, now: datetime) -> int:
    if not await passwords.verify(user.password_hash, data.current_password):
        raise BadRequest("current password is incorrect")
    if data.current_password == data.new_password:
        raise Invalid("the new password must differ from the current one")
    user.password_hash = await passwords.hash(data.new_password)
    user.password_changed_at = now
    return await revoke_user_sessions(db, user.id, now, "password_changed", keep=session_id)
