"""Topic names: `event:<id>`, `live:<id>`, `user:<id>`."""

from __future__ import annotations

import uuid


def for_event(event_id: uuid.UUID) -> str:
    return f"event:{event_id}"


def for_live(context_id: uuid.UUID) -> str:
    return f"live:{context_id}"


def for_user(user_id: uuid.UUID) -> str:
    return f"user:{user_id}"
