"""REST routes: the settings page — profile, preferences, account deletion.
(Password change and session revocation live in server/routes/auth.py.)"""

from __future__ import annotations

import uuid
from typing import Any

from handlers.accounts import preferences, profile
from handlers.accounts.preferences import PrefsUpdate
from handlers.accounts.profile import ProfileUpdate
from handlers.accounts.users import UserOut
from handlers.links import ServedLink
from handlers.schema import Out
from server.routing import ApiRouter, Call

router = ApiRouter("settings")


class SettingsProfile(Out):
    id: uuid.UUID
    name: str
    email: str
    handle: str
    bio: str | None
    profile_image: ServedLink
    metadata: dict[str, Any]


class SettingsPreferences(Out):
    theme: str
    email_notifications: bool
    push_notifications: bool
    time_zone: str
    language: str
    reminder_minutes: int
    additional_settings: dict[str, Any]


class SettingsOut(Out):
    profile: SettingsProfile
    preferences: SettingsPreferences


@router.get("/settings")
async def get_settings(call: Call) -> SettingsOut:
    """My profile and preferences, for the settings page."""
    ctx = call.ctx
    u = ctx.user
    p = await preferences.get_preferences(ctx)
    return SettingsOut(
        profile=SettingsProfile(id=u.id, name=u.name, email=u.email, handle=u.handle, bio=u.bio,
                                profile_image=u.profile_image, metadata=dict(u.user_metadata or {})),
        preferences=SettingsPreferences(theme=p.theme, email_notifications=p.email_notifications,
                                        push_notifications=p.push_notifications, time_zone=p.time_zone,
                                        language=p.language, reminder_minutes=p.reminder_minutes,
                                        additional_settings=p.additional_settings),
    )


@router.put("/settings/profile", extra_methods=("PATCH",))
async def update_profile(call: Call[ProfileUpdate]) -> UserOut:
    """Update my profile (same rules as PUT /users/me)."""
    sid = call.claims.session_id if call.claims else None
    return await profile.update_profile(call.ctx, call.state.passwords, call.body, sid)


@router.put("/settings/preferences", extra_methods=("PATCH",))
async def update_preferences(call: Call[PrefsUpdate]) -> preferences.PrefsOut:
    """Update my preferences (same as PUT /users/me/preferences)."""
    return await preferences.update_preferences(call.ctx, call.body)


@router.delete("/settings/account")
async def delete_account(call: Call) -> None:
    """Delete my account and the data that is only mine; every sign-in ends."""
    await profile.delete_account(call.ctx)
