"""REST routes: users — my profile and preferences, looking others up, password reset (not available)."""

from __future__ import annotations

from starlette.responses import RedirectResponse

from handlers.accounts import preferences, profile
from handlers.accounts.preferences import PrefsOut, PrefsUpdate
from handlers.accounts.profile import ProfileUpdate, UserQuery
from handlers.accounts.users import UserOut, user_out
from persistence.errors import NotImplementedFeature
from server.routing import ApiRouter, Call

router = ApiRouter("users")

RESET_UNAVAILABLE = ("password reset by email is not available: this server sends no email. "
                     "Signed-in users can change their password at /settings/change-password; "
                     "otherwise ask an administrator to set a new one.")


@router.get("/users/me", read_only=True)
async def me(call: Call) -> UserOut:
    """The signed-in user."""
    return user_out(call.user, viewer=call.user)


@router.put("/users/me", extra_methods=("PATCH",))
async def update_me(call: Call[ProfileUpdate]) -> UserOut:
    """Update my profile: only the fields sent change (a password change also needs `currentPassword`)."""
    sid = call.claims.session_id if call.claims else None
    return await profile.update_profile(call.ctx, call.state.passwords, call.body, sid)


@router.get("/users", read_only=True)
async def list_users(call: Call[None, UserQuery]) -> list[UserOut]:
    """Users, optionally matching `query` (name or handle); other users' emails are omitted."""
    return await profile.list_users(call.ctx, call.query)


@router.get("/users/me/preferences")
async def my_preferences(call: Call) -> PrefsOut:
    """My preferences (created with defaults on first read)."""
    return await preferences.get_preferences(call.ctx)


@router.put("/users/me/preferences", extra_methods=("PATCH",))
async def update_my_preferences(call: Call[PrefsUpdate]) -> PrefsOut:
    """Update my preferences; `additionalSettings` is merged by key."""
    return await preferences.update_preferences(call.ctx, call.body)


@router.get("/users/preferences")
async def preferences_redirect(call: Call) -> RedirectResponse:
    """Deprecated: redirects to /users/me/preferences."""
    return RedirectResponse("/users/me/preferences", status_code=307)


@router.get("/users/handle/{handle}", read_only=True)
async def user_by_handle(call: Call) -> UserOut:
    """A user by handle."""
    return await profile.get_user_by_handle(call.ctx, call.text("handle"))


@router.get("/users/{user_id}", read_only=True)
async def get_user(call: Call) -> UserOut:
    """A user by id (their email only if it is me, or I am an admin)."""
    return await profile.get_user(call.ctx, call.id("user_id"))


@router.post("/users/reset-password/request", auth=False)
async def reset_password_request(call: Call) -> None:
    """Not available (501): no email delivery is configured."""
    raise NotImplementedFeature(RESET_UNAVAILABLE)


@router.post("/users/reset-password/confirm", auth=False)
async def reset_password_confirm(call: Call) -> None:
    """Not available (501): no email delivery is configured."""
    raise NotImplementedFeature(RESET_UNAVAILABLE)
