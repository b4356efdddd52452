"""What a file is, from its first bytes: the client's filename and content type are never trusted."""

from __future__ import annotations

from dataclasses import dataclass

from persistence.enums import MediaType

# Enough for every signature below, including the EBML header's DocType and an Ogg page's first packet.
HEAD_BYTES = 64


@dataclass(frozen=True)
class Sniffed:
    kind: MediaType  # image, video or audio
    mime_type: str
    extension: str


JPEG = Sniffed(MediaType.IMAGE, "image/jpeg", "jpg")
PNG = Sniffed(MediaType.IMAGE, "image/png", "png")
GIF = Sniffed(MediaType.IMAGE, "image/gif", "gif")
WEBP = Sniffed(MediaType.IMAGE, "image/webp", "webp")
MP4 = Sniffed(MediaType.VIDEO, "video/mp4", "mp4")
MOV = Sniffed(MediaType.VIDEO, "video/quicktime", "mov")
WEBM = Sniffed(MediaType.VIDEO, "video/webm", "webm")
MKV = Sniffed(MediaType.VIDEO, "video/x-matroska", "mkv")
OGV = Sniffed(MediaType.VIDEO, "video/ogg", "ogv")
MP3 = Sniffed(MediaType.AUDIO, "audio/mpeg", "mp3")
WAV = Sniffed(MediaType.AUDIO, "audio/wav", "wav")
OGG = Sniffed(MediaType.AUDIO, "audio/ogg", "ogg")
FLAC = Sniffed(MediaType.AUDIO, "audio/flac", "flac")
M4A = Sniffed(MediaType.AUDIO, "audio/mp4", "m4a")

# What a stored file is served as: its key's extension was chosen here, from its bytes, when it was uploaded.
BY_EXTENSION = {s.extension: s for s in (JPEG, PNG, GIF, WEBP, MP4, MOV, WEBM, MKV, OGV, MP3, WAV, OGG, FLAC, M4A)}

# ISO base media "major brands". Anything else in an ftyp box (HEIF/AVIF images, 3GP, JPEG 2000, ...)
# is not a type we accept.
_AUDIO_BRANDS = frozenset({b"M4A ", b"M4B ", b"M4P ", b"F4A ", b"F4B "})
_QUICKTIME_BRANDS = frozenset({b"qt  "})
_VIDEO_BRANDS = frozenset({
    b"isom", b"iso2", b"iso3", b"iso4", b"iso5", b"iso6", b"iso8", b"iso9", b"mp41", b"mp42", b"avc1",
    b"dash", b"MSNV", b"M4V ", b"M4VH", b"M4VP", b"f4v ", b"mmp4", b"NDAS",
})


def _mpeg_audio_frame(head: bytes) -> bool:
    """An MPEG-1/2/2.5 Layer I-III frame header: 11 sync bits, then no reserved version, layer,
    bitrate or sample-rate value. (ADTS AAC shares the sync bits but has layer 00, so it is refused.)"""
    if len(head) < 4 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return False
    version = (head[1] >> 3) & 0b11
    layer = (head[1] >> 1) & 0b11
    bitrate = head[2] >> 4
    sample_rate = (head[2] >> 2) & 0b11
    return version != 0b01 and layer != 0b00 and bitrate not in (0b0000, 0b1111) and sample_rate != 0b11


def _iso_media(head: bytes) -> Sniffed | None:
    brand = head[8:12]
    if brand in _AUDIO_BRANDS:
        return M4A
    if brand in _QUICKTIME_BRANDS:
        return MOV
    if brand in _VIDEO_BRANDS:
        return MP4
    return None


def _matroska(head: bytes) -> Sniffed | None:
    if b"webm" in head:
        return WEBM
    if b"matroska" in head:
        return MKV
    return None


def sniff(data: bytes) -> Sniffed | None:
    """The accepted type `data` starts with, or None when it is none of them."""
    head = data[:HEAD_BYTES]
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head.startswith((b"GIF87a", b"GIF89a")):
        return GIF
    if head.startswith(b"RIFF") and len(head) >= 12:
        return {b"WEBP": WEBP, b"WAVE": WAV}.get(head[8:12])
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return _iso_media(head)
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return _matroska(head)
    if head.startswith(b"OggS"):
        # The first page holds the first stream's header packet: Theora means video.
        return OGV if b"\x80theora" in head else OGG
    if head.startswith(b"fLaC"):
        return FLAC
    if head.startswith(b"ID3") and len(head) >= 10 and head[3] in (2, 3, 4):
        return MP3
    if _mpeg_audio_frame(head):
        return MP3
    return None
