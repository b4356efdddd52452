"""Reading a stored media file for real: Pillow for images, PyAV (FFmpeg) for video and audio.

`analyze(kind, data)` is pure and synchronous (run it in a thread): it decodes the file, measures it and
renders the derived images in memory, or raises `Unreadable` with a reason a user can read. Nothing is
written anywhere here, so a failure leaves nothing behind.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from typing import Any

import av
from PIL import Image, ImageOps

from persistence.enums import MediaType

THUMB_SIZE = (320, 320)
POSTER_SIZE = (1280, 1280)
MAX_PIXELS = 60_000_000  # refuse decompression bombs instead of allocating gigabytes
DECODE_PACKETS = 64  # enough decoded audio to know the stream is not garbage


class Unreadable(Exception):
    """The file is corrupt, truncated, or not what its bytes claimed to be."""


@dataclass
class Analysis:
    width: int | None = None
    height: int | None = None
    duration: float | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    thumbnail: bytes | None = None  # JPEG
    poster: bytes | None = None  # JPEG, video only

    @property
    def aspect_ratio(self) -> str | None:
        if not self.width or not self.height:
            return None
        g = math.gcd(self.width, self.height)
        return f"{self.width // g}:{self.height // g}"


def clock(seconds: float) -> str:
    """`m:ss` (or `h:mm:ss`), as players show it."""
    total = round(seconds)
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _jpeg(image: Image.Image, size: tuple[int, int]) -> bytes:
    copy = image.convert("RGB")
    copy.thumbnail(size)
    out = io.BytesIO()
    copy.save(out, "JPEG", quality=82, optimize=True)
    return out.getvalue()


def _image(data: bytes) -> Analysis:
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        with Image.open(io.BytesIO(data)) as probe:
            probe.verify()  # structure and checksums, without decoding
        with Image.open(io.BytesIO(data)) as image:
            image.load()  # the pixels: a truncated file fails here
            upright = ImageOps.exif_transpose(image) or image
            width, height = upright.size
            frames = int(getattr(image, "n_frames", 1))
            thumb = _jpeg(upright, THUMB_SIZE)
            fmt = image.format
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise Unreadable(f"the image is larger than {MAX_PIXELS} pixels") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise Unreadable(f"the image cannot be decoded: {exc}") from None
    meta: dict[str, Any] = {"width": width, "height": height, "format": fmt}
    if frames > 1:
        meta["frames"] = frames
    return Analysis(width=width, height=height, metadata=meta, thumbnail=thumb)


def _duration(container: Any, stream: Any) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return float(container.duration) / av.time_base
    return None


def _audio_info(stream: Any) -> dict[str, Any]:
    ctx = stream.codec_context
    return {"audioCodec": ctx.name, "sampleRate": ctx.sample_rate, "channels": ctx.channels}


def _video(data: bytes) -> Analysis:
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if not container.streams.video:
                raise Unreadable("the file has no video stream")
            stream = container.streams.video[0]
            frame = next(container.decode(stream), None)
            if frame is None:
                raise Unreadable("the video has no decodable frame")
            poster = frame.to_image()  # type: ignore[no-untyped-call]
            width, height = frame.width, frame.height
            meta: dict[str, Any] = {"width": width, "height": height, "videoCodec": stream.codec_context.name,
                                    "container": container.format.name}
            if stream.average_rate:
                meta["frameRate"] = round(float(stream.average_rate), 3)
            if container.streams.audio:
                meta.update(_audio_info(container.streams.audio[0]))
            duration = _duration(container, stream)
    except av.FFmpegError as exc:
        raise Unreadable(f"the video cannot be decoded: {exc}") from None
    if duration is not None:
        meta["durationSeconds"] = round(duration, 3)
    return Analysis(width=width, height=height, duration=duration, metadata=meta,
                    thumbnail=_jpeg(poster, THUMB_SIZE), poster=_jpeg(poster, POSTER_SIZE))


def _audio(data: bytes) -> Analysis:
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if not container.streams.audio:
                raise Unreadable("the file has no audio stream")
            stream = container.streams.audio[0]
            decoded = 0
            for packet in container.demux(stream):
                decoded += len(packet.decode())
                if decoded >= DECODE_PACKETS:
                    break
            if decoded == 0:
                raise Unreadable("the audio has no decodable samples")
            meta: dict[str, Any] = {**_audio_info(stream), "container": container.format.name}
            duration = _duration(container, stream)
    except av.FFmpegError as exc:
        raise Unreadable(f"the audio cannot be decoded: {exc}") from None
    if duration is not None:
        meta["durationSeconds"] = round(duration, 3)
    return Analysis(duration=duration, metadata=meta)


def analyze(kind: MediaType, data: bytes) -> Analysis:
    if kind is MediaType.IMAGE:
        return _image(data)
    if kind is MediaType.VIDEO:
        return _video(data)
    if kind is MediaType.AUDIO:
        return _audio(data)
    raise Unreadable(f"{kind.value} items have no file to process")
