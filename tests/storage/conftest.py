"""Fixtures of the storage tests: the S3 server process, and the app on either backend."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from adapters.storage import Storage
from server.app import create_app
from server.state import AppState
from tests.conftest import make_settings
from tests.storage.s3server import S3Server, start_s3_server


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    server = start_s3_server(tmp_path_factory.mktemp("moto"))
    try:
        yield server
    finally:
        server.stop()


@dataclass
class FilesApp:
    """The app (SQLite, jobs in process) on one storage backend."""

    kind: str  # local | s3 (presigned redirects) | s3-proxy
    app: Starlette
    client: httpx.AsyncClient
    s3: S3Server | None
    bucket: str | None

    @property
    def state(self) -> AppState:
        state: AppState = self.app.state.conversme
        return state

    @property
    def storage(self) -> Storage:
        return self.state.storage

    async def stored(self, prefix: str = "") -> list[str]:
        return [k async for k in self.storage.stored_keys(prefix)]

    async def fetch(self, url: str, headers: dict[str, str] | None = None) -> httpx.Response:
        """GET a download as a browser would: through the app, then to the bucket when the app redirects."""
        r = await self.client.get(url, headers=headers)
        if r.status_code != 307:
            return r
        assert self.kind == "s3", f"{self.kind} redirected"
        location = r.headers["location"]
        assert self.s3 is not None and location.startswith(f"{self.s3.endpoint}/{self.bucket}/")
        assert "X-Amz-Signature=" in location and "X-Amz-Expires=" in location
        # What a browser sends again after a redirect to another origin: never the Authorization header.
        again = {k: v for k, v in (headers or {}).items() if k.lower() != "authorization"}
        async with httpx.AsyncClient(timeout=30) as direct:
            return await direct.get(location, headers=again)


@pytest.fixture(params=["local", "s3", "s3-proxy"])
async def files_app(request: pytest.FixtureRequest, tmp_path: Path,
                    s3_server: S3Server) -> AsyncIterator[FilesApp]:
    overrides: dict[str, Any] = {}
    bucket = None
    if request.param != "local":
        bucket = s3_server.new_bucket()
        cfg = s3_server.config(bucket, "app")
        overrides = dict(storage_url=cfg.url, aws_endpoint_url_s3=cfg.endpoint, aws_access_key_id=cfg.access_key_id,
                         aws_secret_access_key=cfg.secret_access_key, aws_region=cfg.region,
                         storage_presign=request.param == "s3")
    settings = make_settings(f"sqlite:///{tmp_path / 'files.db'}", tmp_path, auto_migrate=True,
                             reports_dir=tmp_path / "reports", **overrides)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield FilesApp(request.param, app, client, s3_server if bucket else None, bucket)
