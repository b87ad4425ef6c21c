"""Decode client-supplied image bytes, refusing anything that is not a PNG, JPEG, TIFF or BMP file.

Pixel decoding itself is ``amlvision.data.images.load_image`` (the project-wide rule for channels,
alpha and bit depth); this module adds what a public endpoint needs first: a format allow-list by
magic number, so arbitrary Pillow plug-ins never see hostile bytes, and byte and pixel limits.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from amlvision.data.images import DEFAULT_MAX_PIXELS, ImageReadError, load_image
from amlvision.inference.errors import InputError

# Magic numbers of the accepted formats (the first bytes of every valid file).
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"BM", "BMP"),
)
ACCEPTED_FORMATS = ("PNG", "JPEG", "TIFF", "BMP")


def sniff_format(data: bytes) -> str | None:
    """The accepted format ``data`` starts with, or None."""
    for magic, name in _SIGNATURES:
        if data.startswith(magic):
            return name
    return None


def decode_image_bytes(
    data: bytes,
    *,
    name: str,
    channels: int,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    max_bytes: int | None = None,
) -> np.ndarray:
    """Encoded image bytes -> ``uint8 H x W x channels``; raises InputError naming ``name``."""
    if not data:
        raise InputError(f"{name}: empty image")
    if max_bytes is not None and len(data) > max_bytes:
        raise InputError(f"{name}: {len(data):,} bytes exceeds the limit of {max_bytes:,} bytes per image")
    if sniff_format(data) is None:
        raise InputError(f"{name}: not a {'/'.join(ACCEPTED_FORMATS)} file (starts with {bytes(data[:8])!r})")
    try:
        return load_image(data, channels, name=name, max_pixels=max_pixels)
    except ImageReadError as exc:
        raise InputError(str(exc)) from exc


def decode_image_file(path: str | Path, *, channels: int, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read and decode a file exactly as a client's upload of the same bytes is decoded."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    return decode_image_bytes(data, name=str(path), channels=channels, max_pixels=max_pixels)
