"""REST routes: media items, file uploads and profile images."""

from __future__ import annotations

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response

from handlers.context import Outcome
from handlers.media import records as media
from handlers.media import uploads
from handlers.media.records import MediaOut
from handlers.media.uploads import MessageOut, ProfileImageOut, UploadFields, UploadOut
from server import errors
from server.routing import ApiRouter, Call
from server.state import AppState
from server.uploads import ReceivedFile, read_file, respond_then_remove

router = ApiRouter("media")


@router.get("/media/{media_id}")
async def get_media(call: Call) -> MediaOut:
    """One media item whose post or event the caller may see (or that they created)."""
    return await media.get_media(call.ctx, call.id("media_id"))


@router.delete("/media/{media_id}", response=MessageOut, status=200)
async def delete_media(call: Call) -> Outcome[Response]:
    """Delete a media item (creator only); its stored file is removed after the commit."""
    outcome = await uploads.delete_media(call.ctx, call.id("media_id"))
    return respond_then_remove(call.state.storage, outcome, status=200, response=MessageOut)


async def receive_file(request: Request, state: AppState) -> ReceivedFile:
    return await read_file(request, state.limits.max_upload_bytes)


@router.post("/media/upload", raw_body=True, prepare=receive_file, status=201)
async def upload_media(call: Call[None, None, ReceivedFile]) -> Outcome[UploadOut]:
    """Upload one file (multipart `file`, plus optional title, description, eventId, postId); typed by content."""
    received = call.prepared
    try:
        fields = UploadFields.model_validate(received.fields)
    except ValidationError as exc:
        raise errors.validation_errors(exc, "form") from None
    return await uploads.upload_media(call.ctx, call.state.storage, received.data, received.filename, fields)


@router.post("/media/upload/profile", raw_body=True, prepare=receive_file, response=ProfileImageOut, status=200)
async def upload_profile_image(call: Call[None, None, ReceivedFile]) -> Outcome[Response]:
    """Upload an image (multipart `file`) and make it the caller's profile image."""
    received = call.prepared
    outcome = await uploads.upload_profile_image(call.ctx, call.state.storage, received.data)
    return respond_then_remove(call.state.storage, outcome, status=200, response=ProfileImageOut)
