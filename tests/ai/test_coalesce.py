"""Merging a slow member's queued deltas and compacting a live topic's backlog: pure functions, plus the
wiring in the connection's outbound queue."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import MutableMapping
from types import SimpleNamespace
from typing import Any

import orjson

from channels import messages as m
from channels.coalesce import coalesce_deltas, compact_backlog
from channels.protocol import Close, ConnectionProtocol, Limits
from server.ws_connection import Connection

T = "live:00000000-0000-4000-8000-000000000001"
OTHER = "live:00000000-0000-4000-8000-000000000002"


def frame(topic: str, event: str, offset: int, data: dict[str, Any]) -> str:
    return m.msg(topic, event, offset, "ep", f"ts{offset}", m.encode_data(data))


def delta(offset: int, index: int, text: str, stream: str = "s1", topic: str = T) -> str:
    return frame(topic, "ai.delta", offset, {"streamId": stream, "index": index, "text": text})


def parsed(frames: Any) -> list[dict[str, Any]]:
    return [orjson.loads(f) for f in frames]


def test_deltas_of_one_stream_merge_into_one_frame_with_the_last_index_and_offset() -> None:
    queue = deque([delta(1, 0, "Hel"), delta(2, 1, "lo"), delta(3, 2, " world")])
    before = sum(map(len, queue))
    freed = coalesce_deltas(queue)
    assert freed == before - sum(map(len, queue)) > 0
    [only] = parsed(queue)
    assert only["data"] == {"streamId": "s1", "index": 2, "text": "Hello world"}
    assert only["offset"] == 3 and only["ts"] == "ts3" and only["epoch"] == "ep" and only["event"] == "ai.delta"


def test_text_never_moves_across_another_message_of_its_topic() -> None:
    queue = deque([delta(1, 0, "a"), delta(2, 1, "b"), frame(T, "message.created", 3, {"id": "m"}),
                   delta(4, 2, "c"), delta(5, 3, "d")])
    coalesce_deltas(queue)
    out = parsed(queue)
    assert [(f["event"], f["offset"]) for f in out] == [("ai.delta", 2), ("message.created", 3), ("ai.delta", 5)]
    assert [f["data"].get("text") for f in out] == ["ab", None, "cd"]


def test_other_topics_streams_and_frames_are_kept_apart() -> None:
    presence = m.presence(T, {"u": {}}, {})
    queue = deque([delta(1, 0, "a"), delta(7, 0, "x", topic=OTHER), presence, delta(2, 1, "b"),
                   delta(3, 0, "p", stream="s2"), delta(8, 1, "y", topic=OTHER), delta(4, 1, "q", stream="s2")])
    coalesce_deltas(queue)
    out = list(queue)
    assert presence in out
    texts = {(f["topic"], f["data"]["streamId"]): f["data"]["text"] for f in parsed(q for q in out if q != presence)}
    assert texts == {(T, "s1"): "ab", (OTHER, "s1"): "xy", (T, "s2"): "pq"}


def test_nothing_to_merge_frees_nothing_and_keeps_frames_byte_identical() -> None:
    frames = [delta(1, 0, "a"), frame(T, "ai.started", 2, {"streamId": "s2"}), m.reply_ok("1", {})]
    queue = deque(frames)
    assert coalesce_deltas(queue) == 0
    assert list(queue) == frames


def test_a_finished_stream_is_replayed_as_its_terminal_frame_only() -> None:
    backlog = [(1, frame(T, "message.created", 1, {"id": "m"})), (2, frame(T, "ai.started", 2, {"streamId": "s1"})),
               (3, delta(3, 0, "a")), (4, delta(4, 1, "b")),
               (5, frame(T, "ai.completed", 5, {"streamId": "s1", "text": "ab"}))]
    assert compact_backlog(backlog) == [backlog[0], backlog[4]]
    for terminal in ("ai.error", "ai.cancelled"):
        ended = [*backlog[:4], (5, frame(T, terminal, 5, {"streamId": "s1"}))]
        assert [e for _, e in [(o, orjson.loads(f)["event"]) for o, f in compact_backlog(ended)]] == [
            "message.created", terminal]


def test_an_unfinished_stream_is_replayed_as_one_delta_holding_what_was_missed() -> None:
    backlog = [(10, delta(10, 4, "d ")), (11, frame(T, "chat.message", 11, {"text": "hi"})), (12, delta(12, 5, "e ")),
               (13, delta(13, 6, "f"))]
    out = compact_backlog(backlog)
    assert [o for o, _ in out] == [11, 13]
    assert out[0] == backlog[1]
    folded = orjson.loads(out[1][1])
    assert folded["data"] == {"streamId": "s1", "index": 6, "text": "d e f"} and folded["offset"] == 13


def test_compaction_keeps_an_unfinished_streams_start_and_other_frames() -> None:
    backlog = [(1, frame(T, "ai.started", 1, {"streamId": "s1"})), (2, delta(2, 0, "a")),
               (3, frame(T, "ai.error", 3, {"streamId": "s0", "code": "timeout"})), (4, delta(4, 1, "b"))]
    out = compact_backlog(backlog)
    assert [orjson.loads(f)["event"] for _, f in out] == ["ai.started", "ai.error", "ai.delta"]
    assert orjson.loads(out[-1][1])["data"]["text"] == "ab"


class _StuckSocket:
    """A socket whose first send never completes: everything after it queues (a member that stopped reading)."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send(self, message: MutableMapping[str, Any]) -> None:
        self.sent.append(message.get("text", ""))
        await asyncio.sleep(3600)


async def test_a_slow_members_queue_merges_deltas_before_the_slow_consumer_limit() -> None:
    state = SimpleNamespace(hub=None, background=set())
    proto = ConnectionProtocol(Limits(), time.monotonic(), user_id="u")
    ws = _StuckSocket()
    conn = Connection(ws, state, proto, max_queue_bytes=4096, coalesce=coalesce_deltas,  # type: ignore[arg-type]
                      send=ws.send)
    conn.enqueue(delta(1, 0, "first"))  # goes out, and the socket stalls
    for i in range(1, 200):  # ~40 KB of deltas into a 4 KiB queue
        conn.enqueue(delta(i + 1, i, f"t{i} "))
    assert conn.close_code is None
    assert conn.queued_bytes <= 4096 and conn.queued_bytes == sum(map(len, conn.queue))
    queued = parsed(conn.queue)
    text = "".join(f["data"]["text"] for f in queued)
    assert text == "".join(f"t{i} " for i in range(1, 200)) and queued[-1]["data"]["index"] == 199
    # Still over the limit after merging (frames that cannot merge): the member is cut off with 4008.
    for i in range(40):
        conn.enqueue(frame(T, "chat.message", 1000 + i, {"text": "x" * 100}))
    assert conn.close_code == Close.SLOW_CONSUMER
    if conn.inflight is not None and hasattr(conn.inflight, "close"):
        conn.inflight.close()
    if conn.writer is not None:  # never ran (the test does not yield): nothing of it outlives the test
        conn.writer.cancel()
