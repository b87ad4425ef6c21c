"""Decode one image file into the array layout every part of amlvision agrees on.

Pillow does the decoding; this module only fixes the rules that make files from different
tools comparable: EXIF orientation applied, first page of multi-page files, and one
documented conversion to the model's channel count. It imports no torch, because the scoring
image (which has none) decodes request images with exactly this code.

Channel conversion rule (``channels`` = 1 or 3):

- 16-bit gray (``I;16*``) and 32-bit (``I``) images are scaled to 8 bits by ``v * 255 / max_of_type``
  (rounded), i.e. ``v / 257`` for 16-bit data, so full-range white stays white.
- palette (``P``) images are expanded through their palette first (with transparency to RGBA).
- alpha (``RGBA``, ``LA``, ``PA``) is composited onto black — the same thing a viewer shows over a
  black background, and what happens when CNTK's OpenCV reader drops alpha from premultiplied data.
- ``channels=3``: gray is replicated into R, G and B. ``channels=1``: colour becomes luma with
  ITU-R 601-2 weights (Pillow's ``convert("L")``).
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

ImageInput = str | Path | bytes | bytearray | memoryview | BinaryIO

# Pillow raises DecompressionBombError above 2x this many pixels and warns above it; we turn
# the warning into an error as well so a hostile file is refused, never half-decoded.
DEFAULT_MAX_PIXELS = 89_478_485

_HIGH_DEPTH_MAX = {"I;16": 65535, "I;16B": 65535, "I;16L": 65535, "I;16N": 65535, "I": 65535, "F": 1.0}


class ImageReadError(ValueError):
    """An image could not be decoded; the message names the file (or the request field)."""


def _describe(source: ImageInput, name: str | None) -> str:
    if name:
        return name
    if isinstance(source, str | Path):
        return str(source)
    return "<image bytes>"


def _open(source: ImageInput) -> Image.Image:
    if isinstance(source, bytes | bytearray | memoryview):
        return Image.open(io.BytesIO(bytes(source)))
    return Image.open(source)


def _to_8bit(img: Image.Image) -> Image.Image:
    """Scale 16/32-bit gray to 8 bits (see module docstring)."""
    top = _HIGH_DEPTH_MAX[img.mode]
    arr = np.asarray(img)
    if img.mode == "I" and arr.max(initial=0) <= 255:  # 8-bit data stored in 32-bit ints (e.g. some TIFFs)
        top = 255
    scaled = np.empty(arr.shape, dtype=np.uint8)
    # In blocks of rows: a float64 copy of a whole 4096x4096 image would cost 128 MB (issue 15, F1).
    for start in range(0, arr.shape[0], 256):
        block = arr[start : start + 256].astype(np.float64)
        scaled[start : start + 256] = np.clip(np.rint(block * (255.0 / top)), 0, 255)
    return Image.fromarray(scaled, mode="L")


def _flatten_alpha(img: Image.Image) -> Image.Image:
    base_mode = "L" if img.mode in ("LA", "La") else "RGB"
    rgba = img.convert("RGBA")
    opaque_black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
    return Image.alpha_composite(opaque_black, rgba).convert(base_mode)


GRAY_MODES = frozenset({"1", "L", "LA", "La", *_HIGH_DEPTH_MAX})


def natural_channels(mode: str) -> int:
    """1 for a gray image mode (1-bit, 8/16/32-bit gray, gray + alpha), else 3: the data's own channel count.

    The one rule for "does this data train as gray?"; ``to_channels`` converts by the same modes.
    """
    return 1 if mode in GRAY_MODES else 3


def to_channels(img: Image.Image, channels: int) -> Image.Image:
    """Convert a decoded Pillow image to 1 (L) or 3 (RGB) channels by the module's rule."""
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    if img.mode in _HIGH_DEPTH_MAX:
        img = _to_8bit(img)
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        img = _flatten_alpha(img)
    if img.mode not in ("L", "RGB"):
        img = img.convert("RGB")  # CMYK, YCbCr, 1-bit, ...
    return img.convert("L" if channels == 1 else "RGB")


def _may_have_orientation(img: Image.Image) -> bool:
    """False only when the file certainly has no EXIF: a PNG (after ``load``) without eXIf/raw-profile data.

    Parsing EXIF costs a fifth of decoding a small PNG, and most PNGs have none.
    """
    return not (img.format == "PNG" and "exif" not in img.info and "Raw profile type exif" not in img.info)


def decode(
    source: ImageInput,
    *,
    name: str | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    draft: tuple[int, int] | None = None,
) -> Image.Image:
    """Open ``source``, apply EXIF orientation and return the first page, fully loaded.

    ``draft``: let the decoder itself scale down to no less than this size (JPEG DCT scaling by
    1/2, 1/4 or 1/8; other formats ignore it), so a large photo never exists at full size in memory.
    """
    label = _describe(source, name)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            previous = Image.MAX_IMAGE_PIXELS
            Image.MAX_IMAGE_PIXELS = max_pixels
            try:
                img = _open(source)
                if max_pixels is not None and img.size[0] * img.size[1] > max_pixels:
                    raise ImageReadError(
                        f"{label}: {img.size[0]}x{img.size[1]} pixels exceeds the limit of {max_pixels}"
                    )
                img.seek(0)  # multi-page TIFF/GIF: first page
                if draft is not None:
                    img.draft(None, draft)
                img.load()
                if _may_have_orientation(img):
                    img = ImageOps.exif_transpose(img)
            finally:
                Image.MAX_IMAGE_PIXELS = previous
    except ImageReadError:
        raise
    except FileNotFoundError as exc:
        raise ImageReadError(f"{label}: file not found") from exc
    except UnidentifiedImageError as exc:  # its message shows a BytesIO repr, not the file
        raise ImageReadError(f"{label}: cannot decode image (unknown format or corrupt header)") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageReadError(f"{label}: refused as a decompression bomb ({exc})") from exc
    except Exception as exc:  # Pillow raises many types for corrupt data
        raise ImageReadError(f"{label}: cannot decode image ({type(exc).__name__}: {exc})") from exc
    return img


def load_image(
    source: ImageInput,
    channels: int = 3,
    *,
    name: str | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """Decode ``source`` into a ``uint8`` array of shape ``H x W x channels`` (RGB order)."""
    img = to_channels(decode(source, name=name, max_pixels=max_pixels), channels)
    arr = np.asarray(img, dtype=np.uint8)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return np.ascontiguousarray(arr)
