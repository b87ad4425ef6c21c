"""``CTFSource``: minibatches from a CNTK Text Format image file held in memory.

The file (``|labels ... |features ...`` lines as CNTK's CIFAR-10 tutorial writes them) is read once
with the vectorised reader straight into ``uint8`` (every pixel must be an integer 0-255), so a
CIFAR-10 training file costs 150 MB of memory rather than 700 MB of text or 600 MB of float32.
Features are channel-major (C planes of H x W); labels one-hot (dense) or ``k:1`` (sparse).
The schedule (sweeps, seeded randomisation, epochs, rank partitioning) is ``MinibatchSource``'s;
``partition="file"`` instead lets the reader keep only this rank's sequences (CNTK ``numSubsets``:
sequence ``i`` of the file belongs to rank ``i % world_size``), so each rank holds 1/world_size
of the file in memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from amlvision.ctf import CTFError, StreamDef, read_arrays
from amlvision.sources.base import BatchPlan, MinibatchSource


def probe_labels(path: Path, alias: str, probe_bytes: int = 1 << 16) -> tuple[str, int | None]:
    """Format of the first ``|alias`` sample (``"dense"``/``"sparse"``) and, if dense, its value count."""
    with open(path, "rb") as handle:
        head = handle.read(probe_bytes)
    marker = f"|{alias}".encode()
    at = next((i for i in (head.find(marker + b" "), head.find(marker + b"\t")) if i >= 0), -1)
    if at < 0:
        return "dense", None
    end = head.find(b"|", at + 1)
    newline = head.find(b"\n", at + 1)
    stops = [i for i in (end, newline) if i >= 0]
    if not stops:
        return "dense", None
    sample = head[at + len(marker) : min(stops)]
    if b":" in sample:
        return "sparse", None
    return "dense", len(sample.split())


def class_indexes(labels: Any, sample_lines: np.ndarray, path: object) -> np.ndarray:
    """Class index of each one-hot label row (dense array or csr); anything else is an error."""
    if isinstance(labels, np.ndarray):
        index = labels.argmax(axis=1)
        ok = (labels.sum(axis=1) == 1) & (labels[np.arange(len(labels)), index] == 1)
    else:
        nnz = np.diff(labels.indptr)
        index = np.zeros(labels.shape[0], dtype=np.int64)
        one = nnz == 1
        index[one] = labels.indices[labels.indptr[:-1][one]]
        ok = one & (labels.max(axis=1).toarray().ravel() == 1)
    if not ok.all():
        bad = int(np.argmin(ok))
        raise CTFError(f"{path}:{sample_lines[bad]}: the label is not one-hot (exactly one 1, zeros elsewhere)")
    return index.astype(np.int64)


class CTFSource(MinibatchSource):
    """Images and labels of a CTF file; see ``MinibatchSource`` for the schedule options.

    ``image_shape``: ``(C, H, W)`` of the ``features`` stream (required: CTF stores flat vectors).
    ``num_classes`` or ``class_names`` give the label dimension (default: the length of the
    first dense label). ``label_format``: ``"dense"`` (one-hot), ``"sparse"`` (``k:1``) or
    ``"auto"`` (look at the first label). ``indexes``: use
    only these samples (e.g. a validation subset). ``mean``: ``C x H x W`` image or ``C`` channel
    means in 0-255 units, subtracted as a CNTK ``mean`` transform does.

    Reader options: ``dtype`` stores the features as ``np.uint8`` (default: every value must be
    an integer 0-255) or ``np.float32`` (any real features); batches are float32 either way
    (docs/CONTRACTS.md). ``max_errors`` and ``strict`` are ``amlvision.ctf.read``'s (CNTK
    ``maxErrors``; CNTK's exact grammar). ``partition``: ``"sweep"`` (default) holds the whole file
    and gives rank ``r`` the positions ``p % world_size == r`` of every (shuffled) sweep;
    ``"file"`` reads only the sequences ``i % world_size == rank`` of the file (the reader's
    ``rank/world_size``) and schedules them locally, so ``epoch_size`` and ``max_samples`` then
    count this rank's samples. Without randomisation both give every rank the same samples.
    """

    def __init__(
        self,
        path: str | Path,
        image_shape: tuple[int, int, int],
        num_classes: int | None = None,
        *,
        class_names: Sequence[str] | None = None,
        features: str = "features",
        labels: str = "labels",
        label_format: str = "auto",
        indexes: np.ndarray | Sequence[int] | None = None,
        mean: np.ndarray | torch.Tensor | None = None,
        dtype: np.dtype | type | str = np.uint8,
        max_errors: int = 0,
        strict: bool = False,
        partition: str = "sweep",
        **schedule: Any,
    ):
        self.path = Path(path)
        feature_dtype = np.dtype(dtype)
        if feature_dtype not in (np.dtype(np.uint8), np.dtype(np.float32)):
            raise ValueError(
                f"dtype must be np.uint8 or np.float32 (batches are float32, docs/CONTRACTS.md), got {feature_dtype}"
            )
        if partition not in ("sweep", "file"):
            raise ValueError(f"partition must be 'sweep' or 'file', got {partition!r}")
        if len(image_shape) != 3 or min(image_shape) <= 0:
            raise ValueError(f"image_shape must be (C, H, W) with positive sizes, got {image_shape}")
        probed_format, probed_classes = probe_labels(self.path, labels)
        if label_format == "auto":
            label_format = probed_format
        if class_names is None:
            num_classes = num_classes if num_classes is not None else probed_classes
            if num_classes is None:
                raise ValueError(f"{self.path}: give num_classes or class_names (sparse labels do not tell)")
            class_names = [str(k) for k in range(num_classes)]
        elif num_classes is not None and num_classes != len(class_names):
            raise ValueError(f"num_classes={num_classes} but {len(class_names)} class_names")
        if label_format not in ("dense", "sparse"):
            raise ValueError(f"label_format must be 'dense', 'sparse' or 'auto', got {label_format!r}")
        c, h, w = (int(v) for v in image_shape)
        streams = {
            "features": StreamDef(features, c * h * w),
            "labels": StreamDef(labels, len(class_names), is_sparse=label_format == "sparse"),
        }
        shard = {}
        if partition == "file":
            shard = {"rank": schedule.pop("rank", 0), "world_size": schedule.pop("world_size", 1)}
        arrays = read_arrays(
            self.path, streams, dtype={"features": feature_dtype}, max_errors=max_errors, strict=strict, **shard
        )
        self.partition = partition
        self.file_rank, self.file_world_size = shard.get("rank", 0), shard.get("world_size", 1)
        for name in streams:
            if len(arrays.sample_lines[name]) != len(arrays):
                seq = int(np.argmax(np.diff(arrays.offsets[name]) != 1))
                raise CTFError(
                    f"{self.path}:{arrays.lines[seq]}: sequence {arrays.ids[seq]} holds several "
                    f"{name} samples; an image file needs one image and one label per sequence"
                )
        images = arrays.data["features"].reshape(-1, c, h, w)
        targets = class_indexes(arrays.data["labels"], arrays.sample_lines["labels"], self.path)
        if indexes is not None:
            indexes = np.asarray(indexes, dtype=np.int64)
            if len(indexes) and (indexes.min() < 0 or indexes.max() >= len(images)):
                raise ValueError(f"indexes must lie in [0, {len(images)}) for {self.path}")
            images, targets = images[indexes], targets[indexes]
        self.images = torch.from_numpy(np.ascontiguousarray(images))
        self.labels = torch.from_numpy(targets)
        super().__init__(num_samples=len(targets), class_names=class_names, image_shape=(c, h, w), **schedule)
        self.mean = None if mean is None else self._mean_tensor(mean)

    def sample_labels(self) -> np.ndarray:
        return self.labels.numpy().astype(np.int64)

    def _mean_tensor(self, mean: np.ndarray | torch.Tensor) -> torch.Tensor:
        mean_t = torch.as_tensor(np.asarray(mean, dtype=np.float32))
        c = self.image_shape[0]
        if mean_t.shape == (c,):
            mean_t = mean_t.view(c, 1, 1)
        if mean_t.shape not in ((c, 1, 1), self.image_shape):
            raise ValueError(f"mean of shape {tuple(mean_t.shape)} fits neither ({c},) nor {self.image_shape}")
        return mean_t

    def _load_batch(self, plan: BatchPlan) -> tuple[torch.Tensor, torch.Tensor]:
        index = torch.from_numpy(plan.indices)
        images = self.images.index_select(0, index)
        if self.mean is not None:
            images = images.to(torch.float32) - self.mean
        return images, self.labels.index_select(0, index)
