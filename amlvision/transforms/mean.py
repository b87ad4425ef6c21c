"""CNTK's ``mean`` transform: subtract a mean image read from an OpenCV XML file.

The file is what CNTK's CIFAR-10 scripts write and ``cv::FileStorage`` reads::

    <opencv_storage>
      <Channel>3</Channel><Row>32</Row><Col>32</Col>
      <MeanImg type_id="opencv-matrix"><rows>1</rows><cols>3072</cols><dt>f</dt>
        <data>...3072 numbers...</data></MeanImg>
    </opencv_storage>

``data`` holds the image in OpenCV order: rows, then columns, then **BGR** channels. amlvision's
pixels are RGB ``C x H x W`` (docs/CONTRACTS.md), so the channels are reversed on reading and on
writing; the arithmetic is the same as CNTK's (``pixel - mean`` in 0-255 units, float32).
"""

from __future__ import annotations

import random
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import torch

from amlvision.transforms.base import ImageTransform

_DTYPES = {"f": np.float32, "d": np.float64, "u": np.uint8, "i": np.int32}


class MeanFileError(ValueError):
    """A mean file is missing, malformed, or does not fit the images."""


def _int_field(root: ET.Element, name: str, path: Path) -> int:
    node = root.find(name)
    if node is None or not (node.text or "").strip():
        raise MeanFileError(f"{path}: missing <{name}>")
    try:
        return int(node.text.strip())
    except ValueError:
        raise MeanFileError(f"{path}: <{name}> is not an integer: {node.text.strip()!r}") from None


def read_mean_file(path: str | Path) -> np.ndarray:
    """The mean image of an OpenCV XML mean file as float32 ``C x H x W``, RGB."""
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except FileNotFoundError:
        raise MeanFileError(f"{path}: mean file not found") from None
    except ET.ParseError as exc:
        raise MeanFileError(f"{path}: not valid XML ({exc})") from None
    channels, rows, cols = (_int_field(root, name, path) for name in ("Channel", "Row", "Col"))
    matrix = root.find("MeanImg")
    if matrix is None or matrix.find("data") is None:
        raise MeanFileError(f"{path}: missing <MeanImg> matrix with <data>")
    dt = (matrix.findtext("dt") or "f").strip()
    if dt[-1:] not in _DTYPES:
        raise MeanFileError(f"{path}: unsupported matrix element type <dt>{dt}</dt>")
    try:
        values = np.array(matrix.findtext("data").split(), dtype=np.float64)
    except ValueError as exc:
        raise MeanFileError(f"{path}: <data> holds a non-number ({exc})") from None
    if values.size != channels * rows * cols:
        raise MeanFileError(
            f"{path}: <data> has {values.size} values but Channel x Row x Col = {channels}x{rows}x{cols}"
        )
    hwc_bgr = values.astype(np.float32).reshape(rows, cols, channels)
    return np.ascontiguousarray(hwc_bgr[:, :, ::-1].transpose(2, 0, 1))


def write_mean_file(path: str | Path, mean_chw_rgb: np.ndarray) -> Path:
    """Write a float ``C x H x W`` RGB mean image as an OpenCV XML mean file CNTK can read."""
    mean = np.asarray(mean_chw_rgb, dtype=np.float32)
    if mean.ndim != 3:
        raise ValueError(f"mean image must be C x H x W, got shape {mean.shape}")
    c, h, w = mean.shape
    data = mean[::-1].transpose(1, 2, 0).reshape(-1)  # HWC, BGR
    numbers = "\n".join(" ".join(f"{v:.9g}" for v in data[i : i + 8]) for i in range(0, data.size, 8))
    text = (
        '<?xml version="1.0"?>\n<opencv_storage>\n'
        f"<Channel>{c}</Channel>\n<Row>{h}</Row>\n<Col>{w}</Col>\n"
        f'<MeanImg type_id="opencv-matrix">\n  <rows>1</rows>\n  <cols>{data.size}</cols>\n  <dt>f</dt>\n'
        f"  <data>\n{numbers}</data></MeanImg>\n</opencv_storage>\n"
    )
    path = Path(path)
    path.write_text(text)
    return path


class Mean(ImageTransform):
    """Subtract the mean image of ``filename``; the image must have the mean's size (else an error)."""

    def __init__(self, filename: str | Path):
        self.filename = str(filename)
        self._mean = torch.from_numpy(read_mean_file(filename))

    @property
    def mean_image(self) -> torch.Tensor:
        """float32 ``C x H x W`` RGB."""
        return self._mean

    def __call__(self, image: torch.Tensor, rng: random.Random, view: int = 0) -> torch.Tensor:
        if tuple(image.shape) != tuple(self._mean.shape):
            # CNTK prints a warning and skips the subtraction; a silent no-op hides a real mistake.
            raise MeanFileError(
                f"{self.filename}: mean image is {tuple(self._mean.shape)} (C, H, W) but the image reaching the "
                f"mean transform is {tuple(image.shape)}; put a scale transform to the mean's size before it"
            )
        return image.to(torch.float32) - self._mean


def mean(filename: str | Path) -> Mean:
    """``cntk.io.transforms.mean``: subtract the mean image stored in ``filename``."""
    return Mean(filename)
