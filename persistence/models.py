"""The ORM models: every table of the original Convers.me schema, fixed, plus accounts and live messages."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Enum,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from persistence.enums import (
    EventStatus,
    LiveRole,
    MediaStatus,
    MediaType,
    NotificationType,
    ParticipantStatus,
)
from persistence.types import JSONType, UTCDateTime, utcnow

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def enum_column(cls: type[StrEnum], name: str) -> Enum:
    # A VARCHAR with a CHECK constraint: the same definition on SQLite and PostgreSQL, and adding a
    # value is a plain migration rather than an ALTER TYPE outside a transaction.
    return Enum(cls, name=name, native_enum=False, create_constraint=True, length=32,
                values_callable=lambda e: [m.value for m in e], validate_strings=True)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSONType, list[Any]: JSONType}


class Timestamped:
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(default=None, onupdate=utcnow)


def fk(target: str, ondelete: str, nullable: bool = True, index: bool = True) -> Any:
    return mapped_column(Uuid, ForeignKey(target, ondelete=ondelete), nullable=nullable, index=index)


class User(Timestamped, Base):
    __tablename__ = "users"
    name: Mapped[str] = mapped_column(String(200))
    handle: Mapped[str] = mapped_column(String(100), unique=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    profile_image: Mapped[str | None] = mapped_column(String(1000))
    bio: Mapped[str | None] = mapped_column(Text)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    user_metadata: Mapped[dict[str, Any]] = mapped_column(default=dict)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    is_guest: Mapped[bool] = mapped_column(Boolean, default=False)
    guest_role: Mapped[str | None] = mapped_column(String(32))
    guest_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    password_changed_at: Mapped[datetime | None] = mapped_column(default=None)


class AuthSession(Base):
    """One sign-in: a refresh-token family. Revoking it ends its access tokens too (they carry `sid`)."""

    __tablename__ = "auth_sessions"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = fk("users.id", "CASCADE", nullable=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_reason: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))
    ip: Mapped[str | None] = mapped_column(String(64))


class RefreshToken(Base):
    __tablename__ = "refresh_tokens"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    session_id: Mapped[uuid.UUID] = fk("auth_sessions.id", "CASCADE", nullable=False)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column(default=None)


class UserPreferences(Timestamped, Base):
    __tablename__ = "user_preferences"
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    theme: Mapped[str] = mapped_column(String(16), default="system")
    email_notifications: Mapped[bool] = mapped_column(Boolean, default=True)
    push_notifications: Mapped[bool] = mapped_column(Boolean, default=True)
    time_zone: Mapped[str] = mapped_column(String(64), default="UTC")
    language: Mapped[str] = mapped_column(String(16), default="en")
    reminder_minutes: Mapped[int] = mapped_column(Integer, default=15)
    additional_settings: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Topic(Timestamped, Base):
    __tablename__ = "topics"
    name: Mapped[str] = mapped_column(String(100), unique=True)
    category: Mapped[str | None] = mapped_column(String(100), index=True)
    color: Mapped[str | None] = mapped_column(String(32))


class Collection(Timestamped, Base):
    __tablename__ = "collections"
    title: Mapped[str] = mapped_column(String(300), index=True)
    description: Mapped[str | None] = mapped_column(Text)
    saves: Mapped[int] = mapped_column(Integer, default=0)
    collection_metadata: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Library collections are public; a user's saved copy points at the library one it came from.
    is_library: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    source_id: Mapped[uuid.UUID | None] = fk("collections.id", "SET NULL")
    created_by_id: Mapped[uuid.UUID | None] = fk("users.id", "SET NULL")


class Directory(Timestamped, Base):
    __tablename__ = "directories"
    name: Mapped[str] = mapped_column(String(200), index=True)
    description: Mapped[str | None] = mapped_column(Text)
    color: Mapped[str | None] = mapped_column(String(32))
    icon: Mapped[str | None] = mapped_column(String(64))
    directory_metadata: Mapped[dict[str, Any]] = mapped_column(default=dict)
    is_template: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by_id: Mapped[uuid.UUID | None] = fk("users.id", "SET NULL")
    parent_id: Mapped[uuid.UUID | None] = fk("directories.id", "SET NULL")
    collection_id: Mapped[uuid.UUID | None] = fk("collections.id", "SET NULL")


class Process(Timestamped, Base):
    __tablename__ = "processes"
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str | None] = mapped_column(Text)
    color: Mapped[str | None] = mapped_column(String(32))
    favorite: Mapped[bool] = mapped_column(Boolean, default=False)
    category: Mapped[str | None] = mapped_column(String(100), index=True)
    process_metadata: Mapped[dict[str, Any]] = mapped_column(default=dict)
    is_template: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    last_updated: Mapped[datetime | None] = mapped_column(default=utcnow)
    created_by_id: Mapped[uuid.UUID | None] = fk("users.id", "SET NULL")
    directory_id: Mapped[uuid.UUID | None] = fk("directories.id", "SET NULL")
    template_id: Mapped[uuid.UUID | None] = fk("processes.id", "SET NULL")
    steps: Mapped[list[Step]] = relationship(
        back_populates="process", order_by="Step.order", cascade="all, delete-orphan", passive_deletes=True
    )


class Step(Timestamped, Base):
    __tablename__ = "steps"
    content: Mapped[str] = mapped_column(Text)
    completed: Mapped[bool] = mapped_column(Boolean, default=False)
    completed_at: Mapped[datetime | None] = mapped_column(default=None)
    order: Mapped[int] = mapped_column(Integer, index=True)
    due_date: Mapped[str | None] = mapped_column(String(40))
    process_id: Mapped[uuid.UUID] = fk("processes.id", "CASCADE", nullable=False)
    process: Mapped[Process] = relationship(back_populates="steps")
    sub_steps: Mapped[list[SubStep]] = relationship(
        back_populates="step", order_by="SubStep.order", cascade="all, delete-orphan", passive_deletes=True
    )


class SubStep(Timestamped, Base):
    __tablename__ = "sub_steps"
    content: Mapped[str] = mapped_column(Text)
    completed: Mapped[bool] = mapped_column(Boolean, default=False)
    completed_at: Mapped[datetime | None] = mapped_column(default=None)
    order: Mapped[int] = mapped_column(Integer, index=True)
    step_id: Mapped[uuid.UUID] = fk("steps.id", "CASCADE", nullable=False)
    step: Mapped[Step] = relationship(back_populates="sub_steps")


class Event(Timestamped, Base):
    """A time block; `start_time`/`end_time` are the one source of truth (date/time/duration are derived)."""

    __tablename__ = "events"
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str | None] = mapped_column(Text)
    start_time: Mapped[datetime] = mapped_column(index=True)
    end_time: Mapped[datetime] = mapped_column(index=True)
    status: Mapped[EventStatus] = mapped_column(
        enum_column(EventStatus, "event_status"), default=EventStatus.PENDING, index=True
    )
    complexity: Mapped[int | None] = mapped_column(Integer)
    color: Mapped[str | None] = mapped_column(String(32))
    location: Mapped[str | None] = mapped_column(String(300))
    recording_url: Mapped[str | None] = mapped_column(String(1000))
    event_metadata: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_by_id: Mapped[uuid.UUID | None] = fk("users.id", "SET NULL")
    process_id: Mapped[uuid.UUID | None] = fk("processes.id", "SET NULL")


class EventTopic(Base):
    __tablename__ = "event_topics"
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("events.id", ondelete="CASCADE"), primary_key=True)
    topic_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("topics.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class EventParticipant(Base):
    __tablename__ = "event_participants"
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("events.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[str] = mapped_column(String(40), default="participant")
    status: Mapped[ParticipantStatus] = mapped_column(
        enum_column(ParticipantStatus, "participant_status"), default=ParticipantStatus.INVITED
    )
    joined_at: Mapped[datetime] = mapped_column(default=utcnow)


class StatusLog(Timestamped, Base):
    __tablename__ = "status_logs"
    previous_status: Mapped[EventStatus | None] = mapped_column(enum_column(EventStatus, "prev_status"))
    new_status: Mapped[EventStatus] = mapped_column(enum_column(EventStatus, "new_status"), index=True)
    event_id: Mapped[uuid.UUID] = fk("events.id", "CASCADE", nullable=False)
    user_id: Mapped[uuid.UUID | None] = fk("users.id", "SET NULL")


class Post(Timestamped, Base):
    __tablename__ = "posts"
    content: Mapped[str] = mapped_column(Text)
    visibility: Mapped[str] = mapped_column(String(16), default="public", index=True)
    # The original had NOT NULL with ON DELETE SET NULL; a post goes with its author.
    author_id: Mapped[uuid.UUID] = fk("users.id", "CASCADE", nullable=False)
    event_id: Mapped[uuid.UUID | None] = fk("events.id", "CASCADE")


class Media(Timestamped, Base):
    __tablename__ = "media"
    type: Mapped[MediaType] = mapped_column(enum_column(MediaType, "media_type"), index=True)
    title: Mapped[str | None] = mapped_column(String(300))
    url: Mapped[str] = mapped_column(String(1000))
    storage_key: Mapped[str | None] = mapped_column(String(300))
    duration: Mapped[str | None] = mapped_column(String(32))
    aspect_ratio: Mapped[str | None] = mapped_column(String(32))
    mime_type: Mapped[str | None] = mapped_column(String(100))
    thumbnail_url: Mapped[str | None] = mapped_column(String(1000))
    file_size: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[MediaStatus] = mapped_column(enum_column(MediaStatus, "media_status"), default=MediaStatus.READY)
    media_metadata: Mapped[dict[str, Any]] = mapped_column(default=dict)
    post_id: Mapped[uuid.UUID | None] = fk("posts.id", "CASCADE")
    event_id: Mapped[uuid.UUID | None] = fk("events.id", "CASCADE")
    created_by_id: Mapped[uuid.UUID | None] = fk("users.id", "SET NULL")


class Notification(Timestamped, Base):
    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_user_read", "user_id", "read"),)
    type: Mapped[NotificationType] = mapped_column(enum_column(NotificationType, "notification_type"), index=True)
    title: Mapped[str] = mapped_column(String(300))
    message: Mapped[str] = mapped_column(Text)
    link: Mapped[str | None] = mapped_column(String(1000))
    read: Mapped[bool] = mapped_column(Boolean, default=False)
    reference_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    reference_type: Mapped[str | None] = mapped_column(String(40))
    notification_metadata: Mapped[dict[str, Any]] = mapped_column(default=dict)
    user_id: Mapped[uuid.UUID] = fk("users.id", "CASCADE", nullable=False, index=False)
    sender_id: Mapped[uuid.UUID | None] = fk("users.id", "SET NULL")


class Report(Timestamped, Base):
    __tablename__ = "reports"
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str | None] = mapped_column(Text)
    file_url: Mapped[str] = mapped_column(String(1000))
    storage_key: Mapped[str | None] = mapped_column(String(300))
    report_type: Mapped[str] = mapped_column(String(16), index=True)
    date_range: Mapped[str | None] = mapped_column(String(64))
    year: Mapped[int | None] = mapped_column(Integer, index=True)
    quarter: Mapped[int | None] = mapped_column(Integer)
    week: Mapped[int | None] = mapped_column(Integer)
    size: Mapped[int | None] = mapped_column(Integer)
    report_metadata: Mapped[dict[str, Any]] = mapped_column(default=dict)
    user_id: Mapped[uuid.UUID] = fk("users.id", "CASCADE", nullable=False)
    # One report per user, type and period: regenerating a period replaces it (jobs may be redelivered).
    __table_args__ = (UniqueConstraint("user_id", "report_type", "date_range", name="uq_reports_user_period"),)


class LiveContext(Timestamped, Base):
    """A live AI session. Its messages are rows of `live_messages`, not a mutated JSON list."""

    __tablename__ = "live_contexts"
    live_context_metadata: Mapped[dict[str, Any]] = mapped_column(default=dict)
    user_id: Mapped[uuid.UUID] = fk("users.id", "CASCADE", nullable=False)
    process_id: Mapped[uuid.UUID | None] = fk("processes.id", "SET NULL")
    event_id: Mapped[uuid.UUID | None] = fk("events.id", "SET NULL")
    template_id: Mapped[uuid.UUID | None] = fk("processes.id", "SET NULL")


class LiveMessage(Base):
    __tablename__ = "live_messages"
    __table_args__ = (UniqueConstraint("context_id", "seq", name="uq_live_messages_context_seq"),)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    context_id: Mapped[uuid.UUID] = fk("live_contexts.id", "CASCADE", nullable=False)
    seq: Mapped[int] = mapped_column(Integer)
    role: Mapped[LiveRole] = mapped_column(enum_column(LiveRole, "live_role"))
    content: Mapped[str] = mapped_column(Text)
    author_id: Mapped[uuid.UUID | None] = fk("users.id", "SET NULL")
    message_metadata: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ChatMessage(Base):
    """A chat line in an event room; stored so a reconnecting member can read what they missed."""

    __tablename__ = "chat_messages"
    __table_args__ = (Index("ix_chat_messages_event_created", "event_id", "created_at"),)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    event_id: Mapped[uuid.UUID] = fk("events.id", "CASCADE", nullable=False, index=False)
    author_id: Mapped[uuid.UUID | None] = fk("users.id", "SET NULL")
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Reminder(Base):
    """One participant's reminder of one event at one due time. Sent at most once (`sent_at`); a scheduler
    claims due rows (`claimed_by`/`claimed_at`, a lease) so that two schedulers never both enqueue one."""

    __tablename__ = "reminders"
    __table_args__ = (
        UniqueConstraint("event_id", "user_id", "due_at", name="uq_reminders_event_user_due"),
        Index("ix_reminders_pending", "sent_at", "due_at"),
    )
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    event_id: Mapped[uuid.UUID] = fk("events.id", "CASCADE", nullable=False, index=False)
    user_id: Mapped[uuid.UUID] = fk("users.id", "CASCADE", nullable=False)
    due_at: Mapped[datetime] = mapped_column()
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    claimed_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class JobKey(Base):
    """Idempotency keys of background jobs: a job's effect and its key commit together, so a redelivered
    job finds the key and does nothing."""

    __tablename__ = "job_keys"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    task: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class DeadLetter(Base):
    """A job that failed after its retries (or could not be enqueued at all); admins can retry it."""

    __tablename__ = "dead_letters"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    task_name: Mapped[str] = mapped_column(String(200), index=True)
    task_id: Mapped[str | None] = mapped_column(String(64))
    kwargs: Mapped[dict[str, Any]] = mapped_column(default=dict)
    reason: Mapped[str] = mapped_column(String(32))  # failed | poison | enqueue_failed
    error: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    retried_at: Mapped[datetime | None] = mapped_column(default=None)
    retried_by_id: Mapped[uuid.UUID | None] = fk("users.id", "SET NULL")


class TopicHead(Base):
    """The durable log's head per topic: the last offset handed out and the topic's epoch. A writer takes this
    row's lock when it appends, so offsets follow commit order and a committed offset has no hole before it."""

    __tablename__ = "topic_heads"
    topic: Mapped[str] = mapped_column(String(200), primary_key=True)
    epoch: Mapped[str] = mapped_column(String(32))
    head: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(index=True)


class JobHandoff(Base):
    """A job a committed change asked for, written in the change's transaction: enqueued right after the commit
    and deleted then; a row still here later (its instance died, the queue was away) is enqueued by any
    instance's relay. Jobs are idempotent, so a relay racing the first attempt costs nothing."""

    __tablename__ = "job_handoffs"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    task: Mapped[str] = mapped_column(String(200))
    kwargs: Mapped[dict[str, Any]] = mapped_column(default=dict)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column()
    available_at: Mapped[datetime] = mapped_column(index=True)  # when a relay may take it (a lease once taken)


class TopicEntry(Base):
    """One committed message of a topic's log, its wire frame as every subscriber receives it."""

    __tablename__ = "topic_log"
    topic: Mapped[str] = mapped_column(String(200), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    frame: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(index=True)
