"""File storage behind one interface: a local directory by default."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Protocol


class Storage(Protocol):
    async def save(self, key: str, data: bytes) -> str:
        """Store `data` under `key`; return the public URL."""

    async def read(self, key: str) -> bytes: ...

    async def delete(self, key: str) -> None: ...

    def url_for(self, key: str) -> str: ...


class LocalStorage:
    """Files under `root`, served by the app at `url_prefix`. Writes go to a temp file, then rename,
    so a reader never sees half a file."""

    def __init__(self, root: Path, url_prefix: str = "/uploads") -> None:
        self.root = root
        self.url_prefix = url_prefix.rstrip("/")

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ValueError("storage key escapes the storage root")
        return path

    def url_for(self, key: str) -> str:
        return f"{self.url_prefix}/{key}"

    def _write(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".part")
        tmp.write_bytes(data)
        os.replace(tmp, path)

    async def save(self, key: str, data: bytes) -> str:
        await asyncio.to_thread(self._write, key, data)
        return self.url_for(key)

    async def read(self, key: str) -> bytes:
        return await asyncio.to_thread(self._path(key).read_bytes)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._path(key).unlink, True)
