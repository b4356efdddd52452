"""Fewer, larger AI frames: merging a slow member's queued `ai.delta`s, and compacting a live topic's backlog
on resume. Pure functions over encoded frames (the standard library and the serializer only).

Merging keeps each stream's text in order and never moves text across another message of the same topic:
a delta folds into the previous delta of its stream only when no other `msg` of that topic lies between
them. The merged frame carries the concatenated text, the last `index` and the last `offset` folded in, so
a client's resume position still advances to the right place.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import orjson

from channels import messages as m

DELTA = "ai.delta"
TERMINAL = frozenset({"ai.completed", "ai.error", "ai.cancelled"})
_HEAD = 200  # the envelope's op/topic/event come first; looking this far is enough
_MSG_PREFIX = '{"op":"msg","topic":"'


def _event_of(frame: str) -> str | None:
    """The `event` of a msg frame, read from its head without parsing the whole frame."""
    head = frame[:_HEAD]
    at = head.find('"event":"')
    if not head.startswith(_MSG_PREFIX) or at < 0:
        return None
    start = at + len('"event":"')
    end = head.find('"', start)
    return head[start:end] if end > 0 else None


def _topic_of(frame: str) -> str | None:
    if not frame.startswith(_MSG_PREFIX):
        return None
    start = len(_MSG_PREFIX)
    end = frame.find('"', start)
    return frame[start:end] if end > 0 else None


def _encode(obj: dict[str, Any]) -> str:
    return m.msg(obj["topic"], obj["event"], obj["offset"], obj["epoch"], obj["ts"], m.encode_data(obj["data"]))


def _fold(into: dict[str, Any], delta: dict[str, Any]) -> None:
    into["data"]["text"] = str(into["data"].get("text", "")) + str(delta["data"].get("text", ""))
    into["data"]["index"] = delta["data"].get("index")
    into["offset"] = delta["offset"]
    into["ts"] = delta["ts"]


def coalesce_deltas(queue: deque[str]) -> int:
    """Merge queued `ai.delta` frames of one stream into fewer frames, in place; return the characters freed."""
    # Each slot: the original frame and, for a delta, its parsed form (re-encoded only if it absorbed others).
    slots: list[tuple[str, dict[str, Any] | None]] = []
    merged: set[int] = set()
    freed = 0
    open_streams: dict[tuple[str, str], int] = {}  # (topic, streamId) → slot of the delta still open to merging
    for frame in queue:
        if _event_of(frame) != DELTA:
            topic = _topic_of(frame)
            if topic is not None:  # another message of this topic: no text may move across it
                for key in [k for k in open_streams if k[0] == topic]:
                    del open_streams[key]
            slots.append((frame, None))
            continue
        obj = orjson.loads(frame)
        key = (str(obj["topic"]), str(obj["data"].get("streamId")))
        slot = open_streams.get(key)
        if slot is None:
            open_streams[key] = len(slots)
            slots.append((frame, obj))
            continue
        target = slots[slot][1]
        assert target is not None
        _fold(target, obj)
        merged.add(slot)
        freed += len(frame)
    if not merged:
        return 0
    queue.clear()
    for i, (frame, obj) in enumerate(slots):
        if i in merged and obj is not None:
            text = _encode(obj)
            freed += len(frame) - len(text)
            queue.append(text)
        else:
            queue.append(frame)
    return freed


def compact_backlog(entries: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """A live topic's missed entries, compacted for a resuming member: a finished stream (one with a
    terminal frame in the backlog) becomes only its terminal frame; an unfinished one keeps its `ai.started`
    and becomes one `ai.delta` with the text it missed and the last index folded in (at the last delta's
    offset). Every other frame is kept as is. Offsets stay increasing."""
    parsed: list[tuple[int, str, dict[str, Any] | None]] = []
    finished: set[str] = set()
    for offset, frame in entries:
        event = _event_of(frame)
        if event is None or not event.startswith("ai."):
            parsed.append((offset, frame, None))
            continue
        obj = orjson.loads(frame)
        data = obj.get("data")
        if not isinstance(data, dict) or "streamId" not in data:
            parsed.append((offset, frame, None))
            continue
        if event in TERMINAL:
            finished.add(str(data["streamId"]))
        parsed.append((offset, frame, obj))
    out: list[tuple[int, str]] = []
    folding: dict[str, dict[str, Any]] = {}
    for offset, frame, obj in parsed:
        if obj is None:
            out.append((offset, frame))
            continue
        stream, event = str(obj["data"]["streamId"]), obj["event"]
        if stream in finished:
            if event in TERMINAL:
                out.append((offset, frame))
        elif event == DELTA:
            if stream in folding:
                _fold(folding[stream], obj)
            else:
                folding[stream] = obj
        else:
            out.append((offset, frame))
    out.extend((obj["offset"], _encode(obj)) for obj in folding.values())
    out.sort(key=lambda e: e[0])
    return out
