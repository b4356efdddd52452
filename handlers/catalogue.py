"""The catalogue: every event name published into a topic (with the topic kinds it goes to and its payload) and
every job name (with its arguments). Publishers build a `Message` with `<EVENT>.message(topic, payload)` and ask
for a job with `<JOB>.call(args)`, so a misspelt name is an import error and a wrong payload a type error.

docs/asyncapi.yaml (x-events) is checked against `EVENTS` by tests/test_asyncapi.py; the job registrations in
jobs/ against `JOBS` by tests/jobs/test_catalogue.py. It lives in handlers because handlers, jobs and ai/ all
publish or enqueue, and handlers may import none of those (nor the hub).

Payload models are named by dotted path (resolved only by `payload_types`): the modules that publish them
import this one, so importing them here would be circular. The `Event[...]` annotation is what mypy checks
publishers against; the test checks that it names the same classes as the path. (No `from __future__ import
annotations` here: the TypedDicts' `NotRequired` must be seen at runtime, so those annotations are quoted.)"""

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Literal, NotRequired, TypedDict, TypeVar, cast

from pydantic import BaseModel

from handlers.context import JobCall, Message
from handlers.schema import to_wire

if TYPE_CHECKING:
    from handlers.events.chat import ChatMessageOut
    from handlers.events.views import EventOut, ParticipantOut, StatusLogOut
    from handlers.insights.reports import ReportOut
    from handlers.live.contexts import LiveContextOut, LiveMessageOut
    from handlers.media.records import MediaOut
    from handlers.notifications.send import NotificationOut
    from handlers.posts.manage import PostOut
    from handlers.processes.shapes import StepOut, SubStepOut

P = TypeVar("P")
A = TypeVar("A")
TopicKind = Literal["event", "user", "live", "sessions"]


@dataclass(frozen=True)
class Event(Generic[P]):
    """One event name: the topic kinds it is published on, its payload type(s), what it tells."""

    name: str
    kinds: tuple[TopicKind, ...]
    payload: tuple[str, ...]  # dotted paths of the pydantic models / TypedDicts below
    doc: str
    exclude: frozenset[str] = frozenset()  # model fields the wire form leaves out

    def message(self, topic: str, data: P) -> Message:
        # `sessions` has no id; every other topic is `<kind>:<id>`.
        if topic.partition(":")[0] not in self.kinds:
            raise ValueError(f"{self.name} is published on {'/'.join(self.kinds)} topics, not {topic}")
        return Message(topic, self.name, self.data(data))

    def messages(self, topics: list[str], data: P) -> list[Message]:
        """The same payload on several topics, dumped once."""
        wire = self.data(data)
        return [self.message(topic, wire) for topic in topics]

    def data(self, data: P) -> Any:
        """The payload as it goes on the wire (models dumped camelCase, JSON-ready)."""
        if isinstance(data, BaseModel):
            return to_wire(data, exclude=set(self.exclude) or None)
        return data

    def payload_types(self) -> list[type]:
        found = []
        for path in self.payload:
            module, _, attr = path.rpartition(".")
            found.append(getattr(importlib.import_module(module), attr))
        return found


@dataclass(frozen=True)
class Job(Generic[A]):
    """One job name and the TypedDict of its keyword arguments (the job function's parameters after `rt`)."""

    name: str
    args: type[A]
    doc: str

    def call(self, args: A) -> JobCall:
        return JobCall(self.name, dict(cast(Mapping[str, Any], args)))


# ---- payloads built as plain dicts (named as their schemas in docs/asyncapi.yaml) ------------------------


class IdOnly(TypedDict):
    id: str


class ParticipantRef(TypedDict):
    eventId: str
    userId: str


class EventItemRef(TypedDict):
    id: str
    eventId: str


class NotificationsRead(TypedDict):
    ids: list[str]
    read: Literal[True]


class Reminder(TypedDict):
    eventId: str
    reminderId: str
    startTime: str
    dueAt: str
    title: str
    message: str
    notificationId: str


class JobProgress(TypedDict):
    task: str
    progress: float
    mediaId: NotRequired[str]
    stage: NotRequired[str]
    error: NotRequired[str]


class SessionEnded(TypedDict):
    reason: str
    sessionId: str | None
    userId: str | None
    keep: str | None


class UserRef(TypedDict):
    userId: str


class AiStarted(TypedDict):
    streamId: str
    contextId: NotRequired[str]
    promptMessageId: NotRequired[str]
    requestedBy: NotRequired[str]


