"""Administration: managing user accounts, and the DEBUG-only database reset."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import Field
from sqlalchemy import delete, select

from adapters.security import Passwords
from handlers.accounts import sessions as accounts
from handlers.accounts.profile import IdentityChange, apply_identity
from handlers.accounts.sessions import MIN_PASSWORD, SignUp
from handlers.context import Context
from handlers.links import ServedLink
from handlers.schema import UTC, Out, PageQuery
from persistence.errors import Conflict, NotFound
from persistence.models import AuthSession, Base, RefreshToken, User, UserPreferences

# Kept by the reset: the accounts themselves (all but the caller's are deleted row by row below).
_ACCOUNT_TABLES = frozenset({User.__tablename__, UserPreferences.__tablename__, AuthSession.__tablename__,
                             RefreshToken.__tablename__})


class AdminUserOut(Out):
    id: uuid.UUID
    name: str
    handle: str
    email: str
    profile_image: ServedLink
    bio: str | None
    is_admin: bool
    is_guest: bool
    created_at: UTC
    updated_at: UTC | None


class AdminUserCreate(SignUp):
    is_admin: bool = False
    """make the account an administrator"""


class AdminUserUpdate(IdentityChange):
    is_admin: bool | None = None
    """grant or withdraw administrator rights"""
    password: str | None = Field(default=None, min_length=MIN_PASSWORD, max_length=256)
    """set a new password (no current password needed)"""


class ResetOut(Out):
    status: str
    tables_cleared: list[str]
    tables_found: list[str]


def admin_user_out(u: User) -> AdminUserOut:
    return AdminUserOut(id=u.id, name=u.name, handle=u.handle, email=u.email, profile_image=u.profile_image,
                        bio=u.bio, is_admin=u.is_admin, is_guest=u.is_guest, created_at=u.created_at,
                        updated_at=u.updated_at)


async def _user(ctx: Context, user_id: uuid.UUID) -> User:
    user = await ctx.db.get(User, user_id)
    if user is None:
        raise NotFound("user", user_id)
    return user


async def list_users(ctx: Context, page: PageQuery) -> list[AdminUserOut]:
    offset, limit = page.window(ctx.limits.max_page_size)
    rows = await ctx.db.scalars(select(User).order_by(User.created_at, User.id).offset(offset).limit(limit))
    return [admin_user_out(u) for u in rows.all()]


async def get_user(ctx: Context, user_id: uuid.UUID) -> AdminUserOut:
    return admin_user_out(await _user(ctx, user_id))


async def create_user(ctx: Context, passwords: Passwords, data: AdminUserCreate) -> AdminUserOut:
    user = await accounts.create_user(ctx.db, passwords, data, is_admin=data.is_admin)
    return admin_user_out(user)


async def update_user(ctx: Context, passwords: Passwords, user_id: uuid.UUID,
                      data: AdminUserUpdate) -> AdminUserOut:
    user = await _user(ctx, user_id)
    given: dict[str, Any] = data.given()
    is_admin = given.pop("is_admin", None)
    password = given.pop("password", None)
    if is_admin is False and user.id == ctx.user_id:
        # Otherwise the last admin could lock everyone out of administration.
        raise Conflict("you cannot remove your own admin rights")
    await apply_identity(ctx, user, given)
    if is_admin is not None:
        user.is_admin = is_admin
    if password is not None:
        user.password_hash = await passwords.hash(password)
        user.password_changed_at = ctx.now
        await accounts.revoke_user_sessions(ctx.db, user.id, ctx.now, "password_reset_by_admin")
    user.updated_at = ctx.now
    await ctx.db.flush()
    return admin_user_out(user)


async def delete_user(ctx: Context, user_id: uuid.UUID) -> None:
    if user_id == ctx.user_id:
        raise Conflict("you cannot delete your own account from the admin page")
    await _user(ctx, user_id)
    await ctx.db.execute(delete(User).where(User.id == user_id))
    accounts.sessions_ended(ctx.db, user_id=user_id, reason="account_deleted")


async def reset_database(ctx: Context) -> ResetOut:
    """Delete every row of every table except the caller's account (DEBUG only; the route checks)."""
    found = [t.name for t in Base.metadata.sorted_tables]
    cleared: list[str] = []
    for table in reversed(Base.metadata.sorted_tables):
        if table.name in _ACCOUNT_TABLES:
            continue
        await ctx.db.execute(table.delete())
        cleared.append(table.name)
    # The other accounts go last; their sessions and preferences cascade with them.
    await ctx.db.execute(delete(User).where(User.id != ctx.user_id))
    cleared.append(f"{User.__tablename__} (all but {ctx.user.email})")
    return ResetOut(status="Database reset successfully", tables_cleared=cleared, tables_found=found)
