"""Suggested operations are checked against the session's real checklist (pure): invented ids dropped, numbers
repaired to ids, incomplete operations dropped; plus the token estimate and the push routes' names."""

from __future__ import annotations

import uuid
from typing import Any

from handlers import realtime
from handlers.live import prompts as live_ai
from handlers.live.suggestions import TOOL, Checklist, StepSnapshot, parse_arguments, validate

P = uuid.uuid4()
S1, S2, S3 = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
S1A, S1B, S2A = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
CHECKLIST = Checklist(P, (StepSnapshot(S1, False, (S1A, S1B)), StepSnapshot(S2, False, (S2A,)),
                          StepSnapshot(S3, True, ())))


def ops(*items: dict[str, Any], **extra: Any) -> list[dict[str, Any]]:
    args = {"is_process_related": True, "suggested_operations": list(items), **extra}
    return [o.model_dump(mode="json", by_alias=True) for o in validate(args, CHECKLIST)]


def test_real_ids_pass_and_come_back_in_the_original_clients_shape() -> None:
    [op] = ops({"operation": "complete_step", "priority": "high", "description": "done", "step_id": str(S1),
                "substep_id": str(S1B), "rationale": "you said so"})
    assert op == {"operation": "complete_step", "priority": "high", "description": "done", "rationale": "you said so",
                  "stepId": str(S1), "subStepId": str(S1B), "content": None, "processId": str(P)}


def test_invented_ids_are_dropped() -> None:
    invented = str(uuid.uuid4())
    assert ops({"operation": "complete_step", "priority": "high", "description": "x", "step_id": invented}) == []
    assert ops({"operation": "add_substep", "priority": "low", "description": "x", "step_id": str(S1),
                "substep_id": invented, "content": "y"}) == []
    # A substep of another step than the one named is not this step's.
    assert ops({"operation": "complete_step", "priority": "low", "description": "x", "step_id": str(S1),
                "substep_id": str(S2A)}) == []
    assert ops({"operation": "complete_step", "priority": "low", "description": "x", "step_id": "7"}) == []


def test_numbers_are_repaired_to_ids() -> None:
    [a, b, c] = ops(
        {"operation": "complete_step", "priority": "high", "description": "x", "step_id": "2"},
        {"operation": "add_substep", "priority": "low", "description": "y", "step_index": 1, "content": "new"},
        {"operation": "update_step", "priority": "medium", "description": "z", "content": "renamed",
         "substep_id": "2.1"},
        current_focus={"step_index": 2})
    assert a["stepId"] == str(S2) and b["stepId"] == str(S1) and b["content"] == "new"
    assert c["stepId"] == str(S2) and c["subStepId"] == str(S2A)


def test_incomplete_unknown_and_pointless_operations_are_dropped() -> None:
    assert ops({"operation": "update_step", "priority": "high", "description": "x", "step_id": str(S1)}) == []
    assert ops({"operation": "add_step", "priority": "high", "description": "x"}) == []
    assert ops({"operation": "drop_table", "priority": "high", "description": "x"}) == []
    assert ops({"operation": "complete_step", "priority": "high", "description": "x", "step_id": str(S3)}) == []
    assert ops({"operation": "complete_step", "priority": "high", "description": "x"}) == []  # no step, no focus
    [fixed] = ops({"operation": "add_step", "priority": "urgent", "content": "  Clean up  ", "step_id": str(S1)})
    assert fixed["priority"] == "medium" and fixed["content"] == "Clean up" and fixed["stepId"] is None
    assert fixed["description"] == "add step"


def test_not_process_related_or_no_process_means_no_operations() -> None:
    item = {"operation": "complete_step", "priority": "high", "description": "x", "step_id": str(S1)}
    assert validate({"is_process_related": False, "suggested_operations": [item]}, CHECKLIST) == []
    assert validate({"is_process_related": True, "suggested_operations": [item]}, None) == []
    assert validate(parse_arguments("{not json"), CHECKLIST) == []
    assert validate(parse_arguments('["a list"]'), CHECKLIST) == []


def test_duplicates_collapse_and_the_count_is_capped() -> None:
    item = {"operation": "add_step", "priority": "low", "description": "x", "content": "same"}
    assert len(ops(item, item, item)) == 1
    many = [{"operation": "add_step", "priority": "low", "description": "x", "content": f"c{i}"} for i in range(30)]
    assert len(ops(*many)) == 10


def test_the_tool_schema_names_the_four_operations() -> None:
    function = TOOL["function"]
    assert function["name"] == "suggest_process_actions"
    item = function["parameters"]["properties"]["suggested_operations"]["items"]
    assert item["properties"]["operation"]["enum"] == ["complete_step", "add_step", "add_substep", "update_step"]


def test_tokens_are_estimated_from_characters() -> None:
    assert live_ai.estimate_tokens("") == live_ai.TOKENS_PER_MESSAGE
    assert live_ai.estimate_tokens("x" * 400) == 100 + live_ai.TOKENS_PER_MESSAGE


def test_the_contracts_push_names_are_registered() -> None:
    for name in ("prompt", "cancel", "ai.prompt", "ai.cancel", "operation.apply"):
        assert ("live", name) in realtime.PUSHES
