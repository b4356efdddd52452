"""What every handler receives (the caller's session, identity and clock) and what it returns."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, NamedTuple, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from channels.messages import LeftReason
from persistence.models import User

T = TypeVar("T")


@dataclass(frozen=True)
class Limits:
    """Values handlers need from the settings, handed down by the caller (handlers never read settings)."""

    max_page_size: int = 200
    max_upload_bytes: int = 25 * 1024 * 1024
    debug: bool = False


@dataclass
class Context:
    """One unit of work for one caller. The caller opens and commits `db`; handlers only use it."""

    db: AsyncSession
    user: User
    now: datetime
    limits: Limits = field(default_factory=Limits)

    @property
    def user_id(self) -> uuid.UUID:
        return self.user.id


@dataclass(frozen=True)
class Message:
    """A change to announce on a topic once the transaction has committed."""

    topic: str
    event: str
    data: Any


_AFTER_COMMIT = "conversme.after_commit"


def announce_after_commit(db: AsyncSession | Session, message: Message) -> None:
    """Announce `message` once `db`'s transaction commits, from code deep below any Outcome (ending a sign-in
    session happens in six places): the unit of work that owns `db` publishes it with its own outcome."""
    db.info.setdefault(_AFTER_COMMIT, []).append(message)


def take_after_commit(db: AsyncSession) -> list[Message]:
    return list(db.info.pop(_AFTER_COMMIT, []))


class JobCall(NamedTuple):
    """A job asked for (built by its entry in handlers.catalogue): its registered name and keyword arguments."""

    task: str
    kwargs: dict[str, Any]


@dataclass(frozen=True)
class Removal:
    """After commit, take `user_id`'s connections (None: everyone's) off `topic`; they receive `left`."""

    topic: str
    user_id: uuid.UUID | None
    reason: LeftReason


@dataclass(frozen=True)
class Recorded:
    """Messages of one durable topic, appended to the database's log in the change's transaction: after the
    commit they are fanned out as they are (offsets and frames fixed)."""

    topic: str
    epoch: str
    entries: tuple[tuple[int, str], ...]  # (offset, frame)


@dataclass
class Outcome(Generic[T]):
    """A handler's result: the value for the caller, and what to announce after commit. The unit of work moves
    the messages of durable topics from `publish` into `recorded` inside the transaction (handlers.recording)."""

    value: T
    publish: list[Message] = field(default_factory=list)
    remove: list[Removal] = field(default_factory=list)
    enqueue: list[JobCall] = field(default_factory=list)
    recorded: list[Recorded] = field(default_factory=list)
    handoffs: list[uuid.UUID] = field(default_factory=list)  # the `enqueue` items' rows in job_handoffs, in order
