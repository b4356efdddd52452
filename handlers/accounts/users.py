"""Users as others see them and as they see themselves."""

from __future__ import annotations

import uuid
from typing import Any

from handlers.links import ServedLink
from handlers.schema import UTC, Out
from persistence.models import User


class UserBrief(Out):
    id: uuid.UUID
    name: str
    handle: str
    profile_image: ServedLink = None


class UserOut(Out):
    """A user's own view (and an admin's). Never carries the password hash."""

    id: uuid.UUID
    email: str | None
    name: str
    handle: str
    profile_image: ServedLink
    bio: str | None
    user_metadata: dict[str, Any]
    is_guest: bool
    guest_role: str | None
    is_admin: bool
    created_at: UTC
    updated_at: UTC | None


def brief(user: User) -> UserBrief:
    return UserBrief(id=user.id, name=user.name, handle=user.handle, profile_image=user.profile_image)


def user_out(user: User, *, viewer: User | None = None) -> UserOut:
    """Other users' emails stay private unless the viewer is the user or an admin."""
    show_email = viewer is None or viewer.id == user.id or viewer.is_admin
    return UserOut(
        id=user.id, email=user.email if show_email else None, name=user.name, handle=user.handle,
        profile_image=user.profile_image, bio=user.bio, user_metadata=dict(user.user_metadata or {}),
        is_guest=user.is_guest, guest_role=user.guest_role, is_admin=user.is_admin,
        created_at=user.created_at, updated_at=user.updated_at,
    )