class AiDelta(TypedDict):
    streamId: str
    index: int
    text: str


class AiCompleted(TypedDict):
    streamId: str
    messageId: str
    text: str
    suggestedOperations: list[dict[str, Any]]
    usage: dict[str, Any]


class AiError(TypedDict):
    streamId: str
    code: str
    message: str
    messageId: NotRequired[str]


class AiCancelled(TypedDict):
    streamId: str
    messageId: NotRequired[str]


class OperationApplied(TypedDict):
    operation: str
    processId: str
    details: dict[str, Any]
    appliedBy: str


_HERE = __name__

# ---- event:<eventId> ------------------------------------------------------------------------------------
EVENT_CREATED: "Event[EventOut]" = Event(
    "event.created", ("event",), ("handlers.events.views.EventOut",), "a new event (its log's first entry)")
EVENT_UPDATED: "Event[EventOut]" = Event(
    "event.updated", ("event",), ("handlers.events.views.EventOut",), "the event's fields changed")
EVENT_DELETED: "Event[IdOnly]" = Event(
    "event.deleted", ("event",), (f"{_HERE}.IdOnly",), "the event is gone; everyone is removed from its topic")
STATUS_CHANGED: "Event[StatusLogOut]" = Event(
    "status.changed", ("event",), ("handlers.events.views.StatusLogOut",), "the event's status moved")
PARTICIPANT_ADDED: "Event[ParticipantOut]" = Event(
    "participant.added", ("event",), ("handlers.events.views.ParticipantOut",), "someone joined the event")
PARTICIPANT_UPDATED: "Event[ParticipantOut]" = Event(
    "participant.updated", ("event",), ("handlers.events.views.ParticipantOut",), "a participant's role/status")
PARTICIPANT_REMOVED: "Event[ParticipantRef]" = Event(
    "participant.removed", ("event",), (f"{_HERE}.ParticipantRef",), "someone left or was removed")
STEP_CREATED: "Event[StepOut]" = Event(
    "step.created", ("event",), ("handlers.processes.shapes.StepOut",), "a step of the event's process was added")
STEP_UPDATED: "Event[StepOut]" = Event(
    "step.updated", ("event",), ("handlers.processes.shapes.StepOut",), "a step changed")
STEP_DELETED: "Event[StepOut]" = Event(
    "step.deleted", ("event",), ("handlers.processes.shapes.StepOut",), "a step was deleted (as it was)")
SUBSTEP_CREATED: "Event[SubStepOut]" = Event(
    "substep.created", ("event",), ("handlers.processes.shapes.SubStepOut",), "a substep was added")
SUBSTEP_UPDATED: "Event[SubStepOut]" = Event(
    "substep.updated", ("event",), ("handlers.processes.shapes.SubStepOut",), "a substep changed")
SUBSTEP_DELETED: "Event[SubStepOut]" = Event(
    "substep.deleted", ("event",), ("handlers.processes.shapes.SubStepOut",), "a substep was deleted (as it was)")
POST_CREATED: "Event[PostOut]" = Event(
    "post.created", ("event",), ("handlers.posts.manage.PostOut",), "a post in the event's room")
POST_UPDATED: "Event[PostOut]" = Event(
    "post.updated", ("event",), ("handlers.posts.manage.PostOut",), "a room post or its media changed")
POST_DELETED: "Event[EventItemRef]" = Event(
    "post.deleted", ("event",), (f"{_HERE}.EventItemRef",), "a room post was deleted")
MEDIA_PROCESSING: "Event[MediaOut]" = Event(
    "media.processing", ("event",), ("handlers.media.records.MediaOut",), "an upload was stored and is being processed")
MEDIA_READY: "Event[MediaOut]" = Event(
    "media.ready", ("event",), ("handlers.media.records.MediaOut",), "processing finished")
MEDIA_FAILED: "Event[MediaOut]" = Event(
    "media.failed", ("event",), ("handlers.media.records.MediaOut",), "processing failed")
MEDIA_DELETED: "Event[EventItemRef]" = Event(
    "media.deleted", ("event",), (f"{_HERE}.EventItemRef",), "a media item was deleted")
CHAT_MESSAGE: "Event[ChatMessageOut]" = Event(
    "chat.message", ("event",), ("handlers.events.chat.ChatMessageOut",), "a chat line in the event's room")

# ---- user:<userId> --------------------------------------------------------------------------------------
NOTIFICATION_CREATED: "Event[NotificationOut]" = Event(
    "notification.created", ("user",), ("handlers.notifications.send.NotificationOut",), "a new notification")
