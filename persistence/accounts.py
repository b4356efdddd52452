"""Accounts: users, their sign-in sessions and refresh tokens, and their preferences rows."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from persistence.models import AuthSession, RefreshToken, User, UserPreferences

# ---- users ---------------------------------------------------------------------------------------------


async def user(db: AsyncSession, user_id: uuid.UUID) -> User | None:
    return await db.get(User, user_id)


async def user_by_email(db: AsyncSession, email: str) -> User | None:
    """`email` normalized (lower case) by the caller; stored emails are compared lower-cased."""
    return await db.scalar(select(User).where(func.lower(User.email) == email))


async def user_by_handle(db: AsyncSession, handle: str) -> User | None:
    return await db.scalar(select(User).where(func.lower(User.handle) == handle.lower()))


async def email_taken(db: AsyncSession, email: str, *, other_than: uuid.UUID | None = None) -> bool:
    stmt = select(User.id).where(func.lower(User.email) == email)
    if other_than is not None:
        stmt = stmt.where(User.id != other_than)
    return await db.scalar(stmt) is not None


async def handle_taken(db: AsyncSession, handle: str, *, other_than: uuid.UUID | None = None) -> bool:
    stmt = select(User.id).where(func.lower(User.handle) == handle.lower())
    if other_than is not None:
        stmt = stmt.where(User.id != other_than)
    return await db.scalar(stmt) is not None


async def add_user(db: AsyncSession, new: User) -> bool:
    """Insert `new`; False (and nothing inserted) when its email or handle was taken meanwhile."""
    db.add(new)
    try:
        async with db.begin_nested():
            await db.flush()
    except IntegrityError:
        return False
    return True


async def users_by_id(db: AsyncSession, ids: Collection[uuid.UUID]) -> dict[uuid.UUID, User]:
    if not ids:
        return {}
    return {u.id: u for u in await db.scalars(select(User).where(User.id.in_(ids)))}


async def users_by_created(db: AsyncSession, *, offset: int, limit: int) -> Sequence[User]:
    """Everyone, oldest account first."""
    return (await db.scalars(select(User).order_by(User.created_at, User.id).offset(offset).limit(limit))).all()


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def users_by_name(db: AsyncSession, text: str | None, *, offset: int, limit: int) -> Sequence[User]:
    """Everyone whose name or handle contains `text` (any case, taken literally), by name."""
    stmt = select(User)
    if text:
        pattern = f"%{_escape_like(text.lower())}%"
        stmt = stmt.where(or_(func.lower(User.name).like(pattern, escape="\\"),
                              func.lower(User.handle).like(pattern, escape="\\")))
    return (await db.scalars(stmt.order_by(func.lower(User.name), User.id).offset(offset).limit(limit))).all()


async def delete_user(db: AsyncSession, user_id: uuid.UUID) -> None:
    """The database cascades what the user owns (sessions, preferences, posts, ...)."""
    await db.execute(delete(User).where(User.id == user_id))


async def delete_users_except(db: AsyncSession, keep: uuid.UUID) -> None:
    await db.execute(delete(User).where(User.id != keep))


# ---- sign-in sessions and refresh tokens ------------------------------------------------------------------


async def add_session(db: AsyncSession, session: AuthSession) -> None:
    db.add(session)
    await db.flush()


async def add_refresh_token(db: AsyncSession, token: RefreshToken) -> None:
    db.add(token)
    await db.flush()


async def session(db: AsyncSession, session_id: uuid.UUID) -> AuthSession | None:
    return await db.get(AuthSession, session_id)


async def refresh_token(db: AsyncSession, token_id: uuid.UUID) -> RefreshToken | None:
    return await db.get(RefreshToken, token_id)


async def revoke_session(db: AsyncSession, session_id: uuid.UUID, now: datetime, reason: str) -> None:
    await db.execute(
        update(AuthSession).where(AuthSession.id == session_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=now, revoked_reason=reason)
    )


async def revoke_user_sessions(db: AsyncSession, user_id: uuid.UUID, now: datetime, reason: str, *,
                               keep: uuid.UUID | None = None) -> int:
    """Revoke every live session of the user but `keep`; returns how many this call revoked."""
    stmt = update(AuthSession).where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
    if keep is not None:
        stmt = stmt.where(AuthSession.id != keep)
    result = cast(CursorResult[Any], await db.execute(stmt.values(revoked_at=now, revoked_reason=reason)))
    return int(result.rowcount or 0)


async def live_sessions(db: AsyncSession, user_id: uuid.UUID, now: datetime, *, limit: int) -> Sequence[AuthSession]:
    """The user's unrevoked, unexpired sessions, most recently used first."""
    return (await db.scalars(
        select(AuthSession).where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None),
                                  AuthSession.expires_at > now)
        .order_by(AuthSession.last_used_at.desc()).limit(limit)
    )).all()


async def user_and_session_expiry(db: AsyncSession, user_id: uuid.UUID,
                                  session_id: uuid.UUID) -> tuple[User, datetime | None] | None:
    """In one query: the user (None if gone) and when their unrevoked session `session_id` expires (None if the
    session is revoked, gone or someone else's)."""
    row = (await db.execute(
        select(User, AuthSession.expires_at)
        .outerjoin(AuthSession, (AuthSession.id == session_id) & (AuthSession.user_id == User.id)
                   & AuthSession.revoked_at.is_(None))
        .where(User.id == user_id)
    )).one_or_none()
    if row is None:
        return None
    found, expires_at = row
    return found, expires_at


# ---- preferences -------------------------------------------------------------------------------------------


async def time_zone(db: AsyncSession, user_id: uuid.UUID) -> str | None:
    """The user's preferred time zone name, None when they have no preferences row (or no zone set)."""
    return await db.scalar(select(UserPreferences.time_zone).where(UserPreferences.user_id == user_id))


async def preferences(db: AsyncSession, user_id: uuid.UUID) -> UserPreferences | None:
    return await db.scalar(select(UserPreferences).where(UserPreferences.user_id == user_id))


async def add_preferences(db: AsyncSession, prefs: UserPreferences) -> None:
    db.add(prefs)
    await db.flush()


async def add_preferences_once(db: AsyncSession, prefs: UserPreferences) -> bool:
    """Insert `prefs`; False (and nothing inserted) when the user's row was created meanwhile."""
    try:
        async with db.begin_nested():
            db.add(prefs)
            await db.flush()
    except IntegrityError:
        return False
    return True
