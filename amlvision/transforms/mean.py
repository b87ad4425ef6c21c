"""CNTK's ``mean`` transform: subtract a mean image read from an OpenCV XML file.

The file is what CNTK's CIFAR-10 scripts write and ``cv::FileStorage`` reads::

    <opencv_storage>
      <Channel>3</Channel><Row>32</Row><Col>32</Col>
      <MeanImg type_id="opencv-matrix"><rows>1</rows><cols>3072</cols><dt>f</dt>
        <data>...3072 numbers...</data></MeanImg>
    </opencv_storage>

``data`` holds the image in OpenCV order: rows, then columns, then **BGR** channels. amlvision's
pixels are RGB ``C x H x W`` (docs/CONTRACTS.md), so the channels are reversed on reading
(``amlvision.formats.meanxml.read_mean_file`` / ``write_mean_file`` own the file format). The arithmetic
is CNTK's: ``pixel - mean`` in 0-255 units, float32.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from amlvision.formats.meanxml import MapFileError, read_mean_file
from amlvision.transforms.base import BatchTransform


def read_mean_chw(path: str | Path) -> np.ndarray:
    """The mean image of an OpenCV XML mean file as float32 ``C x H x W``, RGB (via ``amlvision.formats.meanxml``)."""
    if not Path(path).is_file():
        raise MapFileError(f"{path}: mean file not found")
    return np.ascontiguousarray(read_mean_file(path).transpose(2, 0, 1))


class Mean(BatchTransform):
    """Subtract the mean image of ``filename``; the image must have the mean's size (else an error)."""

    def __init__(self, filename: str | Path):
        self.filename = str(filename)
        self._mean = torch.from_numpy(read_mean_chw(filename))

    @property
    def mean_image(self) -> torch.Tensor:
        """float32 ``C x H x W`` RGB."""
        return self._mean

    def apply_batch(self, images: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        if tuple(images.shape[1:]) != tuple(self._mean.shape):
            # CNTK prints a warning and skips the subtraction; a silent no-op hides a real mistake.
            raise ValueError(
                f"{self.filename}: mean image is {tuple(self._mean.shape)} (C, H, W) but the images reaching the "
                f"mean transform are {tuple(images.shape[1:])}; put a scale transform to the mean's size before it"
            )
        return images.to(torch.float32) - self._mean


def mean(filename: str | Path) -> Mean:
    """``cntk.io.transforms.mean``: subtract the mean image stored in ``filename``."""
    return Mean(filename)
