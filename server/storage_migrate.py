"""`conversme storage migrate`: copy the files of the local directories (DATA_DIR/uploads, DATA_DIR/reports, or
UPLOAD_DIR/REPORTS_DIR) into the bucket STORAGE_URL names, under the same keys, so the URLs in the database keep
working once the instances start with STORAGE_URL set. Idempotent: an object already there with the same size is
left alone, so an interrupted run is simply run again. Local files are never removed."""

from __future__ import annotations

from dataclasses import dataclass

from adapters.bucket import BucketStorage
from adapters.storage import LocalStorage, open_storages
from server.settings import Settings


@dataclass
class Counts:
    copied: int = 0
    present: int = 0
    bytes: int = 0

    def line(self, area: str) -> str:
        return f"{area}: {self.copied} copied ({self.bytes} bytes), {self.present} already in the bucket"


async def copy_missing(source: LocalStorage, target: BucketStorage) -> Counts:
    counts = Counts()
    async for key in source.stored_keys():
        data = await source.read(key)
        if await target.exists(key, len(data)):
            counts.present += 1
            continue
        await target.save(key, data)
        counts.copied += 1
        counts.bytes += len(data)
    return counts


async def migrate_to_bucket(settings: Settings) -> dict[str, Counts]:
    cfg = settings.storage
    if not cfg.is_bucket:
        raise ValueError("STORAGE_URL must name the bucket to copy into (s3://BUCKET[/PREFIX])")
    uploads, reports = open_storages(cfg)
    assert isinstance(uploads, BucketStorage) and isinstance(reports, BucketStorage)
    return {"uploads": await copy_missing(LocalStorage(cfg.upload_dir), uploads),
            "reports": await copy_missing(LocalStorage(cfg.reports_dir), reports)}
