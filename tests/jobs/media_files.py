"""Media files made inside the tests: Pillow for images, PyAV (FFmpeg) for video and audio, all in memory."""

from __future__ import annotations

import io
import math
import struct
from typing import Any

import av
from PIL import Image


def image(width: int = 320, height: int = 180, fmt: str = "PNG") -> bytes:
    img = Image.new("RGB", (width, height), (30, 120, 200))
    for x in range(0, width, 8):
        img.putpixel((x, height // 2), (255, 255, 255))
    out = io.BytesIO()
    img.save(out, fmt)
    return out.getvalue()


def video(width: int = 64, height: int = 48, frames: int = 20, rate: int = 10) -> bytes:
    """An MP4 (MPEG-4 part 2 video) of `frames / rate` seconds."""
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            picture = Image.new("RGB", (width, height), (i * 10 % 255, 90, 160))
            frame = av.VideoFrame.from_image(picture)  # type: ignore[no-untyped-call]
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buf.getvalue()


def audio(fmt: str = "wav", codec: str = "pcm_s16le", seconds: float = 1.5, rate: int = 8000) -> bytes:
    """A 440 Hz tone."""
    buf = io.BytesIO()
    with av.open(buf, mode="w", format=fmt) as container:
        stream: Any = container.add_stream(codec, rate=rate)
        stream.layout = "mono"
        total, done = int(rate * seconds), 0
        while done < total:
            n = min(1024, total - done)
            frame = av.AudioFrame(format="s16", layout="mono", samples=n)
            frame.sample_rate = rate
            frame.planes[0].update(b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * (done + i)
                                                                                     / rate))) for i in range(n)))
            frame.pts = done
            done += n
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buf.getvalue()


def corrupt_png() -> bytes:
    """A PNG signature and header followed by garbage: typed as an image, undecodable."""
    good = image(40, 40)
    return good[:60] + bytes(range(256)) * 4


def corrupt_mp4() -> bytes:
    """The start of a real MP4 (its ftyp box says video) with the rest destroyed."""
    good = video()
    return good[:40] + b"\x00\xff" * 400
