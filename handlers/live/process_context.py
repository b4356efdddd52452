"""What a live session needs to know about a process: its checklist, its events, recent talk, preferences."""

from __future__ import annotations

import uuid
from typing import Any

from handlers import access
from handlers.context import Context
from handlers.events.views import ContextEvent
from handlers.live.contexts import LiveMessageOut, message_out
from handlers.processes.shapes import StepOut, step_out
from handlers.schema import Out
from persistence import accounts
from persistence import live as live_rows
from persistence.models import Process

RECENT_MESSAGES = 20
RELATED_EVENTS = 50


class ContextProcess(Out):
    """`process` of the original `/live/process-context`: what a live AI session is told about the process."""

    id: uuid.UUID
    title: str
    description: str | None
    color: str | None
    category: str | None
    is_template: bool
    template_id: uuid.UUID | None
    created_by_id: uuid.UUID | None
    steps: list[StepOut]


class ContextPreferences(Out):
    theme: str
    language: str
    time_zone: str
    email_notifications: bool
    push_notifications: bool
    reminder_minutes: int
    additional_settings: dict[str, Any]


class ProcessContextOut(Out):
    process: ContextProcess
    related_events: list[ContextEvent]
    recent_messages: list[LiveMessageOut]
    user_preferences: ContextPreferences | None


def _process_out(p: Process) -> ContextProcess:
    return ContextProcess(
        id=p.id, title=p.title, description=p.description, color=p.color, category=p.category,
        is_template=p.is_template, template_id=p.template_id, created_by_id=p.created_by_id,
        steps=[step_out(s, s.sub_steps) for s in p.steps],
    )


async def process_context(ctx: Context, process_id: uuid.UUID) -> ProcessContextOut:
    await access.process_for_member(ctx, process_id)
    process = await live_rows.checklist(ctx.db, process_id)
    assert process is not None  # checked just above, same transaction
    events = await live_rows.events_of_process(ctx.db, access.visible_events(ctx.user_id), process_id,
                                               RELATED_EVENTS)
    # The tail of the caller's own conversations about this process, system prompts left out.
    recent = await live_rows.newest_talk_on_process(ctx.db, ctx.user_id, process_id, RECENT_MESSAGES)
    prefs = await accounts.preferences(ctx.db, ctx.user_id)
    return ProcessContextOut(
        process=_process_out(process),
        related_events=[ContextEvent(id=e.id, title=e.title, description=e.description, start_time=e.start_time,
                                     end_time=e.end_time, status=e.status, color=e.color) for e in events],
        recent_messages=[message_out(m) for m in reversed(recent)],
        user_preferences=None if prefs is None else ContextPreferences(
            theme=prefs.theme, language=prefs.language, time_zone=prefs.time_zone,
            email_notifications=prefs.email_notifications, push_notifications=prefs.push_notifications,
            reminder_minutes=prefs.reminder_minutes, additional_settings=dict(prefs.additional_settings or {}),
        ),
    )
