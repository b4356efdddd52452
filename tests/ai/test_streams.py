"""Live AI streams on two real instances (PostgreSQL + Redis) with the real `openai` client talking to the
fake upstream: shared deltas, cancel, upstream failures, resume with compaction, suggestions, revocation."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from channels.client import RealtimeClient, ReplyError
from tests.ai.conftest import CANCEL, PROMPT, AICluster, ai_frames, deltas, live_session, until_end
from tests.realtime.harness import event_with
from tests.waiting import LIVENESS, chat_sentinel

# Real server processes: left out of the quick loop (./scripts/test.sh -m "not slow").
pytestmark = pytest.mark.slow


async def test_two_members_on_two_instances_get_identical_deltas_in_order(ai_cluster: AICluster) -> None:
    async with ai_cluster.api() as api:
        s = await live_session(api)
        async with RealtimeClient(ai_cluster.a.ws_url, s.owner.token) as alice, \
                RealtimeClient(ai_cluster.b.ws_url, s.member.token) as bob:
            await alice.join(s.topic)
            await bob.join(s.topic)
            reply = await alice.push(s.topic, PROMPT, {"text": "What now? [n:30]"})
            stream_id = reply["streamId"]
            assert reply["message"]["role"] == "user" and reply["message"]["content"] == "What now? [n:30]"
            got_a, got_b = await until_end(alice, s.topic), await until_end(bob, s.topic)
            assert [f for f in got_a if f["op"] == "msg"] == [f for f in got_b if f["op"] == "msg"]
            msgs = [f for f in got_a if f["op"] == "msg"]
            assert [m["event"] for m in msgs[:2]] == ["message.created", "ai.started"]
            assert msgs[0]["data"]["id"] == reply["message"]["id"]
            assert msgs[1]["data"]["streamId"] == stream_id
            ds = deltas(msgs)
            assert [d["data"]["index"] for d in ds] == list(range(30))
            assert [d["offset"] for d in msgs] == list(range(msgs[0]["offset"], msgs[0]["offset"] + len(msgs)))
            done = msgs[-1]
            assert done["event"] == "ai.completed" and done["data"]["streamId"] == stream_id
            assert done["data"]["text"] == "".join(d["data"]["text"] for d in ds) == "".join(
                f"tok{i} " for i in range(30))
            assert done["data"]["usage"]["totalTokens"] > 0 and done["data"]["suggestedOperations"] == []
        # Both messages are stored, in order, and any member can list them.
        r = await api.get(f"/live/contexts/{s.context_id}/messages", headers=s.member.headers)
        assert r.status_code == 200, r.text
        stored = r.json()
        assert [(m["role"], m["seq"]) for m in stored] == [("user", 1), ("assistant", 2)]
        assert stored[1]["id"] == done["data"]["messageId"] and stored[1]["content"] == done["data"]["text"]
        assert stored[1]["metadata"]["status"] == "completed" and stored[1]["metadata"]["usage"]["totalTokens"] > 0
        assert stored[0]["authorId"] == s.owner.id
        # The model was told the checklist with its ids, the event and who asked.
        request = ai_cluster.fake.find("What now? [n:30]")[-1].body
        system = request["messages"][0]["content"]
        assert all(step["id"] in system for step in s.steps) and "Standup" in system and "AIDE" in system
        assert request["messages"][-1]["role"] == "user" and request["stream"] is True
        assert request["tools"][0]["function"]["name"] == "suggest_process_actions"


async def test_a_second_prompt_while_one_runs_is_a_conflict(ai_cluster: AICluster) -> None:
    async with ai_cluster.api() as api:
        s = await live_session(api)
        async with RealtimeClient(ai_cluster.a.ws_url, s.owner.token) as alice, \
                RealtimeClient(ai_cluster.b.ws_url, s.member.token) as bob:
            await alice.join(s.topic)
            await bob.join(s.topic)
            await alice.push(s.topic, PROMPT, {"text": "long one [slow] [n:30]"})
            with pytest.raises(ReplyError) as err:
                await bob.push(s.topic, "ai.prompt", {"text": "me too"})  # the alias is the same push
            assert err.value.code == "conflict"
            await until_end(alice, s.topic)
            await bob.push(s.topic, "ai.prompt", {"text": "now [n:3]"})  # free again once it ended
            assert ai_frames(await until_end(alice, s.topic))[-1]["event"] == "ai.completed"
        stored = (await api.get(f"/live/contexts/{s.context_id}/messages", headers=s.owner.headers)).json()
        assert [m["content"] for m in stored if m["role"] == "user"] == ["long one [slow] [n:30]", "now [n:3]"]


async def test_cancel_by_the_asker_stops_the_upstream_request_at_once(ai_cluster: AICluster) -> None:
    tag = f"[id:{uuid.uuid4().hex[:8]}]"
    async with ai_cluster.api() as api:
        s = await live_session(api)
        async with RealtimeClient(ai_cluster.a.ws_url, s.owner.token) as alice, \
                RealtimeClient(ai_cluster.b.ws_url, s.member.token) as bob:
            await alice.join(s.topic)
            await bob.join(s.topic)
            reply = await bob.push(s.topic, PROMPT, {"text": f"explain {tag} [slow] [n:200]"})
            for _ in range(3):
                await alice.next(event="ai.delta")
            await bob.push(s.topic, CANCEL, {"streamId": reply["streamId"]})
            frames = await until_end(alice, s.topic, timeout=LIVENESS)
            assert frames[-1]["event"] == "ai.cancelled" and frames[-1]["data"]["streamId"] == reply["streamId"]
            # The cancel closed the upstream request before its end (not just stopped forwarding it).
            upstream = await ai_cluster.fake.wait_closed(tag, timeout=LIVENESS)
            assert upstream.closed_early and not upstream.finished and upstream.chunks_sent < 200
        stored = (await api.get(f"/live/contexts/{s.context_id}/messages", headers=s.owner.headers)).json()
        assert stored[-1]["role"] == "assistant" and stored[-1]["metadata"]["status"] == "cancelled"


async def test_only_the_asker_or_the_owner_may_cancel(ai_cluster: AICluster) -> None:
    async with ai_cluster.api() as api:
        s = await live_session(api)
        async with RealtimeClient(ai_cluster.a.ws_url, s.owner.token) as alice, \
                RealtimeClient(ai_cluster.b.ws_url, s.member.token) as bob:
            await alice.join(s.topic)
            await bob.join(s.topic)
            mine = await alice.push(s.topic, PROMPT, {"text": "owner asks [slow] [n:100]"})
            with pytest.raises(ReplyError) as err:
                await bob.push(s.topic, CANCEL, {"streamId": mine["streamId"]})
            assert err.value.code == "forbidden"
            with pytest.raises(ReplyError) as err:
                await bob.push(s.topic, CANCEL, {"streamId": "nope"})
            assert err.value.code == "not_found"
            await alice.push(s.topic, "ai.cancel", {"streamId": mine["streamId"]})
            assert (await until_end(bob, s.topic, timeout=LIVENESS))[-1]["event"] == "ai.cancelled"
            # The owner may cancel what a member asked.
            theirs = await bob.push(s.topic, PROMPT, {"text": "member asks [slow] [n:100]"})
            await alice.next(event="ai.delta")
            await alice.push(s.topic, CANCEL, {"streamId": theirs["streamId"]})
            assert (await until_end(bob, s.topic, timeout=LIVENESS))[-1]["event"] == "ai.cancelled"


@pytest.mark.parametrize(("marker", "code", "words"), [
    ("[429]", "rate_limited", "try again in 7 s"),
    ("[500]", "ai_unavailable", "HTTP 500"),
    ("[401]", "ai_unavailable", "key was rejected"),
    ("[400]", "invalid", "refused the request"),
    ("[drop]", "ai_unavailable", "dropped"),
    ("[stall]", "timeout", "did not answer"),
])
async def test_upstream_failures_end_the_stream_with_ai_error(ai_cluster: AICluster, marker: str, code: str,
                                                              words: str) -> None:
    async with ai_cluster.api() as api:
        s = await live_session(api)
        async with RealtimeClient(ai_cluster.b.ws_url, s.member.token) as bob:
            await bob.join(s.topic)
            reply = await bob.push(s.topic, PROMPT, {"text": f"go {marker}"})
            # The stalled one ends when OPENAI_TIMEOUT (2 s) runs out: its code says that is why it ended.
            end = (await until_end(bob, s.topic, timeout=LIVENESS))[-1]
            assert end["event"] == "ai.error", end
            assert end["data"]["streamId"] == reply["streamId"] and end["data"]["code"] == code
            assert words in end["data"]["message"]
            # The session is free again.
            await bob.push(s.topic, PROMPT, {"text": "again [n:2]"})
            assert (await until_end(bob, s.topic))[-1]["event"] == "ai.completed"


async def test_reconnect_mid_stream_resumes_with_one_delta_then_the_live_tail(ai_cluster: AICluster) -> None:
    async with ai_cluster.api() as api:
        s = await live_session(api)
        async with RealtimeClient(ai_cluster.a.ws_url, s.owner.token) as alice:
            await alice.join(s.topic)
            bob = RealtimeClient(ai_cluster.b.ws_url, s.member.token, reconnect=False)
            await bob.connect()
            await bob.join(s.topic)
            reply = await alice.push(s.topic, PROMPT, {"text": "long [rate:25] [n:60]"})
            seen: list[dict[str, Any]] = []
            while len(deltas(seen)) < 5:
                seen.append(await bob.next(op="msg", topic=s.topic))
            await bob.close()
            # Bob is away while ~20 more tokens stream.
            for _ in range(20):
                await alice.next(event="ai.delta")
            async with RealtimeClient(ai_cluster.a.ws_url, s.member.token) as back:
                last = seen[-1]
                joined = await back.join(s.topic, since=(last["epoch"], last["offset"]))
                assert joined["recovered"] is True
                rest = await until_end(back, s.topic)
            first = next(f for f in rest if f["op"] == "msg")
            assert first["event"] == "ai.delta" and first["data"]["streamId"] == reply["streamId"]
            assert len(first["data"]["text"]) > len("tok10 ")  # several missed tokens folded into one frame
            tail = deltas(rest)[1:]
            indices = [first["data"]["index"]] + [d["data"]["index"] for d in tail]
            assert indices == list(range(indices[0], indices[0] + len(indices)))
            assert deltas(seen)[-1]["data"]["index"] + 1 + (first["data"]["text"].count("tok") - 1) == indices[0]
            text = "".join(d["data"]["text"] for d in deltas(seen)) + first["data"]["text"] + "".join(
                d["data"]["text"] for d in tail)
            assert rest[-1]["event"] == "ai.completed" and rest[-1]["data"]["text"] == text
            # Besides the messages, the room's presence may speak (bob's own join, announced through Redis, can
            # land between two deltas when the machine is busy): it carries no offset.
            assert all(f["op"] == "presence" for f in rest if f["op"] != "msg"), rest
            msgs = [f for f in rest if f["op"] == "msg"]
            assert [f["offset"] for f in msgs] == sorted({f["offset"] for f in msgs})


async def test_resuming_after_the_stream_finished_replays_only_its_completion(ai_cluster: AICluster) -> None:
    async with ai_cluster.api() as api:
        s = await live_session(api)
        async with RealtimeClient(ai_cluster.a.ws_url, s.owner.token) as alice:
            position = await alice.join(s.topic)
            await alice.leave(s.topic)
            async with RealtimeClient(ai_cluster.b.ws_url, s.member.token) as bob:
                await bob.join(s.topic)
                await bob.push(s.topic, PROMPT, {"text": "short [n:12]"})
                done = (await until_end(bob, s.topic))[-1]
            joined = await alice.join(s.topic, since=(position["epoch"], position["offset"]))
            # The missed frames follow the reply in order, up to the head it names: once that one is in, the
            # replay is complete (nothing else is published here).
            replay = [await alice.next(op="msg", topic=s.topic, timeout=LIVENESS)]
            while replay[-1]["offset"] < joined["offset"]:
                replay.append(await alice.next(op="msg", topic=s.topic, timeout=LIVENESS))
            assert [f["event"] for f in replay] == ["message.created", "ai.completed"]
            assert replay[-1] == done


async def test_suggested_operations_are_checked_against_the_real_ids(ai_cluster: AICluster) -> None:
    async with ai_cluster.api() as api:
        s = await live_session(api)
        first, second = s.steps[0], s.steps[1]
        invented = str(uuid.uuid4())
        marker = ai_cluster.fake.script(f"ops-{uuid.uuid4().hex[:6]}", text="Step one is done.", tool_arguments={
            "is_process_related": True, "current_focus": {"step_index": 1},
            "suggested_operations": [
                {"operation": "complete_step", "priority": "high", "description": "Mark step 1 done",
                 "step_id": first["id"]},
                {"operation": "complete_step", "priority": "high", "description": "Invented", "step_id": invented},
                {"operation": "add_substep", "priority": "low", "description": "Add a check", "step_id": "2",
                 "content": "check the valve"},
                {"operation": "update_step", "priority": "medium", "description": "No content", "step_id": "1"},
                {"operation": "complete_step", "priority": "low", "description": "Bad substep",
                 "step_id": first["id"], "substep_id": invented},
                {"operation": "delete_everything", "priority": "high", "description": "nope"},
            ]})
        async with RealtimeClient(ai_cluster.a.ws_url, s.owner.token) as alice, \
                RealtimeClient(ai_cluster.b.ws_url, s.member.token) as bob:
            await alice.join(s.topic)
            await bob.join(s.topic)
            await bob.join(s.event_topic)
            await alice.push(s.topic, PROMPT, {"text": f"done with one {marker}"})
            done = (await until_end(alice, s.topic))[-1]
            ops = done["data"]["suggestedOperations"]
            assert [(o["operation"], o["stepId"]) for o in ops] == [("complete_step", first["id"]),
                                                                    ("add_substep", second["id"])]
            assert all(o["processId"] == s.event["processId"] for o in ops)
            assert ops[1]["content"] == "check the valve" and ops[0]["subStepId"] is None
            assert invented not in str(done)
            # Applying one goes through the step handlers: the event topic sees the change too.
            applied = await bob.push(s.topic, "operation.apply", ops[0])
            assert applied["success"] is True and applied["details"]["stepId"] == first["id"]
            changed = await bob.next(event="step.updated", topic=s.event_topic)
            assert changed["data"]["id"] == first["id"] and changed["data"]["completed"] is True
            note = await alice.next(event="operation.applied", topic=s.topic)
            assert note["data"]["operation"] == "complete_step" and note["data"]["appliedBy"] == s.member.id


async def test_a_revoked_member_stops_receiving_at_once(ai_cluster: AICluster) -> None:
    tag = f"[id:{uuid.uuid4().hex[:8]}]"
    async with ai_cluster.api() as api:
        s = await live_session(api)
        other = await event_with(api, s.owner, s.member, template=False)  # Bob stays in this one
        async with RealtimeClient(ai_cluster.a.ws_url, s.owner.token) as alice, \
                RealtimeClient(ai_cluster.b.ws_url, s.member.token) as bob:
            await alice.join(s.topic)
            await bob.join(s.topic)
            await bob.join(f"event:{other['id']}")
            await alice.push(s.topic, PROMPT, {"text": f"a long answer {tag} [slow] [n:1000]"})
            await bob.next(event="ai.delta", topic=s.topic)
            r = await api.delete(f"/events/{s.event['id']}/participants/{s.member.id}", headers=s.owner.headers)
            assert r.status_code == 204, r.text
            left = await bob.next(op="left", topic=s.topic, timeout=LIVENESS)
            assert left["reason"] == "revoked"
            # A delta the upstream sends only now is published after the revocation ...
            after = (await ai_cluster.fake.wait_started(tag)).chunks_sent
            while (await alice.next(event="ai.delta", topic=s.topic, timeout=LIVENESS))["data"]["index"] < after:
                pass
            # ... and Bob's sentinel after that delta: his instance reads both from one Redis subscription, in
            # order, so had the delta been forwarded to Bob it would be in his inbox before the sentinel.
            before, _ = await chat_sentinel(bob, f"event:{other['id']}")
            assert [f for f in before if f.get("topic") == s.topic and f.get("op") == "msg"] == []
            with pytest.raises(ReplyError) as err:
                await bob.join(s.topic)
            assert err.value.code == "not_found"
            # The owner keeps receiving, and cancels.
            alice.pending_frames()
            assert (await alice.next(event="ai.delta", topic=s.topic))["data"]["index"] > 0
            stream = (await api.get(f"/live/contexts/{s.context_id}/messages", headers=s.owner.headers)).json()
            await alice.push(s.topic, CANCEL, {"streamId": stream[-1]["metadata"]["streamId"]})
            assert (await until_end(alice, s.topic, timeout=LIVENESS))[-1]["event"] == "ai.cancelled"


async def test_deleting_the_event_or_the_session_empties_the_live_topic(ai_cluster: AICluster) -> None:
    async with ai_cluster.api() as api:
        s = await live_session(api)
        async with RealtimeClient(ai_cluster.a.ws_url, s.owner.token) as alice, \
                RealtimeClient(ai_cluster.b.ws_url, s.member.token) as bob:
            await alice.join(s.topic)
            await bob.join(s.topic)
            assert (await api.delete(f"/events/{s.event['id']}", headers=s.owner.headers)).status_code == 204
            assert (await bob.next(op="left", topic=s.topic, timeout=LIVENESS))["reason"] == "deleted"
            # The session stays with its owner (unlinked from the deleted event) ...
            await alice.push(s.topic, PROMPT, {"text": "still here? [n:2]"})
            assert (await until_end(alice, s.topic))[-1]["event"] == "ai.completed"
            # ... until the owner deletes it.
            assert (await api.delete(f"/live/contexts/{s.context_id}", headers=s.owner.headers)).status_code == 204
            assert (await alice.next(op="left", topic=s.topic, timeout=LIVENESS))["reason"] == "deleted"
