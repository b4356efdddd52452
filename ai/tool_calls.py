"""The model's tool calls in a live turn: the suggestion tool is offered only when the session has a checklist;
a turn in which the model only called it gets a second round with the call's result so that it writes the
answer; the calls become suggested operations, checked against the checklist as it is when the turn ends."""

from __future__ import annotations

from typing import Any

from ai.model import ToolCall
from handlers.live import suggestions as live_suggestions
from handlers.live.prompts import Turn
from handlers.live.suggestions import Checklist, SuggestedOperation

TOOL_RESULT = "Shown to the operator as suggestions. Now answer the operator in plain text."


def tools_for(turn: Turn | None) -> list[dict[str, Any]]:
    return [live_suggestions.TOOL] if turn is not None and turn.checklist is not None else []


def followup(messages: list[dict[str, Any]], calls: list[ToolCall]) -> list[dict[str, Any]]:
    """The turn's messages, then the model's calls and their results: what the model answers in plain text."""
    return [*messages,
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in calls]},
            *[{"role": "tool", "tool_call_id": c.id, "content": TOOL_RESULT} for c in calls]]


def suggested_operations(calls: list[ToolCall], checklist: Checklist | None) -> list[SuggestedOperation]:
    operations: list[SuggestedOperation] = []
    for call in calls:
        if call.name == live_suggestions.TOOL_NAME:
            operations += live_suggestions.validate(live_suggestions.parse_arguments(call.arguments), checklist)
    return operations[: live_suggestions.MAX_OPERATIONS]
