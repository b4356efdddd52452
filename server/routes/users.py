"""REST routes: users."""

from __future__ import annotations

from handlers.users import UserOut, user_out
from server.api import ApiRouter, Call

router = ApiRouter("users")


@router.get("/users/me", response=UserOut)
async def me(call: Call) -> UserOut:
    """The signed-in user."""
    return user_out(call.user, viewer=call.user)
