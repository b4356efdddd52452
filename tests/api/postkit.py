"""Helpers for the post, media and notification tests: events made in the database, tiny real files,
multipart bodies, and a recorder for what gets published."""

from __future__ import annotations

import struct
import uuid
import zlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import update

from handlers.context import Message, Outcome
from persistence.enums import ParticipantStatus
from persistence.models import Event, EventParticipant, User
from tests.conftest import Account, Backend


def png(width: int = 2, height: int = 2) -> bytes:
    """A valid RGB PNG, written by hand (no imaging library needed)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = b"".join(b"\x00" + b"\xff\x80\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def wav(samples: int = 8) -> bytes:
    data = b"\x00\x00" * samples
    fmt = struct.pack("<HHIIHH", 1, 1, 8000, 16000, 2, 16)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


async def make_event(backend: Backend, owner: Account,
                     guests: tuple[tuple[Account, ParticipantStatus], ...] = ()) -> str:
    start = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
    async with backend.state.sessionmaker.begin() as db:
        event = Event(title="Room", start_time=start, end_time=start + timedelta(hours=1),
                      created_by_id=uuid.UUID(owner.id))
        db.add(event)
        await db.flush()
        for guest, status in guests:
            db.add(EventParticipant(event_id=event.id, user_id=uuid.UUID(guest.id), role="participant",
                                    status=status))
        return str(event.id)


async def make_guest(backend: Backend, account: Account) -> None:
    async with backend.state.sessionmaker.begin() as db:
        await db.execute(update(User).where(User.id == uuid.UUID(account.id)).values(is_guest=True))


def stored_files(backend: Backend) -> set[Path]:
    """Uploaded originals. Derived images are left out: an earlier test's media job (the app runs its jobs in
    process) may still be writing its thumbnail while a later test counts files."""
    root = backend.state.settings.upload_dir
    if not root.exists():
        return set()
    return {p for p in root.rglob("*") if p.is_file() and "derived" not in p.relative_to(root).parts}


def multipart(fields: dict[str, str], file: tuple[str, bytes, str] | None,
              boundary: str = "postkitboundary") -> tuple[bytes, str]:
    """A multipart/form-data body by hand (for streaming it without a Content-Length)."""
    out = b""
    for name, value in fields.items():
        out += (f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n').encode()
    if file is not None:
        filename, data, ctype = file
        out += (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
                f"Content-Type: {ctype}\r\n\r\n").encode() + data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return out, f"multipart/form-data; boundary={boundary}"


async def chunks(data: bytes, size: int = 4096) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i:i + size]


def record_published(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> list[Message]:
    """Every message the app announces (after commit) from now until the test ends; still delivered."""
    seen: list[Message] = []
    deliver = backend.state.announce

    async def record(outcome: Outcome[Any]) -> None:
        # Durable topics' messages were recorded in the log inside the transaction: read them back from their
        # frames, exactly as subscribers will receive them.
        for rec in outcome.recorded:
            for _offset, frame in rec.entries:
                parsed = orjson.loads(frame)
                seen.append(Message(parsed["topic"], parsed["event"], parsed["data"]))
        seen.extend(outcome.publish)
        await deliver(outcome)

    monkeypatch.setattr(backend.state, "announce", record)
    return seen
