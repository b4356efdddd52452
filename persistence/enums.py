"""The value sets of the domain, defined once and shared by the database, the API and the protocol."""

from __future__ import annotations

from enum import StrEnum


class EventStatus(StrEnum):
    PENDING = "Pending"
    PLANNING = "Planning"
    EXECUTION = "Execution"
    REVIEW = "Review"
    ADMINISTRATIVE = "Administrative"
    DONE = "Done"


class ParticipantStatus(StrEnum):
    INVITED = "invited"
    CONFIRMED = "confirmed"
    DECLINED = "declined"
    ATTENDED = "attended"


class MediaType(StrEnum):
    VIDEO = "video"
    IMAGE = "image"
    AUDIO = "audio"
    QUOTE = "quote"
    EVENT = "event"


class MediaStatus(StrEnum):
    PROCESSING = "processing"
    READY = "ready"
    FAILED = "failed"


class NotificationType(StrEnum):
    # The original's database enum and API enum disagreed; this is their union, used by both.
    MENTION = "mention"
    COMMENT = "comment"
    EVENT_INVITE = "event_invite"
    EVENT_REMINDER = "event_reminder"
    EVENT_UPDATE = "event_update"
    NEW_MESSAGE = "new_message"
    SYSTEM = "system"
    FOLLOW = "follow"
    MESSAGE = "message"
    TASK = "task"


class Visibility(StrEnum):
    PUBLIC = "public"
    PRIVATE = "private"
    TEAM = "team"


class ReportType(StrEnum):
    WEEKLY = "weekly"
    QUARTERLY = "quarterly"
    YEARLY = "yearly"


class Theme(StrEnum):
    LIGHT = "light"
    DARK = "dark"
    SYSTEM = "system"


class LiveRole(StrEnum):
    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"


class GuestRole(StrEnum):
    DEV = "dev"
    PM = "pm"
    DESIGNER = "designer"
    OPS = "ops"
    INTERN = "intern"
    LEADERSHIP = "leadership"
