"""A user's own profile (partial updates, account deletion) and looking other users up.

Partial-update contract (the original wrote NULL into every field the client left out, locking users out
by erasing their email): only the fields present in the request change.
- `name`, `handle`, `email` can be changed but never cleared (explicit null → 422);
- `bio`, `profileImage` can be cleared with an explicit null;
- `metadata` (`user_metadata`/`userMetadata`) is merged by top-level key: keys the client sent replace the
  stored ones (inner values kept exactly as sent), keys it did not send are kept; a key sent as null is removed;
- `password` changes only together with `currentPassword` (checked); otherwise the whole update is refused
  with 422 pointing at /settings/change-password, so a stolen token cannot change the password.
"""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import AliasChoices, EmailStr, Field, field_validator
from sqlalchemy import delete, func, or_, select

from adapters.security import Passwords
from handlers.accounts.sessions import HANDLE_RE, MIN_PASSWORD, normalize_email, revoke_user_sessions, sessions_ended
from handlers.accounts.users import UserOut, user_out
from handlers.context import Context
from handlers.links import OptionalLink
from handlers.schema import In, PageQuery, metadata_field
from persistence.errors import BadRequest, Conflict, Invalid, NotFound
from persistence.models import Collection, User

NOT_NULL = ("name", "handle", "email")


def check_handle(value: str | None) -> str | None:
    if value is not None and not HANDLE_RE.match(value):
        raise ValueError("handle may contain letters, digits, '_', '.' and '-' (2-50 characters)")
    return value


class IdentityChange(In):
    """The identity fields a user (or an admin, for anyone) may change."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    """the name shown to others"""
    handle: str | None = Field(default=None, min_length=2, max_length=50)
    """the unique @handle: letters, digits, '_', '.' and '-'"""
    email: EmailStr | None = None
    """the sign-in email (unique)"""
    bio: str | None = Field(default=None, max_length=5000)
    """a short text about the person"""
    profile_image: OptionalLink = None
    """an http(s) or /uploads/ link to the profile picture; null removes it"""

    _handle = field_validator("handle")(check_handle)


class ProfileUpdate(IdentityChange):
    metadata: dict[str, Any] | None = metadata_field("user")
    """free-form JSON kept as sent (also accepted as `userMetadata`)"""
    password: str | None = Field(default=None, max_length=256)
    """a new password; needs `currentPassword`"""
    current_password: str | None = Field(default=None, max_length=256)
    """the password in use now, required with `password`"""


class UserQuery(PageQuery):
    query: str | None = Field(default=None, max_length=200,
                              validation_alias=AliasChoices("query", "search", "q"))
    """text to match in names and handles (also accepted as `search` or `q`)"""


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def apply_identity(ctx: Context, user: User, given: dict[str, Any]) -> None:
    """Apply the sent identity fields to `user`, checking uniqueness of email and handle (→ 409)."""
    for name in NOT_NULL:
        if name in given and given[name] is None:
            raise Invalid(f"{name} cannot be empty")
    if "email" in given:
        email = normalize_email(str(given["email"]))
        if email != user.email:
            taken = await ctx.db.scalar(
                select(User.id).where(func.lower(User.email) == email, User.id != user.id))
            if taken:
                raise Conflict("an account with this email already exists")
            user.email = email
    if "handle" in given:
        handle = given["handle"]
        if handle != user.handle:
            taken = await ctx.db.scalar(
                select(User.id).where(func.lower(User.handle) == handle.lower(), User.id != user.id))
            if taken:
                raise Conflict("this handle is taken")
            user.handle = handle
    if "name" in given:
        user.name = given["name"]
    if "bio" in given:
        user.bio = given["bio"]
    if "profile_image" in given:
        user.profile_image = given["profile_image"]


def merge_metadata(stored: dict[str, Any] | None, sent: dict[str, Any]) -> dict[str, Any]:
    merged = dict(stored or {})
    for key, value in sent.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


async def update_profile(ctx: Context, passwords: Passwords, data: ProfileUpdate,
                         session_id: uuid.UUID | None = None) -> UserOut:
    user = ctx.user
    given = data.given()
    new_password = given.pop("password", None) or None
    current = given.pop("current_password", None)
    if new_password is not None:
        if not current:
            raise Invalid("to change the password send currentPassword as well, "
                          "or use POST /settings/change-password")
        if len(new_password) < MIN_PASSWORD:
            raise Invalid(f"the new password needs at least {MIN_PASSWORD} characters")
        if not await passwords.verify(user.password_hash, current):
            raise BadRequest("current password is incorrect")
    await apply_identity(ctx, user, given)
    if given.get("metadata") is not None:
        # A new dict object, so the JSON column is seen as changed.
        user.user_metadata = merge_metadata(user.user_metadata, given["metadata"])
    if new_password is not None:
        user.password_hash = await passwords.hash(new_password)
        user.password_changed_at = ctx.now
        await revoke_user_sessions(ctx.db, user.id, ctx.now, "password_changed", keep=session_id)
    user.updated_at = ctx.now
    await ctx.db.flush()
    return user_out(user, viewer=user)


async def list_users(ctx: Context, q: UserQuery) -> list[UserOut]:
    """Everyone, optionally matching name or handle; other users' emails are not shown."""
    offset, limit = q.window(ctx.limits.max_page_size)
    stmt = select(User)
    if q.query:
        pattern = f"%{_escape_like(q.query.lower())}%"
        stmt = stmt.where(or_(func.lower(User.name).like(pattern, escape="\\"),
                              func.lower(User.handle).like(pattern, escape="\\")))
    rows = (await ctx.db.scalars(stmt.order_by(func.lower(User.name), User.id).offset(offset).limit(limit))).all()
    return [user_out(u, viewer=ctx.user) for u in rows]


async def get_user(ctx: Context, user_id: uuid.UUID) -> UserOut:
    user = await ctx.db.get(User, user_id)
    if user is None:
        raise NotFound("user", user_id)
    return user_out(user, viewer=ctx.user)


async def get_user_by_handle(ctx: Context, handle: str) -> UserOut:
    user = await ctx.db.scalar(select(User).where(func.lower(User.handle) == handle.strip().lower()))
    if user is None:
        raise NotFound("user", handle)
    return user_out(user, viewer=ctx.user)


async def delete_account(ctx: Context) -> None:
    """Remove the caller. The database cascades their sessions, preferences, posts, notifications, reports
    and live contexts; things others may share (events, processes, directories) keep existing without a
    creator. Their private market copies are removed too: nobody else could ever see them."""
    user_id = ctx.user_id
    await ctx.db.execute(delete(Collection).where(Collection.created_by_id == user_id,
                                                  Collection.is_library.is_(False)))
    await ctx.db.execute(delete(User).where(User.id == user_id))
    sessions_ended(ctx.db, user_id=user_id, reason="account_deleted")
