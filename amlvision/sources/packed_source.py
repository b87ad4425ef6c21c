"""``PackedSource``: a split of a packed dataset held in memory, augmented on whole batches.

The split is read from its memory map once into a ``uint8`` ``N x C x H x W`` tensor (on
``device`` when ``data_on_device`` is true, e.g. a GPU, so batches never cross the bus as float).
A batch is one ``index_select`` plus vectorised flip / translate from ``amlvision.augment``; the
random draws come from per-sample keys (``base.sample_key``), so they do not depend on the batch
size or on the rank count. Optional CNTK-style mean subtraction uses a mean image or per-channel
means in pixel units.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from amlvision.augment import BatchAugment, offsets_from_uniform
from amlvision.formats.packed import PackedDataset
from amlvision.sources.base import BatchPlan, MinibatchSource, key_uniform, sample_key

# Streams of key_uniform, one per random decision, so adding one never changes the others.
_STREAM_DY, _STREAM_DX, _STREAM_FLIP, _STREAM_BASE_FLIP = 11, 12, 13, 14


class PackedSource(MinibatchSource):
    """Minibatches from ``PackedDataset(path)``'s ``split``; see ``MinibatchSource`` for the schedule.

    ``augment``: a ``BatchAugment`` (or its fields as a dict: ``flip``, ``translate``, ``pad_mode``,
    ``fill``). ``mean``: ``C x H x W`` mean image or ``C`` channel means (0-255 units) subtracted
    from the float features, as a CNTK ``mean`` transform would.
    """

    def __init__(
        self,
        path: str | Path,
        split: str,
        *,
        augment: BatchAugment | dict[str, Any] | None = None,
        mean: np.ndarray | torch.Tensor | None = None,
        data_on_device: bool | None = None,
        **schedule: Any,
    ):
        self.dataset = PackedDataset(path)
        self.split = split
        h, w, c = self.dataset.image_shape
        images = np.array(self.dataset.images(split), copy=True)  # one sequential read of the memmap
        labels = self.dataset.labels(split)
        if len(labels) != len(images):
            raise ValueError(f"{path}: split {split!r} has {len(images)} images but {len(labels)} labels")
        super().__init__(
            num_samples=len(labels), class_names=self.dataset.class_names, image_shape=(c, h, w), **schedule
        )
        self.augment = BatchAugment(**augment) if isinstance(augment, dict) else (augment or BatchAugment())
        if data_on_device is None:
            data_on_device = self.device is not None and self.device.type != "cpu"
        storage = self.device if (data_on_device and self.device is not None) else torch.device("cpu")
        self.images = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous().to(storage)
        self.labels = torch.from_numpy(labels).to(storage)
        self.mean = None if mean is None else self._mean_tensor(mean, storage)

    def sample_labels(self) -> np.ndarray:
        return self.labels.cpu().numpy().astype(np.int64)

    def _mean_tensor(self, mean: np.ndarray | torch.Tensor, storage: torch.device) -> torch.Tensor:
        mean_t = torch.as_tensor(np.asarray(mean, dtype=np.float32))
        c, h, w = self.image_shape
        if mean_t.shape == (c,):
            mean_t = mean_t.view(c, 1, 1)
        if mean_t.shape not in ((c, 1, 1), (c, h, w)):
            raise ValueError(f"mean of shape {tuple(mean_t.shape)} fits neither ({c},) nor {self.image_shape}")
        return mean_t.to(storage)

    def _draws(self, plan: BatchPlan) -> dict[str, torch.Tensor]:
        aug = self.augment
        draws: dict[str, torch.Tensor] = {}
        if aug.translate > 0:
            draws["dy"] = offsets_from_uniform(key_uniform(plan.keys, _STREAM_DY), aug.translate)
            draws["dx"] = offsets_from_uniform(key_uniform(plan.keys, _STREAM_DX), aug.translate)
        if aug.flip == "random":
            draws["flip_mask"] = torch.from_numpy(key_uniform(plan.keys, _STREAM_FLIP) < 0.5)
        elif aug.flip == "alternate":
            # The epoch-0 choice depends on the image only; odd sweeps flip the other way.
            base = key_uniform(sample_key(self.seed, 0, plan.indices), _STREAM_BASE_FLIP) < 0.5
            flip = np.where(plan.sweeps % 2 == 1, ~base, base)
            draws["flip_mask"] = torch.from_numpy(flip)
        return draws

    def _load_batch(self, plan: BatchPlan) -> tuple[torch.Tensor, torch.Tensor]:
        index = torch.from_numpy(plan.indices).to(self.images.device)
        images = self.images.index_select(0, index)
        labels = self.labels.index_select(0, index)
        if self.augment.active:
            images = self.augment.apply(images, **self._draws(plan))
        if self.mean is not None:
            images = images.to(torch.float32) - self.mean
        return images, labels
