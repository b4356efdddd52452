"""Signed-in callers without a database round trip: the instance remembers, for a few seconds, that a sign-in
session stands and what its user's row holds.

Authentication was two lookups (the user, the session) on every request and every socket's `auth` — about
a millisecond of CPU, most of a step toggle's. Here a hit costs an object built from the remembered row and
attached to the request's session without a query, so handlers use it as if they had loaded it.

What keeps it honest: every change that matters is announced on the `sessions` topic after its commit — a
session ended (server.session_watch), a user row changed (`user.changed`, from `watch_user_changes`) — and
every instance forgets the entries it names. The instance that made the change forgets them before it even
publishes. An announcement lost to a Redis outage is bounded by the entry's lifetime (`AUTH_CACHE_SECONDS`,
default 10; 0 turns the cache off).
"""

from __future__ import annotations

import copy
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session, make_transient_to_detached

from channels import topics
from handlers import catalogue
from handlers.context import Message, announce_after_commit
from persistence.models import User

USER_COLUMNS = tuple(attr.key for attr in User.__mapper__.column_attrs)
_USERS = User.__mapper__.class_manager


def user_from_row(row: dict[str, Any]) -> User:
    """A detached user from its row (every column of USER_COLUMNS), as if loaded: the values go straight into the
    instance's dict, as the ORM's loading does — no change history to record and then reset (User(**row) cost
    ~35 µs, this ~13 µs). JSON values are copied: the row stays as it was whatever the user's holder changes."""
    user: User = _USERS.new_instance()
    user.__dict__.update({key: copy.deepcopy(value) if isinstance(value, dict | list) else value
                          for key, value in row.items()})
    make_transient_to_detached(user)
    return user


@dataclass(frozen=True)
class _Entry:
    user_id: uuid.UUID
    row: dict[str, Any]
    session_expires_at: datetime
    fresh_until: float


class AuthCache:
    def __init__(self, seconds: float, capacity: int = 20_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._capacity = capacity
        self._clock = clock
        self._entries: OrderedDict[uuid.UUID, _Entry] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def user(self, session_id: uuid.UUID, user_id: uuid.UUID, now: datetime) -> User | None:
        """A detached copy of the remembered user of a session that still stands, or None."""
        entry = self._entries.get(session_id)
        if entry is not None and (entry.fresh_until <= self._clock() or entry.session_expires_at <= now):
            del self._entries[session_id]
            entry = None
        if entry is None or entry.user_id != user_id:
            self.misses += 1
            return None
        self.hits += 1
        # A copy per request: a handler may change its user (and its JSON) without touching the remembered row.
        return user_from_row(entry.row)

    def remember(self, session_id: uuid.UUID, user: User, session_expires_at: datetime) -> None:
        if self.seconds > 0:
            loaded = user.__dict__  # a loaded user holds every column here: no attribute machinery per column
            self.remember_row(session_id, {key: loaded[key] if key in loaded else getattr(user, key)
                                           for key in USER_COLUMNS}, session_expires_at)

    def remember_row(self, session_id: uuid.UUID, row: dict[str, Any], session_expires_at: datetime) -> None:
        """Remember a session's user by its row (every column of USER_COLUMNS, as the ORM would load them)."""
        if self.seconds <= 0:
            return
        # Only JSON columns (dicts, lists) can be changed in place; the rest (str, UUID, datetime, bool) are
        # immutable and kept as they are (deepcopy's dispatch on ~20 columns was ~0.03 ms a sign-in).
        row = {key: copy.deepcopy(value) if isinstance(value, dict | list) else value for key, value in row.items()}
        now = self._clock()
        self._entries[session_id] = _Entry(row["id"], row, session_expires_at, now + self.seconds)
        self._entries.move_to_end(session_id)
        # Oldest first, and all live equally long: drop the stale ones from the front, so the cache holds what
        # signed in during the last `seconds` rather than up to `capacity` entries nobody will ask for again.
        while self._entries and (len(self._entries) > self._capacity
                                 or next(iter(self._entries.values())).fresh_until <= now):
            self._entries.popitem(last=False)

    def forget(self, data: dict[str, Any]) -> None:
        """Apply one announcement on the `sessions` topic: a session, or everything of a user."""
        if session_id := data.get("sessionId"):
            self._entries.pop(uuid.UUID(session_id), None)
        if user_id := data.get("userId"):
            gone = uuid.UUID(user_id)
            for key in [k for k, e in self._entries.items() if e.user_id == gone]:
                del self._entries[key]

    def __len__(self) -> int:
        return len(self._entries)


def user_changed(user_id: uuid.UUID) -> Message:
    return catalogue.USER_CHANGED.message(topics.SESSIONS, {"userId": str(user_id)})


@event.listens_for(Session, "before_flush")
def _user_changed(session: Session, flush_context: Any, instances: Any) -> None:
    """Announce `user.changed` after the commit of any transaction that changes or deletes a user through the
    ORM, so that no instance keeps serving the old row: one hook on every session, rather than a call at each
    place that edits a user (profile, password, admin rights). Deleting by statement ends the user's sessions,
    which is announced too (handlers.accounts.sessions.sessions_ended)."""
    for obj in (*session.dirty, *session.deleted):
        if isinstance(obj, User) and (obj in session.deleted or session.is_modified(obj)):
            announce_after_commit(session, user_changed(obj.id))
