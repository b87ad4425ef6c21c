"""``LabeledImages``: one split of a labelled image source, whatever its layout on disk.

Every reader in ``amlvision.data`` (class folders, label files, map files, CIFAR batches) produces
this one type, so packing, inspection and training never care where the images came from.
Images are either files (``paths``, decoded lazily) or an in-memory array (``arrays``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from amlvision.data.images import load_image, to_channels


@dataclass
class LabeledImages:
    """Images with int64 class indexes into ``class_names``.

    Exactly one of ``paths`` (files on disk) or ``arrays`` (``N x H x W x C`` uint8) is set.
    ``sources`` optionally names where each item came from (``file:line``) for error messages;
    ``skipped`` lists ``(item, reason)`` for entries left out because of ``skip_bad``.
    """

    class_names: list[str]
    labels: np.ndarray
    paths: list[Path] | None = None
    arrays: np.ndarray | None = None
    sources: list[str] | None = None
    skipped: list[tuple[str, str]] = field(default_factory=list)
    origin: str = ""

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.int64).reshape(-1)
        if (self.paths is None) == (self.arrays is None):
            raise ValueError("LabeledImages needs exactly one of paths or arrays")
        n = len(self.paths) if self.paths is not None else len(self.arrays)
        if n != len(self.labels):
            raise ValueError(f"{self.origin or 'LabeledImages'}: {n} images but {len(self.labels)} labels")
        if self.arrays is not None and (self.arrays.dtype != np.uint8 or self.arrays.ndim != 4):
            raise ValueError(f"arrays must be N x H x W x C uint8, got {self.arrays.dtype} {self.arrays.shape}")
        if len(self.labels) and (self.labels.min() < 0 or self.labels.max() >= len(self.class_names)):
            raise ValueError(
                f"{self.origin or 'LabeledImages'}: label index {int(self.labels.max())} outside the "
                f"{len(self.class_names)} class names"
            )

    def __len__(self) -> int:
        return len(self.labels)

    def describe(self, i: int) -> str:
        """Where item ``i`` came from, for error messages (file name, or source + index)."""
        if self.paths is not None:
            return str(self.paths[i])
        if self.sources is not None:
            return self.sources[i]
        return f"{self.origin or 'array'}[{i}]"

    def load(self, i: int, channels: int = 3) -> np.ndarray:
        """Item ``i`` as a ``uint8`` ``H x W x channels`` array (RGB or gray)."""
        if self.paths is not None:
            return load_image(self.paths[i], channels, name=self.describe(i))
        return convert_array(self.arrays[i], channels)

    def counts(self) -> dict[str, int]:
        """Number of items per class name (every class listed, zeros included)."""
        per_class = np.bincount(self.labels, minlength=len(self.class_names))
        return {name: int(n) for name, n in zip(self.class_names, per_class, strict=True)}


def convert_array(image: np.ndarray, channels: int) -> np.ndarray:
    """Apply the channel rule of ``amlvision.data.images`` to an in-memory ``H x W x C`` uint8 image."""
    if image.shape[2] == channels:
        return np.ascontiguousarray(image)
    mode = {1: "L", 3: "RGB", 4: "RGBA"}[image.shape[2]]
    pil = Image.fromarray(image[:, :, 0] if mode == "L" else image, mode=mode)
    out = np.asarray(to_channels(pil, channels), dtype=np.uint8)
    return np.ascontiguousarray(out[:, :, None] if out.ndim == 2 else out)
