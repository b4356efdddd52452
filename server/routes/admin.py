"""REST routes: admin — user management, seeding, the DEBUG-only reset."""

from __future__ import annotations

from handlers import seed
from handlers.accounts import admin
from handlers.accounts.admin import AdminUserCreate, AdminUserOut, AdminUserUpdate, ResetOut
from handlers.schema import Out, PageQuery
from persistence.errors import Forbidden, Unauthorized
from server.routing import ApiRouter, Call

router = ApiRouter("admin")


class InitOut(Out):
    success: bool
    message: str
    actions: list[str]
    errors: list[str]


def require_admin_unless_debug(call: Call) -> None:
    """Seeding routes: open while DEBUG is on (a fresh development database has no admin yet);
    otherwise only for a signed-in administrator."""
    if call.state.settings.debug:
        return
    if call._ctx is None:
        raise Unauthorized("Not authenticated")
    if not call._ctx.user.is_admin:
        raise Forbidden("administrators only")


async def seed_library(call: Call) -> InitOut:
    require_admin_unless_debug(call)
    actions = await seed.initialize_library(call.db)
    message = "; ".join(actions) if actions else "the library is already initialized"
    return InitOut(success=True, message=message, actions=actions, errors=[])


@router.get("/admin/users", admin=True)
async def list_users(call: Call[None, PageQuery]) -> list[AdminUserOut]:
    """All users (`skip`, `limit`)."""
    return await admin.list_users(call.ctx, call.query)


@router.get("/admin/users/{user_id}", admin=True)
async def get_user(call: Call) -> AdminUserOut:
    """One user."""
    return await admin.get_user(call.ctx, call.id("user_id"))


@router.post("/admin/users", status=201, admin=True)
async def create_user(call: Call[AdminUserCreate]) -> AdminUserOut:
    """Create a user (profile image, bio and admin flag included)."""
    return await admin.create_user(call.ctx, call.state.passwords, call.body)


@router.put("/admin/users/{user_id}", admin=True,
            extra_methods=("PATCH",))
async def update_user(call: Call[AdminUserUpdate]) -> AdminUserOut:
    """Change a user: only the fields sent (a new `password` signs them out everywhere)."""
    return await admin.update_user(call.ctx, call.state.passwords, call.id("user_id"), call.body)


@router.delete("/admin/users/{user_id}", admin=True)
async def delete_user(call: Call) -> None:
    """Delete a user (not yourself)."""
    await admin.delete_user(call.ctx, call.id("user_id"))


@router.post("/admin/initialize", auth=False)
async def initialize(call: Call) -> InitOut:
    """Seed the admin account, topics and the market library (idempotent; DEBUG or an admin)."""
    require_admin_unless_debug(call)
    s = call.state.settings
    spec = seed.AdminSpec(email=s.admin_email, password=s.admin_password or None, debug=s.debug)
    report = await seed.initialize(call.db, call.state.passwords, spec)
    actions = list(report.actions)
    if report.generated_password:
        actions.append(f"admin password (shown once, store it now): {report.generated_password}")
    message = "; ".join(report.actions) if report.actions else "already initialized"
    return InitOut(success=True, message=message, actions=actions, errors=[])


@router.post("/admin/initialize-library", auth=False)
async def initialize_library(call: Call) -> InitOut:
    """Seed the market library collections (idempotent; DEBUG or an admin)."""
    return await seed_library(call)


@router.post("/admin/reset", admin=True)
async def reset(call: Call) -> ResetOut:
    """Delete all data except my own account (administrators, and only while DEBUG is on)."""
    if not call.state.settings.debug:
        raise Forbidden("the reset is only available when DEBUG is on")
    return await admin.reset_database(call.ctx)
