"""Topic names: `event:<id>`, `live:<id>`, `user:<id>`; and `sessions`, which only instances listen to."""

from __future__ import annotations

import uuid

# Sign-in sessions that ended (logout, revocation, password change, account deletion): every instance listens
# and closes the sockets of those sessions. Clients cannot join it (the protocol accepts only the three kinds).
SESSIONS = "sessions"


def for_event(event_id: uuid.UUID) -> str:
    return f"event:{event_id}"


def for_live(context_id: uuid.UUID) -> str:
    return f"live:{context_id}"


def for_user(user_id: uuid.UUID) -> str:
    return f"user:{user_id}"


def is_durable(topic: str) -> bool:
    """Event and user topics live in the database's log: every committed change, sequenced in its transaction.
    Live AI topics are sequenced by the hub: their deltas come too fast for a database write each, and what
    lasts of them (the answer) is stored as a message row."""
    return topic.startswith(("event:", "user:"))
