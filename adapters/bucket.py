"""Files in an S3-compatible bucket (AWS S3, MinIO, Cloudflare R2, Tigris), through obstore.

Every object is written whole by one PUT (a reader never sees half a file) with the Content-Type it is served
as (`adapters.storage.served_type`; anything else as an attachment), so a presigned download needs no headers
of ours. Each store keeps to its area of the bucket (`PREFIX/uploads/`, `PREFIX/reports/`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

import obstore
from obstore.store import S3Store

from adapters.storage import StorageConfig, served_type

if TYPE_CHECKING:
    from obstore import Attributes
    from obstore.store import S3Config

# Chunks a proxied download is streamed in: enough to keep the socket busy, small enough to stay out of memory.
STREAM_CHUNK = 256 * 1024


@dataclass(frozen=True)
class Opened:
    """A stored object being read: its size, the headers it was stored with, and its bytes as they arrive."""

    size: int
    content_type: str | None
    disposition: str | None
    chunks: AsyncIterator[bytes]


def _store(cfg: StorageConfig, prefix: str, endpoint: str) -> S3Store:
    bucket, root = cfg.bucket_and_prefix()
    config: S3Config = {}
    if endpoint:
        config["endpoint"] = endpoint
    if cfg.access_key_id:
        config["access_key_id"] = cfg.access_key_id
        config["secret_access_key"] = cfg.secret_access_key
    if cfg.region:
        config["region"] = cfg.region
    return S3Store(bucket, prefix="/".join(p for p in (root, prefix) if p), config=config,
                   client_options={"allow_http": endpoint.startswith("http://")})


async def _chunks(result: obstore.GetResult) -> AsyncIterator[bytes]:
    async for chunk in result.stream(min_chunk_size=STREAM_CHUNK):
        yield bytes(chunk)


class BucketStorage:
    def __init__(self, cfg: StorageConfig, area: str, url_prefix: str, *, private: bool = False) -> None:
        self.url_prefix = url_prefix.rstrip("/")
        self.private = private
        self.presign = cfg.presign
        self.presign_for = timedelta(seconds=cfg.presign_seconds)
        self.store = _store(cfg, area, cfg.endpoint)
        # Signing is local (no request): a store configured with the endpoint clients reach signs their URLs.
        public = cfg.presign_endpoint or cfg.endpoint
        self.signer = self.store if public == cfg.endpoint else _store(cfg, area, public)

    def url_for(self, key: str) -> str:
        return f"{self.url_prefix}/{key}"

    async def save(self, key: str, data: bytes, *, disposition: str | None = None) -> str:
        mime = served_type(key, private=self.private)
        attributes: Attributes = {"Content-Type": mime or "application/octet-stream"}
        if disposition is not None or mime is None:
            attributes["Content-Disposition"] = disposition or "attachment"
        await obstore.put_async(self.store, key, data, attributes=attributes)
        return self.url_for(key)

    async def read(self, key: str) -> bytes:
        result = await obstore.get_async(self.store, key)  # FileNotFoundError when missing
        return bytes(await result.bytes_async())

    async def delete(self, key: str) -> None:
        await obstore.delete_async(self.store, key)  # S3 answers a missing key as deleted

    async def stored_keys(self, prefix: str = "") -> AsyncIterator[str]:
        async for batch in obstore.list(self.store, prefix or None, chunk_size=1000):
            for meta in batch:
                yield meta["path"]

    async def exists(self, key: str, size: int) -> bool:
        try:
            meta = await obstore.head_async(self.store, key)
        except FileNotFoundError:
            return False
        return meta["size"] == size

    async def signed_url(self, key: str) -> str:
        """A short-lived GET URL for `key` (the caller has checked access)."""
        return await obstore.sign_async(self.signer, "GET", key, self.presign_for)

    async def size(self, key: str) -> int:
        """FileNotFoundError when missing."""
        return (await obstore.head_async(self.store, key))["size"]

    async def open(self, key: str, span: tuple[int, int] | None = None) -> Opened:
        """The object (or the bytes `span` = [start, end) of it) for proxying, presigning off; FileNotFoundError
        when missing."""
        result = await obstore.get_async(self.store, key, options={"range": span} if span else None)
        attrs = result.attributes
        size = span[1] - span[0] if span else result.meta["size"]
        return Opened(size, attrs.get("Content-Type"), attrs.get("Content-Disposition"), _chunks(result))
