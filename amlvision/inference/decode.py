"""Decode client-supplied image bytes, refusing anything that is not a PNG, JPEG, TIFF or BMP file.

Pixel decoding itself is ``amlvision.data.images.load_image`` (the project-wide rule for channels,
alpha and bit depth); this module adds what a public endpoint needs first: a format allow-list by
magic number, so arbitrary Pillow plug-ins never see hostile bytes, and byte and pixel limits.
"""

from __future__ import annotations

import io
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from amlvision.data.images import DEFAULT_MAX_PIXELS, ImageReadError, decode, load_image, to_channels
from amlvision.inference.errors import InputError
from amlvision.inference.preprocess import _RESAMPLE, PreprocessConfig

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


def check_upload(data: bytes, *, name: str, max_bytes: int | None) -> None:
    """Refuse empty, oversized and unsupported uploads before any decoding work."""
    if not data:
        raise InputError(f"{name}: empty image")
    if max_bytes is not None and len(data) > max_bytes:
        raise InputError(f"{name}: {len(data):,} bytes exceeds the limit of {max_bytes:,} bytes per image")
    if sniff_format(data) is None:
        raise InputError(f"{name}: not a {'/'.join(ACCEPTED_FORMATS)} file (starts with {bytes(data[:8])!r})")


def _read_file(path: Path) -> bytes:
    """A file's bytes, or an InputError naming it."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from exc


def decode_image_bytes(
    data: bytes,
    *,
    name: str,
    channels: int,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    max_bytes: int | None = None,
) -> np.ndarray:
    """Encoded image bytes -> ``uint8 H x W x channels``; raises InputError naming ``name``."""
    check_upload(data, name=name, max_bytes=max_bytes)
    try:
        return load_image(data, channels, name=name, max_pixels=max_pixels)
    except ImageReadError as exc:
        raise InputError(str(exc)) from exc


@dataclass
class PixelBudget:
    """Pixels (width x height from each header) one request may still decode; bounds its CPU time."""

    limit: int
    used: int = 0

    def spend(self, pixels: int, name: str) -> None:
        self.used += pixels
        if self.used > self.limit:
            raise InputError(
                f"{name}: the images up to this one hold {self.used:,} pixels, over the limit of "
                f"{self.limit:,} per request; send fewer or smaller images per request"
            )


def header_pixels(data: bytes) -> int | None:
    """width x height as the header states it, without decoding; None if Pillow cannot say."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as img:
                return img.size[0] * img.size[1]
    except Exception:  # the full decode below reports what is wrong, naming the field
        return None


def decode_for_model(
    data: bytes,
    *,
    name: str,
    preprocess: PreprocessConfig,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    max_bytes: int | None = None,
    budget: PixelBudget | None = None,
) -> np.ndarray:
    """Encoded image bytes -> ``uint8 height x width x channels`` at the model's size.

    Memory stays at one image's worth whatever the batch: the image is decoded (a JPEG already
    scaled down by the decoder to no less than twice the model size, as Pillow's ``thumbnail`` does),
    converted to the model's channels and resized before the next one is touched. ``amlvision predict``
    uses this same function, so both give the same answer for the same file.
    """
    check_upload(data, name=name, max_bytes=max_bytes)
    if budget is not None:
        pixels = header_pixels(data)
        if pixels is not None and (max_pixels is None or pixels <= max_pixels):
            budget.spend(pixels, name)
    side = 2 * max(preprocess.height, preprocess.width)
    try:
        img = to_channels(decode(data, name=name, max_pixels=max_pixels, draft=(side, side)), preprocess.channels)
    except ImageReadError as exc:
        raise InputError(str(exc)) from exc
    pixels = np.asarray(preprocess.resize_image(img), dtype=np.uint8)
    return pixels[:, :, None] if pixels.ndim == 2 else pixels


_SWAPS_SIDES = (5, 6, 7, 8)  # EXIF orientations that rotate by 90 or 270 degrees


def _header_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) as the header states it, after EXIF orientation (as decode() applies it), or None."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as img:
                width, height = img.size
                return (height, width) if img.getexif().get(0x0112) in _SWAPS_SIDES else (width, height)
    except Exception:  # the full decode reports what is wrong, naming the field
        return None


def decode_for_detection(
    data: bytes,
    *,
    name: str,
    max_side: int,
    resize: str = "bilinear",
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    max_bytes: int | None = None,
    budget: PixelBudget | None = None,
) -> tuple[np.ndarray, tuple[int, int]]:
    """Encoded image bytes -> (``uint8 H x W x 3`` with its longer side at most ``max_side``, original (width, height)).

    A detection model takes any size and resizes the image itself; a larger image is scaled down here
    (a JPEG already by the decoder, to no less than the target size, then with the Pillow filter
    ``resize`` names) so memory stays at one image of about ``max_side`` pixels a side. The original
    size (after EXIF orientation) is what boxes are mapped back to.
    """
    check_upload(data, name=name, max_bytes=max_bytes)
    header = _header_size(data)
    if budget is not None and header is not None and (max_pixels is None or header[0] * header[1] <= max_pixels):
        budget.spend(header[0] * header[1], name)
    draft = None
    if header is not None and max(header) > max_side:
        target = math.ceil(min(header) * max_side / max(header))  # the shorter side after scaling down
        draft = (target, target)  # both sides at least this: orientation does not matter
    try:
        img = to_channels(decode(data, name=name, max_pixels=max_pixels, draft=draft), 3)
    except ImageReadError as exc:
        raise InputError(str(exc)) from exc
    original = header if header is not None and draft is not None else img.size
    if max(img.size) > max_side:
        ratio = max_side / max(img.size)
        size = (max(1, round(img.size[0] * ratio)), max(1, round(img.size[1] * ratio)))
        img = img.resize(size, _RESAMPLE[resize])
    return np.asarray(img, dtype=np.uint8), (int(original[0]), int(original[1]))


def decode_file_for_model(path: str | Path, *, preprocess: PreprocessConfig) -> np.ndarray:
    """Read a file and decode it exactly as a client's upload of the same bytes is decoded."""
    path = Path(path)
    data = _read_file(path)
    return decode_for_model(data, name=str(path), preprocess=preprocess)


def decode_image_file(path: str | Path, *, channels: int, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read and decode a file exactly as a client's upload of the same bytes is decoded."""
    path = Path(path)
    data = _read_file(path)
    return decode_image_bytes(data, name=str(path), channels=channels, max_pixels=max_pixels)
