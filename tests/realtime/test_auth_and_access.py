"""Who may connect and join: tokens by frame or header, expiry and refresh, origins, topic rules."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import jwt
import orjson
import pytest
import websockets
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from channels.client import Closed, RealtimeClient, ReplyError
from tests.conftest import SECRET
from tests.realtime.conftest import Cluster
from tests.realtime.harness import event_with, person
from tests.waiting import LIVENESS

# Real server processes: left out of the quick loop (./scripts/test.sh -m "not slow").
pytestmark = pytest.mark.slow


async def _closed_with(ws: Any) -> int | None:
    """The close code the server ends the connection with (frames before it are read and dropped)."""
    try:
        while True:
            await asyncio.wait_for(ws.recv(), LIVENESS)
    except ConnectionClosed as exc:
        return exc.rcvd.code if exc.rcvd else None


def _reissue(token: str, **changes: Any) -> str:
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    claims.update(changes)
    return jwt.encode(claims, SECRET, algorithm="HS256")


async def test_auth_frame_and_reply(cluster: Cluster) -> None:
    async with cluster.api() as api:
        alice = await person(api)
    async with connect(cluster.a.ws_url, subprotocols=[websockets.Subprotocol("conversme.v1")]) as ws:
        assert ws.subprotocol == "conversme.v1"
        await ws.send(orjson.dumps({"op": "auth", "ref": "1", "token": alice.token}).decode())
        reply = orjson.loads(await ws.recv())
        assert reply["ok"] is True and reply["ref"] == "1"
        assert reply["data"]["userId"] == alice.id and reply["data"]["heartbeat"] == 25
        assert reply["data"]["connectionId"]
    async with connect(cluster.a.ws_url) as ws:  # a client that offers no subprotocol is accepted too
        assert ws.subprotocol is None


@pytest.mark.parametrize("first", ["garbage", '{"op":"ping","ref":"1"}', '{"op":"auth","ref":"1","token":"x.y.z"}'])
async def test_anything_but_a_valid_auth_first_closes_4001(cluster: Cluster, first: str) -> None:
    async with connect(cluster.a.ws_url) as ws:
        await ws.send(first)
        assert await _closed_with(ws) == 4001


async def test_no_auth_within_the_timeout_closes_4001(cluster: Cluster) -> None:
    started = time.monotonic()  # before the server opens the connection: what follows can only be longer
    async with connect(cluster.a.ws_url) as ws:  # WS_AUTH_TIMEOUT=2 in the cluster
        assert await _closed_with(ws) == 4001
    # Not before the timeout (how soon after it is for the benches: a loaded machine only makes it later).
    assert time.monotonic() - started >= 2.0


async def test_expired_token_is_refused(cluster: Cluster) -> None:
    async with cluster.api() as api:
        alice = await person(api)
    expired = _reissue(alice.token, exp=int(time.time()) - 5)
    async with connect(cluster.a.ws_url) as ws:
        await ws.send(orjson.dumps({"op": "auth", "ref": "1", "token": expired}).decode())
        assert await _closed_with(ws) == 4001


async def test_bearer_header_authenticates_the_upgrade(cluster: Cluster) -> None:
    async with cluster.api() as api:
        alice = await person(api)
    async with RealtimeClient(cluster.a.ws_url, alice.token, header_auth=True) as c:
        await c.join(f"user:{alice.id}")
    async with connect(cluster.a.ws_url, additional_headers={"Authorization": "Bearer bad.token.here"}) as ws:
        assert await _closed_with(ws) == 4001


async def _authenticated(url: str, token: str) -> ClientConnection:
    ws = await connect(url)
    await ws.send(orjson.dumps({"op": "auth", "ref": "1", "token": token}).decode())
    reply = orjson.loads(await asyncio.wait_for(ws.recv(), LIVENESS))
    assert reply["ok"] is True, reply
    return ws


async def test_token_expiry_without_refresh_closes_4001_and_refresh_keeps_it_open(cluster: Cluster) -> None:
    async with cluster.api() as api:
        alice = await person(api)
    # Two sockets with short tokens: `kept` refreshes to a long one, `lapsed` does not. The server closing
    # `lapsed` at its expiry is the barrier: `kept`'s first token expired a second before, so by then a server
    # that ignored the refresh would have closed `kept` too (both deadlines run on one instance's event loop, in
    # order). A token must still be valid when the server checks it: on a machine slow enough to let one expire
    # before that, the round is tried again with fresh tokens.
    deadline = time.monotonic() + LIVENESS
    while True:
        now = int(time.time())
        first, lapsing = _reissue(alice.token, exp=now + 3), _reissue(alice.token, exp=now + 4)
        kept = RealtimeClient(cluster.a.ws_url, first, reconnect=False)
        lapsed: ClientConnection | None = None
        try:
            await kept.connect()
            exp = int(time.time()) + 600
            reply = await kept.refresh(_reissue(alice.token, exp=exp))
            assert reply["expiresAt"] == exp  # the token's Unix expiry
            lapsed = await _authenticated(cluster.a.ws_url, lapsing)
        except (AssertionError, ReplyError, Closed, ConnectionClosed):
            await kept.close()
            if lapsed is not None:
                await lapsed.close()
            if time.time() < now + 3 or time.monotonic() > deadline:
                raise  # the tokens were still valid: a real failure
            continue
        break
    assert lapsed is not None
    try:
        assert await _closed_with(lapsed) == 4001
        await kept.ping()  # still open after the first token's expiry
    finally:
        await kept.close()
        await lapsed.close()


async def test_foreign_origin_is_refused_and_allowed_origin_accepted(cluster: Cluster) -> None:
    with pytest.raises(InvalidStatus) as info:
        async with connect(cluster.a.ws_url, origin=websockets.Origin("https://evil.example")):
            pass
    assert info.value.response.status_code == 403
    async with connect(cluster.a.ws_url, origin=websockets.Origin("http://localhost:3000")) as ws:
        await ws.send('{"op":"ping"}')


async def test_join_rules(cluster: Cluster) -> None:
    async with cluster.api() as api:
        alice, bob, eve = await person(api, "alice"), await person(api, "bob"), await person(api, "eve")
        event = await event_with(api, alice, bob, template=False)
    async with RealtimeClient(cluster.a.ws_url, eve.token) as c:
        with pytest.raises(ReplyError) as err:
            await c.join(f"event:{event['id']}")
        assert err.value.code == "not_found"
        with pytest.raises(ReplyError) as err:
            await c.join(f"user:{alice.id}")
        assert err.value.code == "forbidden"
        with pytest.raises(ReplyError) as err:
            await c.join(f"event:{uuid.uuid4()}")
        assert err.value.code == "not_found"
        with pytest.raises(ReplyError) as err:
            await c.join(f"live:{uuid.uuid4()}")
        assert err.value.code == "not_found"
        await c.join(f"user:{eve.id}")
        with pytest.raises(ReplyError) as err:
            await c.push(f"event:{event['id']}", "chat.send", {"text": "hi"})
        assert err.value.code == "not_joined"
    async with RealtimeClient(cluster.b.ws_url, bob.token) as c:
        data = await c.join(f"event:{event['id']}")
        assert data["recovered"] is False and isinstance(data["offset"], int)
        assert bob.id in data["presence"]


async def test_push_validation_errors_are_replies(cluster: Cluster) -> None:
    async with cluster.api() as api:
        alice = await person(api)
        event = await event_with(api, alice)
        other = await event_with(api, alice)
        other_steps = (await api.get(f"/processes/{other['processId']}/steps", headers=alice.headers)).json()
    topic = f"event:{event['id']}"
    async with RealtimeClient(cluster.a.ws_url, alice.token) as c:
        await c.join(topic)
        cases: list[tuple[str, dict[str, Any], str]] = [
            ("step.update", {"completed": True}, "invalid"),
            ("step.update", {"stepId": "nope"}, "invalid"),
            ("step.update", {"stepId": str(uuid.uuid4()), "completed": True}, "not_found"),
            # a step of another event's checklist cannot be changed through this room
            ("step.update", {"stepId": other_steps[0]["id"], "completed": True}, "not_found"),
            ("event.status", {"status": "Sleeping"}, "invalid"),
            ("chat.send", {"text": ""}, "invalid"),
            ("dance.start", {}, "invalid"),
        ]
        for event_name, data, code in cases:
            with pytest.raises(ReplyError) as err:
                await c.push(topic, event_name, data)
            assert err.value.code == code, (event_name, data, err.value)
        reply = await c.push(topic, "event.status", {"status": "Execution"})
        assert reply["status"] == "Execution"
        msg = await c.next(event="status.changed")
        assert msg["data"]["newStatus"] == "Execution"
        # A status-only change moves the event members hold too (docs/realtime.md §9: both are published).
        updated = await c.next(event="event.updated")
        assert updated["data"]["status"] == "Execution" and updated["offset"] == msg["offset"] + 1

