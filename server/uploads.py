"""The HTTP side of uploads: one file read from a multipart body, never more than the upload limit;
removing stored files only after the transaction that deleted their rows has committed; and serving them."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from starlette.background import BackgroundTask
from starlette.datastructures import Headers, UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.staticfiles import NotModifiedResponse, PathLike, StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.bucket import BucketStorage
from adapters.sniff import BY_EXTENSION
from adapters.storage import Storage
from handlers.context import Outcome
from handlers.media.records import FileCleanup
from handlers.schema import to_wire
from persistence.errors import BadRequest, Invalid, PayloadTooLarge, UnsupportedMediaType
from server.responses import ORJSONResponse

log = logging.getLogger("conversme.uploads")

# Room in the body beside the file: boundaries, part headers and the small text fields.
FORM_OVERHEAD = 256 * 1024
MAX_FIELD_BYTES = 8 * 1024
MAX_FIELDS = 20


@dataclass(frozen=True)
class ReceivedFile:
    data: bytes
    filename: str | None
    fields: dict[str, str]


def _too_large(max_bytes: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"the upload is larger than the limit of {max_bytes} bytes")


def _capped(receive: Receive, limit: int, max_bytes: int) -> Receive:
    """Count the body as it streams in, so a body without (or lying about) Content-Length stops at the limit
    instead of being spooled to disk whole."""
    seen = 0

    async def capped() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise _too_large(max_bytes)
        return message

    return capped


async def read_file(request: Request, max_bytes: int) -> ReceivedFile:
    """The multipart `file` field (at most `max_bytes`) and the text fields beside it."""
    declared = request.headers.get("content-length", "").strip()
    if declared.isdigit() and int(declared) > max_bytes + FORM_OVERHEAD:
        raise _too_large(max_bytes)
    if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        raise UnsupportedMediaType("send the file as multipart/form-data in a field named `file`")
    capped = Request(request.scope, _capped(request.receive, max_bytes + FORM_OVERHEAD, max_bytes))
    try:
        async with capped.form(max_files=1, max_fields=MAX_FIELDS, max_part_size=MAX_FIELD_BYTES) as form:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise Invalid("a file is required in the multipart field `file`")
            data = await upload.read(max_bytes + 1)
            if len(data) > max_bytes:
                raise _too_large(max_bytes)
            fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
            # PostgreSQL refuses NUL in text: the name and the fields are stored, so refuse it up front.
            if any("\x00" in text for text in (upload.filename or "", *fields, *fields.values())):
                raise Invalid("the file name and form fields may not contain a NUL character")
            return ReceivedFile(data, upload.filename, fields)
    except HTTPException as exc:  # Starlette's own answer to a malformed multipart body
        raise BadRequest(f"malformed multipart body: {exc.detail}") from None
    except MultiPartException as exc:
        raise BadRequest(f"malformed multipart body: {exc.message}") from None
    except ClientDisconnect:
        raise BadRequest("the client went away before the upload finished") from None


async def remove_files(storage: Storage, keys: Sequence[str]) -> None:
    for key in keys:
        try:
            await storage.delete(key)
        except Exception:
            # The row is gone and committed; an orphaned file is harmless and can be swept later.
            log.warning("could not remove stored file %s", key, exc_info=True)


def respond_then_remove(storage: Storage, outcome: Outcome[FileCleanup[Any]], *, status: int = 200,
                        response: Any = None) -> Outcome[Response]:
    """Turn a handler's removal into the HTTP response, with the files removed as a background task.
    The route machinery commits before it sends a response, so the files go only after the commit;
    if the commit fails no response is sent and the files stay."""
    removal = outcome.value
    task = BackgroundTask(remove_files, storage, list(removal.files)) if removal.files else None
    if status == 204:
        reply: Response = Response(status_code=204, background=task)
    else:
        reply = ORJSONResponse(to_wire(removal.value, response), status_code=status, background=task)
    return Outcome(reply, publish=outcome.publish, remove=outcome.remove, enqueue=outcome.enqueue)


class UploadedFiles(StaticFiles):
    """Stored files, each served as the type its bytes were sniffed as at upload (the extension of its key says
    which) instead of what `mimetypes` guesses. Anything else in the directory (placed there by hand, or left
    by an older version) goes out as an attachment: the browser saves it, never renders it on this origin.
    (The security headers middleware adds nosniff, so a GIF/HTML polyglot stays a GIF.)"""

    def file_response(self, full_path: PathLike, stat_result: os.stat_result, scope: Scope,
                      status_code: int = 200) -> Response:
        sniffed = BY_EXTENSION.get(PurePath(full_path).suffix[1:].lower())
        if sniffed is not None:
            response = FileResponse(full_path, status_code, media_type=sniffed.mime_type, stat_result=stat_result)
        else:
            response = FileResponse(full_path, status_code, headers={"Content-Disposition": "attachment"},
                                    media_type="application/octet-stream", stat_result=stat_result)
        if self.is_not_modified(response.headers, Headers(scope=scope)):
            return NotModifiedResponse(response.headers)
        return response


def _span(header: str, size: int) -> tuple[int, int] | None:
    """[start, end) of a single `bytes=START-[END]` range within `size`; None for a header asking for anything
    else (answered with the whole file, as RFC 9110 allows). ValueError when it lies outside the file."""
    unit, _, spec = header.partition("=")
    first, dash, last = spec.strip().partition("-")
    if unit.strip().lower() != "bytes" or not dash or not first.isdigit() or (last and not last.isdigit()):
        return None
    start, end = int(first), min(int(last) + 1 if last else size, size)
    if start >= end:
        raise ValueError("range not satisfiable")
    return start, end


async def _proxied(storage: BucketStorage, key: str, range_header: str | None, headers: dict[str, str]) -> Response:
    span, status, extra = None, 200, {"Accept-Ranges": "bytes"}
    if range_header:
        size = await storage.size(key)
        try:
            span = _span(range_header, size)
        except ValueError:
            return Response(status_code=416, headers={"Content-Range": f"bytes */{size}"})
        if span is not None:  # video seeking, resumed downloads
            status, extra["Content-Range"] = 206, f"bytes {span[0]}-{span[1] - 1}/{size}"
    opened = await storage.open(key, span)
    served = {"Content-Length": str(opened.size), "Content-Type": opened.content_type or "application/octet-stream",
              **extra}
    if opened.disposition:
        served["Content-Disposition"] = opened.disposition
    return StreamingResponse(opened.chunks, status_code=status, headers={**served, **headers})


async def from_bucket(storage: BucketStorage, key: str, headers: dict[str, str] | None = None,
                      range_header: str | None = None) -> Response:
    """A stored object as the answer to a download the caller may make: a redirect to a short-lived presigned URL
    (the bucket serves it with the type and disposition it was stored with), or — presigning off — its bytes
    proxied with `headers` on top. FileNotFoundError when there is no such object (proxied only: a presigned URL
    of a missing object is the bucket's 404)."""
    if storage.presign:
        url = await storage.signed_url(key)
        # The browser may reuse the redirect for a while, never past the URL's own life.
        age = min(60, int(storage.presign_for.total_seconds()) // 2)
        cache = (headers or {}).get("Cache-Control", f"private, max-age={age}")
        return RedirectResponse(url, status_code=307, headers={"Cache-Control": cache})
    return await _proxied(storage, key, range_header, headers or {})


class BucketFiles:
    """The uploads mount when files live in a bucket: `GET /uploads/<key>` answers as the local mount does (no
    sign-in: the key is the secret, as before) by redirect or proxy (`from_bucket`)."""

    def __init__(self, storage: BucketStorage) -> None:
        self.storage = storage

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self._answer(scope)
        await response(scope, receive, send)

    async def _answer(self, scope: Scope) -> Response:
        if scope["method"] not in ("GET", "HEAD"):
            return PlainTextResponse("Method Not Allowed", status_code=405, headers={"Allow": "GET, HEAD"})
        # Under a Mount the path is the whole request path; the mount's own part is in root_path.
        path, root = str(scope["path"]), str(scope.get("root_path", ""))
        key = (path[len(root):] if root and path.startswith(root) else path).lstrip("/")
        parts = key.split("/")
        if not key or any(p in ("", ".", "..") for p in parts):
            return PlainTextResponse("Not Found", status_code=404)
        try:
            return await from_bucket(self.storage, key, range_header=Headers(scope=scope).get("range"))
        except FileNotFoundError:
            return PlainTextResponse("Not Found", status_code=404)


def uploads_app(storage: Storage, directory: PathLike) -> ASGIApp:
    """What serves `/uploads`: the bucket's files, or the local directory's."""
    if isinstance(storage, BucketStorage):
        return BucketFiles(storage)
    return UploadedFiles(directory=directory, check_dir=False)
