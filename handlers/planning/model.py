"""The model-backed weekly plan: the same inputs as the heuristic (the sessions to place, the days with their
minutes), asked of the language model as structured output, then checked before anyone sees it — every
template id must be one of the chosen ones, every day one of the plan's days, times inside the working day,
the total within the hours allocated. What fails the checks is left out; if nothing is left the caller
falls back to the heuristic and says so."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any, Protocol

import orjson

EARLIEST, LATEST = time(6, 0), time(21, 0)
MIN_MINUTES, MAX_MINUTES = 15, 240
_HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")

SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["summary", "events"],
    "properties": {
        "summary": {"type": "string", "description": "two or three sentences on how the week is laid out"},
        "events": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["title", "description", "templateId", "day", "start", "minutes"],
                "properties": {
                    "title": {"type": "string"},
                    "description": {"type": "string"},
                    "templateId": {"type": ["string", "null"], "description": "a template id from the list, "
                                                                             "or null for a goal session"},
                    "day": {"type": "string", "description": "YYYY-MM-DD, one of the plan's days"},
                    "start": {"type": "string", "description": "HH:MM local time"},
                    "minutes": {"type": "integer"},
                },
            },
        },
    },
}

INSTRUCTIONS = (
    "You plan a person's work week. Place the sessions listed below on the plan's days: each day has a number "
    "of minutes available that its sessions must not exceed, and sessions on one day must not overlap. Use "
    "each template at most once and only the template ids given; for goals, use templateId null. Prefer "
    "mornings for demanding work, spread sessions over the days, and leave at least 15 minutes between "
    "sessions. Answer with JSON only.")


class Planner(Protocol):
    async def complete_json(self, messages: Sequence[dict[str, Any]], *, name: str, schema: dict[str, Any],
                            max_tokens: int = 2000) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Candidate:
    title: str
    description: str
    process_id: uuid.UUID | None
    minutes: int


@dataclass(frozen=True)
class Placed:
    title: str
    description: str
    process_id: uuid.UUID | None
    start: datetime  # local, aware
    end: datetime


def request(candidates: Sequence[Candidate], days: Sequence[tuple[datetime, int]], *, effort: str,
            hours: int, description: str | None, goals: str | None) -> list[dict[str, Any]]:
    brief = {
        "effort": effort, "hoursAllocated": hours, "about": description or "", "goals": goals or "",
        "days": [{"day": start.date().isoformat(), "weekday": start.strftime("%A"), "minutesAvailable": budget,
                  "earliestStart": start.strftime("%H:%M")} for start, budget in days],
        "sessions": [{"templateId": str(c.process_id) if c.process_id else None, "title": c.title,
                      "description": c.description, "suggestedMinutes": c.minutes} for c in candidates],
    }
    return [{"role": "system", "content": INSTRUCTIONS},
            {"role": "user", "content": orjson.dumps(brief).decode()}]


def validate(answer: dict[str, Any], candidates: Sequence[Candidate], days: Sequence[tuple[datetime, int]],
             hours: int) -> list[Placed]:
    allowed = {c.process_id: c for c in candidates if c.process_id is not None}
    day_of = {start.date().isoformat(): start for start, _ in days}
    budget = {start.date().isoformat(): minutes for start, minutes in days}
    left = hours * 60
    used_templates: set[uuid.UUID] = set()
    placed: list[Placed] = []
    raw_events = answer.get("events")
    for raw in raw_events if isinstance(raw_events, list) else []:
        if not isinstance(raw, dict):
            continue
        process_id: uuid.UUID | None = None
        if raw.get("templateId"):
            try:
                process_id = uuid.UUID(str(raw["templateId"]))
            except ValueError:
                continue
            if process_id not in allowed or process_id in used_templates:
                continue
        day, match = str(raw.get("day", "")), _HHMM.match(str(raw.get("start", "")).strip())
        minutes = raw.get("minutes")
        if day not in day_of or match is None or not isinstance(minutes, int) or isinstance(minutes, bool):
            continue
        cap = min(MAX_MINUTES, budget[day], left)
        if cap < MIN_MINUTES:
            continue
        minutes = max(MIN_MINUTES, min(cap, minutes))
        clock = time(int(match.group(1)), int(match.group(2)))
        start = day_of[day].replace(hour=clock.hour, minute=clock.minute)
        end = start + timedelta(minutes=minutes)
        if clock < EARLIEST or end.time() > LATEST or end.date() != start.date():
            continue
        if any(p.start < end and start < p.end for p in placed):
            continue
        title = str(raw.get("title") or "").strip()[:300] or (allowed[process_id].title if process_id else "")
        if not title:
            continue
        description = str(raw.get("description") or "").strip()[:5000]
        placed.append(Placed(title, description, process_id, start, end))
        budget[day] -= minutes
        left -= minutes
        if process_id is not None:
            used_templates.add(process_id)
    placed.sort(key=lambda p: p.start)
    return placed
