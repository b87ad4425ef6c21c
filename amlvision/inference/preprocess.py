"""Turn decoded images or client arrays into the model's input tensor, per ``preprocess.json``.

One implementation for every caller (``amlvision predict``, score.py, ``amlvision call --as array``),
so a file gives the same tensor, and so the same answer, whichever way it reaches the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from amlvision.inference.errors import InputError
from amlvision.model_dir import RESIZE_FILTERS, Preprocess

_RESAMPLE = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "box": Image.Resampling.BOX,
    "area": Image.Resampling.BOX,
    "hamming": Image.Resampling.HAMMING,
}
assert set(_RESAMPLE) == set(RESIZE_FILTERS), "every resize name of the contract needs a Pillow filter"


@dataclass(frozen=True)
class PreprocessConfig(Preprocess):
    """``preprocess.json`` (the schema of :class:`amlvision.model_dir.Preprocess`) plus the image operations.

    Read it with ``PreprocessConfig.load(path)`` / ``from_dict(raw)``; the fields, versions and
    validation are the model directory contract's, so there is one schema for writers and readers.
    """

    def resize_image(self, image: Image.Image) -> Image.Image:
        """Resize one decoded Pillow image to the model size with the configured interpolation."""
        if image.size == (self.width, self.height):
            return image
        return image.resize((self.width, self.height), _RESAMPLE[self.resize])

    def resize_pixels(self, image: np.ndarray) -> np.ndarray:
        """Resize one ``uint8 HxWxC`` image to the model size with the configured interpolation."""
        if image.shape[0] == self.height and image.shape[1] == self.width:
            return image
        squeezed = image[:, :, 0] if image.shape[2] == 1 else image
        out = np.asarray(self.resize_image(Image.fromarray(squeezed)), dtype=np.uint8)
        return out[:, :, None] if out.ndim == 2 else out

    def pixels_nchw(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Resize decoded ``uint8 HxWxC`` images and stack them as float32 NCHW in 0-255 units."""
        batch = np.empty((len(images), *self.chw), dtype=np.float32)
        for i, image in enumerate(images):
            if image.ndim != 3 or image.shape[2] != self.channels:
                raise InputError(f"image {i}: expected H x W x {self.channels} pixels, got shape {image.shape}")
            batch[i] = self.resize_pixels(image).transpose(2, 0, 1)
        return batch

    def normalise(self, pixels_nchw: np.ndarray) -> np.ndarray:
        """Apply ``(pixel - mean) / std`` per channel to a float32 NCHW batch in 0-255 units."""
        mean = np.asarray(self.mean, dtype=np.float32).reshape(1, -1, 1, 1)
        std = np.asarray(self.std, dtype=np.float32).reshape(1, -1, 1, 1)
        return ((pixels_nchw - mean) / std).astype(np.float32, copy=False)

    def images_to_input(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Decoded images -> model input tensor (the one path used by predict and score.py)."""
        return self.normalise(self.pixels_nchw(images))

    def array_to_input(self, data: object, *, layout: str | None = None, normalized: bool = False) -> np.ndarray:
        """A client's array (one image or a batch, NCHW or NHWC) -> model input tensor.

        ``data`` is in 0-255 pixel units unless ``normalized`` is true, in which case it is taken
        as already ``(pixel - mean) / std`` and passed through. Arrays must already have the model's
        height and width: resizing is for encoded images, where the interpolation is well defined.
        """
        array = _as_float32(data)
        if array.ndim == 3:
            array = array[None]
        if array.ndim != 4:
            raise InputError(
                f"'data' must be one image (3 dimensions) or a batch (4 dimensions); got {array.ndim} "
                f"dimensions with shape {list(array.shape)}"
            )
        layout = self._detect_layout(array.shape, layout)
        if layout == "NHWC":
            array = array.transpose(0, 3, 1, 2)
        if array.shape[1:] != self.chw:
            c, h, w = self.chw
            raise InputError(
                f"'data' has shape {list(array.shape)} after reading it as {layout}; the model needs "
                f"[N, {c}, {h}, {w}] (NCHW) or [N, {h}, {w}, {c}] (NHWC)"
            )
        if array.shape[0] == 0:
            raise InputError("'data' holds no images")
        if not np.isfinite(array).all():
            raise InputError("'data' contains NaN or infinite values")
        if normalized:
            return np.ascontiguousarray(array)
        low, high = float(array.min()), float(array.max())
        if low < 0.0 or high > 255.0:
            raise InputError(
                f"'data' values range from {low:g} to {high:g}, outside 0-255 pixel units; "
                'send raw pixels, or set "normalized": true if you already applied (pixel - mean) / std'
            )
        return self.normalise(np.ascontiguousarray(array))

    def _detect_layout(self, shape: tuple[int, ...], layout: str | None) -> str:
        if layout is not None:
            layout = str(layout).upper()
            if layout not in ("NCHW", "NHWC"):
                raise InputError(f'\'layout\' must be "NCHW" or "NHWC", got {layout[:20]!r}')
            return layout
        c = self.channels
        nchw, nhwc = shape[1] == c, shape[3] == c
        if nchw and nhwc and shape[1:] != self.chw:
            # e.g. C x H x C: the sizes decide; a truly ambiguous shape defaults to NCHW.
            return "NHWC" if shape[1:3] == (self.height, self.width) else "NCHW"
        return "NHWC" if nhwc and not nchw else "NCHW"


def _as_float32(data: object) -> np.ndarray:
    """Convert nested JSON lists of numbers to float32, refusing ragged lists, strings and booleans."""
    if isinstance(data, np.ndarray):
        array = data
    else:
        try:
            array = np.asarray(data)
        except (ValueError, OverflowError) as exc:  # ragged nesting, numbers beyond any dtype
            raise InputError(f"'data' is not a rectangular array of numbers ({exc})") from exc
    if array.dtype == object:
        raise InputError(
            "'data' is not a rectangular array of numbers (rows of different lengths, or numbers out of range?)"
        )
    if array.dtype.kind not in "iuf":
        kind = {"b": "booleans", "U": "strings", "S": "bytes"}.get(array.dtype.kind, str(array.dtype))
        raise InputError(f"'data' must hold numbers (float32 pixel values), got {kind}")
    return array.astype(np.float32, copy=False)
