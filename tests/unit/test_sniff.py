"""Content typing from magic bytes: every accepted format, and look-alikes that must be refused."""

from __future__ import annotations

import pytest

from adapters.sniff import sniff
from tests.api.postkit import png, wav


def ftyp(brand: bytes) -> bytes:
    return b"\x00\x00\x00\x18ftyp" + brand + b"\x00\x00\x02\x00" + brand + b"mp41"


def ebml(doctype: bytes) -> bytes:
    return b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\x82\x84" + doctype + b"\x42\x87\x81\x04"


OGG_PAGE = b"OggS\x00\x02" + b"\x00" * 20 + b"\x01\x1e"


@pytest.mark.parametrize(("data", "mime", "kind", "ext"), [
    (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "image/jpeg", "image", "jpg"),
    (png(), "image/png", "image", "png"),
    (b"GIF89a\x01\x00\x01\x00", "image/gif", "image", "gif"),
    (b"GIF87a\x01\x00\x01\x00", "image/gif", "image", "gif"),
    (b"RIFF\x24\x00\x00\x00WEBPVP8 ", "image/webp", "image", "webp"),
    (ftyp(b"isom"), "video/mp4", "video", "mp4"),
    (ftyp(b"mp42"), "video/mp4", "video", "mp4"),
    (ftyp(b"qt  "), "video/quicktime", "video", "mov"),
    (ftyp(b"M4A "), "audio/mp4", "audio", "m4a"),
    (ebml(b"webm"), "video/webm", "video", "webm"),
    (ebml(b"matroska"), "video/x-matroska", "video", "mkv"),
    (b"ID3\x04\x00\x00\x00\x00\x00\x00", "audio/mpeg", "audio", "mp3"),
    (b"\xff\xfb\x90\x64" + b"\x00" * 8, "audio/mpeg", "audio", "mp3"),  # MPEG-1 Layer III, 128 kbit/s, 44.1 kHz
    (b"\xff\xf3\x64\xc4" + b"\x00" * 8, "audio/mpeg", "audio", "mp3"),  # MPEG-2 Layer III
    (wav(), "audio/wav", "audio", "wav"),
    (OGG_PAGE + b"\x01vorbis\x00\x00", "audio/ogg", "audio", "ogg"),
    (OGG_PAGE + b"OpusHead\x01\x02", "audio/ogg", "audio", "ogg"),
    (OGG_PAGE + b"\x80theora\x03\x02", "video/ogg", "video", "ogv"),
    (b"fLaC\x00\x00\x00\x22", "audio/flac", "audio", "flac"),
])
def test_accepted_formats(data: bytes, mime: str, kind: str, ext: str) -> None:
    found = sniff(data)
    assert found is not None
    assert (found.mime_type, found.kind.value, found.extension) == (mime, kind, ext)


@pytest.mark.parametrize("data", [
    b"",
    b"hello world",
    b"%PDF-1.7",
    b"PK\x03\x04",  # zip / docx
    b"<svg xmlns='http://www.w3.org/2000/svg'/>",  # scripts can ride in SVG
    b"RIFF\x24\x00\x00\x00AVI LIST",
    ftyp(b"heic"),
    ftyp(b"avif"),
    ftyp(b"3gp4"),
    ebml(b"other"),
    b"\xff\xf1\x50\x80\x02\x1f\xfc",  # ADTS AAC: MPEG sync bits, but layer 00
    b"\xff\xfb\xf0\x64",  # bitrate index 1111 is invalid
    b"\xff\xfb\x9c\x64",  # sample-rate index 11 is reserved
    b"\xff\xeb\x90\x64",  # version 01 is reserved
    b"ID3\x09\x00",
    b"\x89PNG\r\n",  # truncated signature
])
def test_refused(data: bytes) -> None:
    assert sniff(data) is None
