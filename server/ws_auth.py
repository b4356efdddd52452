"""Who a socket is: its Origin checked against the allowed ones (CSWSH), its access token verified (from the
upgrade's header or an `auth`/`refresh` frame), the token's wall-clock expiry in the protocol's monotonic time."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from starlette.websockets import WebSocket

from handlers.accounts.auth_cache import user_from_row
from handlers.accounts.sessions import authenticate
from persistence.models import User
from server.state import AppState


def origin_allowed(ws: WebSocket, allowed: tuple[str, ...]) -> bool:
    origin = ws.headers.get("origin")
    if origin is None:
        return True  # not a browser: CSWSH needs a browser
    origin = origin.rstrip("/")
    if origin in allowed:
        return True
    host = ws.headers.get("host", "")
    return urlsplit(origin).netloc == host and bool(host)  # same-origin pages (the console)


async def verify(state: AppState, token: str) -> tuple[User, float, str | None]:
    now = state.clock()
    claims = state.tokens.decode_access(token, now)
    expires_at = claims.expires_at.timestamp()
    if claims.session_id is not None and state.connect_checks is not None:
        # The common case answered from the instance's memory, or in one statement with every socket that
        # authenticates at the same moment; anything else (a refusal) goes the one-at-a-time way below.
        cache = state.auth_cache
        user = cache.user(claims.session_id, claims.user_id, now) if cache is not None else None
        if user is None:
            found = await state.connect_checks.sessions.get((claims.user_id, claims.session_id))
            if found is not None and found[1] > now:
                user = user_from_row(found[0])
                if cache is not None:
                    cache.remember_row(claims.session_id, found[0], found[1])
        if user is not None and not (user.is_guest and user.guest_expires_at is not None
                                     and user.guest_expires_at <= now):
            return user, expires_at, str(claims.session_id)
    async with state.sessionmaker() as db, db.begin():
        user = await authenticate(db, claims, now, state.auth_cache)
    return user, expires_at, str(claims.session_id) if claims.session_id else None



def to_monotonic(wall: float) -> float:
    """A wall-clock expiry in the protocol's monotonic time."""
    return time.monotonic() + (wall - time.time())