NOTIFICATION_UPDATED: "Event[NotificationOut | NotificationsRead]" = Event(
    "notification.updated", ("user",), ("handlers.notifications.send.NotificationOut", f"{_HERE}.NotificationsRead"),
    "one notification changed, or several were marked read")
NOTIFICATION_DELETED: "Event[IdOnly]" = Event(
    "notification.deleted", ("user",), (f"{_HERE}.IdOnly",), "a notification was deleted")
REMINDER: "Event[Reminder]" = Event(
    "reminder", ("user",), (f"{_HERE}.Reminder",), "an event starts soon (with its notification.created)")
JOB_PROGRESS: "Event[JobProgress]" = Event(
    "job.progress", ("user",), (f"{_HERE}.JobProgress",), "progress of one of the user's background jobs")
REPORT_READY: "Event[ReportOut]" = Event(
    "report.ready", ("user",), ("handlers.insights.reports.ReportOut",), "a requested report was generated")

# ---- sessions (between instances only) ------------------------------------------------------------------
SESSION_ENDED: "Event[SessionEnded]" = Event(
    "session.ended", ("sessions",), (f"{_HERE}.SessionEnded",), "a sign-in ended: close its sockets")
USER_CHANGED: "Event[UserRef]" = Event(
    "user.changed", ("sessions",), (f"{_HERE}.UserRef",), "a user row changed: forget what was cached of it")

# ---- live:<liveContextId> -------------------------------------------------------------------------------
CONTEXT_UPDATED: "Event[LiveContextOut]" = Event(
    "context.updated", ("live",), ("handlers.live.contexts.LiveContextOut",), "the live session changed",
    exclude=frozenset({"messages"}))
CONTEXT_DELETED: "Event[IdOnly]" = Event(
    "context.deleted", ("live",), (f"{_HERE}.IdOnly",), "the live session is gone; everyone is removed")
MESSAGE_CREATED: "Event[LiveMessageOut]" = Event(
    "message.created", ("live",), ("handlers.live.contexts.LiveMessageOut",), "a member's prompt, stored")
AI_STARTED: "Event[AiStarted]" = Event(
    "ai.started", ("live",), (f"{_HERE}.AiStarted",), "the assistant started answering")
AI_DELTA: "Event[AiDelta]" = Event(
    "ai.delta", ("live",), (f"{_HERE}.AiDelta",), "more text of the answer")
AI_COMPLETED: "Event[AiCompleted]" = Event(
    "ai.completed", ("live",), (f"{_HERE}.AiCompleted",), "the whole answer, stored")
AI_ERROR: "Event[AiError]" = Event(
    "ai.error", ("live",), (f"{_HERE}.AiError",), "the answer failed or was interrupted")
AI_CANCELLED: "Event[AiCancelled]" = Event(
    "ai.cancelled", ("live",), (f"{_HERE}.AiCancelled",), "a member cancelled the answer")
OPERATION_APPLIED: "Event[OperationApplied]" = Event(
    "operation.applied", ("live",), (f"{_HERE}.OperationApplied",), "a suggested operation was applied")

EVENTS: dict[str, Event[Any]] = {e.name: e for e in globals().values() if isinstance(e, Event)}


# ---- jobs -----------------------------------------------------------------------------------------------


class MediaProcessArgs(TypedDict):
    media_id: str


class ReportsGenerateArgs(TypedDict):
    user_id: str
    report_type: str
    year: int
    number: int


class RemindersSendArgs(TypedDict):
    reminder_id: str


class NoArgs(TypedDict):
    pass


class OpsProbeArgs(TypedDict):
    key: str
    user_id: str
    before: NotRequired[float]
    after: NotRequired[float]
    fail: NotRequired[bool]


MEDIA_PROCESS = Job("media.process", MediaProcessArgs, "thumbnails, poster and metadata of an upload")
REPORTS_GENERATE = Job("reports.generate", ReportsGenerateArgs, "write a user's weekly or quarterly report")
REMINDERS_SEND = Job("reminders.send", RemindersSendArgs, "send one due event reminder")
OPS_NOOP = Job("ops.noop", NoArgs, "does nothing (benchmarks, liveness)")
OPS_PROBE = Job("ops.probe", OpsProbeArgs, "one notification, once however often delivered (redelivery tests)")

JOBS: dict[str, Job[Any]] = {j.name: j for j in globals().values() if isinstance(j, Job)}
