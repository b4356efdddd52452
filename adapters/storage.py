"""File storage behind one interface: a local directory (the embedded default) or an S3-compatible bucket
(`adapters.bucket`), chosen by `STORAGE_URL`.

Two stores per deployment: the public one (media uploads, thumbnails, posters, profile images — served at
`/uploads/<key>`) and the private one (report files, served only to their owner). Keys are the same on every
backend and the URLs kept in the database (`/uploads/<key>`) name the app, never the bucket: a deployment can
move its files into a bucket (`conversme storage migrate`) without rewriting a row.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from adapters.sniff import BY_EXTENSION

# What a stored file is served as, by its key's extension: the sniffed media types (a file is stored under the
# extension of the type its bytes were sniffed as) and the report formats. Anything else goes out as an
# attachment, never rendered (see `server.uploads`).
REPORT_TYPES = {"html": "text/html; charset=utf-8", "csv": "text/csv; charset=utf-8"}


def served_type(key: str, *, private: bool = False) -> str | None:
    """The type the file is served as: a sniffed media type, or (private store only: the report files, which
    the app itself wrote) a report format; None for anything else."""
    ext = key.rsplit(".", 1)[-1].lower() if "." in key.rsplit("/", 1)[-1] else ""
    sniffed = BY_EXTENSION.get(ext)
    if sniffed is not None:
        return sniffed.mime_type
    return REPORT_TYPES.get(ext) if private else None


class Storage(Protocol):
    async def save(self, key: str, data: bytes, *, disposition: str | None = None) -> str:
        """Store `data` under `key` (`disposition`: the Content-Disposition a bucket serves it with); return
        the public URL."""

    async def read(self, key: str) -> bytes:
        """The file's bytes; FileNotFoundError when there is none."""

    async def delete(self, key: str) -> None:
        """Remove the file; nothing happens when there is none."""

    def url_for(self, key: str) -> str: ...

    def stored_keys(self, prefix: str = "") -> AsyncIterator[str]:
        """Every stored key under `prefix` (for `conversme storage migrate` and the tests)."""


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

    async def save(self, key: str, data: bytes, *, disposition: str | None = None) -> str:
        await asyncio.to_thread(self._write, key, data)
        return self.url_for(key)

    async def read(self, key: str) -> bytes:
        return await asyncio.to_thread(self._path(key).read_bytes)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._path(key).unlink, True)

    def _list(self, prefix: str) -> list[str]:
        if not self.root.is_dir():
            return []
        found = (p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if p.is_file())
        return sorted(k for k in found if k.startswith(prefix) and not k.endswith(".part"))

    async def stored_keys(self, prefix: str = "") -> AsyncIterator[str]:
        for key in await asyncio.to_thread(self._list, prefix):
            yield key


@dataclass(frozen=True)
class StorageConfig:
    """Where files live, from the settings (`STORAGE_URL` and the AWS tools' variables). An empty `url` is the
    local directories; `s3://BUCKET[/PREFIX]` a bucket, with uploads under `PREFIX/uploads/` and the private
    report files under `PREFIX/reports/`."""

    url: str = ""
    upload_dir: Path = Path("data/uploads")
    reports_dir: Path = Path("data/reports")
    upload_url_prefix: str = "/uploads"
    endpoint: str = ""  # AWS_ENDPOINT_URL_S3 (MinIO, R2, Tigris); empty: AWS S3 in `region`
    access_key_id: str = ""
    secret_access_key: str = ""
    region: str = ""
    presign: bool = True  # downloads: redirect to a presigned URL (false: the app proxies the bytes)
    presign_seconds: int = 300
    presign_endpoint: str = ""  # the endpoint presigned URLs name, when clients reach the bucket by another

    @property
    def is_bucket(self) -> bool:
        return self.url.startswith("s3://")

    def bucket_and_prefix(self) -> tuple[str, str]:
        bucket, _, prefix = self.url.removeprefix("s3://").partition("/")
        return bucket, prefix.strip("/")


REPORTS_URL_PREFIX = "/reports/files"


def open_storages(cfg: StorageConfig) -> tuple[Storage, Storage]:
    """(public uploads, private reports) for this configuration."""
    if cfg.is_bucket:
        from adapters.bucket import BucketStorage

        return (BucketStorage(cfg, "uploads", cfg.upload_url_prefix),
                BucketStorage(cfg, "reports", REPORTS_URL_PREFIX, private=True))
    return LocalStorage(cfg.upload_dir, cfg.upload_url_prefix), LocalStorage(cfg.reports_dir, REPORTS_URL_PREFIX)
