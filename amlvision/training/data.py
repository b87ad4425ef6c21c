"""Turn ``--data`` / ``--reader`` into a training source and a held-out source.

The held-out split is the data's own ``test`` split when it has one; otherwise a seeded,
stratified ``validation_fraction`` of the training split (scikit-learn ``train_test_split``), whose
indexes are written to ``outputs/split.json`` so the exact split can be reproduced and audited.

Minibatch sources come from ``amlvision.sources.factory.make_source`` (packed, image and CTF
readers). Until that factory exists in a checkout, packed directories are read with the small
``_PackedSubsetSource`` below, which follows the same ``MinibatchSource`` schedule.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from amlvision.packed import PackedDataset, is_packed
from amlvision.sources.base import BatchPlan, MinibatchSource, key_uniform
from amlvision.training.config import TrainConfig

TEST_SPLITS = ("test", "validation", "val")


@dataclass
class TrainingData:
    """What the loop needs to know about the data, independent of the reader."""

    train: Any
    heldout: Any
    class_names: list[str]
    image_shape: tuple[int, int, int]  # C, H, W as the model sees it
    heldout_name: str
    checksum: str
    split: dict[str, Any] = field(default_factory=dict)
    packed_path: Path | None = None


def cntk_transforms(cfg: TrainConfig, image_shape: tuple[int, int, int], train: bool) -> list[dict[str, Any]]:
    """The transform list in ``cntk.io.transforms`` terms: crop (train only), scale, and no mean (see preprocess)."""
    channels, height, width = image_shape
    if cfg.scale:
        width, height = cfg.scale
    transforms: list[dict[str, Any]] = []
    if train and cfg.crop_type != "none":
        transforms.append(
            {
                "type": "crop",
                "crop_type": cfg.crop_type,
                "side_ratio": cfg.side_ratio,
                "jitter_type": cfg.jitter_type,
                "pad": cfg.pad,
                "hflip": cfg.flip,
            }
        )
    elif train and cfg.flip:
        transforms.append({"type": "crop", "crop_type": "center", "side_ratio": 1.0, "pad": 0, "hflip": True})
    transforms.append(
        {"type": "scale", "width": width, "height": height, "channels": channels, "interpolations": cfg.interpolations}
    )
    return transforms


def _stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    indexes = np.arange(len(labels))
    counts = np.bincount(labels)
    stratify = labels if counts[counts > 0].min() >= 2 else None
    train_idx, val_idx = train_test_split(indexes, test_size=fraction, random_state=seed, stratify=stratify)
    return np.sort(train_idx), np.sort(val_idx)


def _checksum(packed: PackedDataset) -> str:
    """A short fingerprint of the data: hash of the manifest's per-file sha256 values."""
    digest = hashlib.sha256()
    for split in sorted(packed.splits):
        for name, value in sorted(packed.manifest["splits"][split]["sha256"].items()):
            digest.update(f"{name}={value}\n".encode())
    return digest.hexdigest()[:16]


def detect_channels(data: str | Path) -> int:
    """1 when the source's first image is grayscale, else 3 (so gray data trains as gray)."""
    from PIL import Image

    from amlvision.data.discover import open_collection

    for items in open_collection(data).values():
        if not len(items):
            continue
        if items.arrays is not None:
            return 1 if items.arrays.shape[3] == 1 else 3
        with Image.open(items.paths[0]) as img:
            return 1 if img.mode in ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F") else 3
    return 3


def resolve_packed(cfg: TrainConfig) -> Path:
    """A packed directory for ``cfg.data`` (packed once into the cache by ``amlvision.pack.ensure_packed``)."""
    data = cfg.data
    if data == "cifar10":
        data = str(download_cifar10())
    path = Path(data)
    if path.is_dir() and is_packed(path):
        return path
    from amlvision.pack import ensure_packed

    channels = cfg.channels or detect_channels(path)
    size = (cfg.scale[1], cfg.scale[0]) if cfg.scale else None
    return Path(ensure_packed(path, channels=channels, size=size))


def download_cifar10() -> Path:
    """The official CIFAR-10 python batches via ``amlvision download cifar10`` (offline: its error explains)."""
    try:
        from amlvision.download import download_cifar10 as fetch
    except ImportError as exc:
        raise RuntimeError("--data cifar10 needs amlvision.download (amlvision download cifar10); "
                           "pass --data PATH to a local copy instead") from exc
    return Path(fetch())


def load_training_data(cfg: TrainConfig, *, rank: int = 0, world_size: int = 1, device: torch.device | None = None
                       ) -> TrainingData:
    """Open ``cfg.data`` with ``cfg.reader`` and decide the held-out split (see module docstring)."""
    packed_path = resolve_packed(cfg)
    packed = PackedDataset(packed_path)
    height, width, channels = packed.image_shape
    image_shape = (channels, cfg.scale[1], cfg.scale[0]) if cfg.scale else (channels, height, width)
    train_split = "train" if "train" in packed.splits else ("all" if "all" in packed.splits else None)
    if train_split is None:
        raise ValueError(f"{cfg.data}: no 'train' or 'all' split to train on (splits: {packed.splits})")
    heldout_split = next((s for s in TEST_SPLITS if s in packed.splits), None)
    train_idx = heldout_idx = None
    split_record: dict[str, Any] = {"train_split": train_split}
    if heldout_split is None:
        if cfg.val_fraction <= 0:
            raise ValueError(f"{cfg.data}: no test split and --val-fraction 0; nothing to evaluate on")
        train_idx, heldout_idx = _stratified_split(packed.labels(train_split), cfg.val_fraction, cfg.seed)
        split_record.update(
            heldout="validation (stratified from train)",
            seed=cfg.seed,
            fraction=cfg.val_fraction,
            train_indexes=train_idx.tolist(),
            validation_indexes=heldout_idx.tolist(),
        )
    else:
        split_record["heldout"] = heldout_split
    if cfg.limit:
        base = train_idx if train_idx is not None else np.arange(packed.count(train_split))
        train_idx = base[: cfg.limit]
        split_record["limit"] = cfg.limit
    common = {"seed": cfg.seed, "device": device}
    train = make_split_source(cfg, packed_path, train_split, train_idx, train=True, rank=rank, world_size=world_size,
                              image_shape=image_shape, **common)
    heldout = make_split_source(cfg, packed_path, heldout_split or train_split, heldout_idx, train=False, rank=0,
                                world_size=1, image_shape=image_shape, **common)
    return TrainingData(
        train=train,
        heldout=heldout,
        class_names=list(packed.class_names),
        image_shape=image_shape,
        heldout_name=heldout_split or "validation",
        checksum=_checksum(packed),
        split=split_record,
        packed_path=packed_path,
    )


def make_split_source(cfg: TrainConfig, packed_path: Path, split: str, indexes: np.ndarray | None, *, train: bool,
                      seed: int, rank: int, world_size: int, device, image_shape) -> Any:
    """A minibatch source for ``split`` (optionally only ``indexes`` of it), via the sources factory when present."""
    transforms = cntk_transforms(cfg, image_shape, train)
    try:
        from amlvision.sources.factory import make_source
    except ImportError:
        make_source = None
    if make_source is not None:
        params = inspect.signature(make_source).parameters
        kwargs: dict[str, Any] = {"train": train, "transforms": transforms, "seed": seed, "rank": rank,
                                  "world_size": world_size}
        if "device" in params:
            kwargs["device"] = device
        if indexes is not None:
            for name in ("indices", "indexes", "subset"):
                if name in params:
                    kwargs[name] = indexes
                    break
            else:
                kwargs = None  # factory cannot subset; fall through to our own packed source
        if kwargs is not None:
            data = cfg.data if cfg.reader != "packed" else str(packed_path)
            return make_source(cfg.reader, data, split, **kwargs)
    if cfg.reader != "packed":
        raise RuntimeError(f"reader {cfg.reader!r} needs amlvision.sources.factory.make_source with subset support")
    return _PackedSubsetSource(packed_path, split, indexes, transforms=transforms, randomize=train, seed=seed,
                               rank=rank, world_size=world_size, device=device)


class _PackedSubsetSource(MinibatchSource):
    """Packed split (or a subset of it) with CNTK pad + random-side crop + scale + flip, all from per-sample keys."""

    def __init__(self, path: Path, split: str, indexes: np.ndarray | None, *, transforms: list[dict[str, Any]],
                 **schedule: Any):
        packed = PackedDataset(path)
        self._images = packed.images(split)
        self._labels = packed.labels(split)
        self._indexes = np.arange(len(self._labels)) if indexes is None else np.asarray(indexes, dtype=np.int64)
        self._crop = next((t for t in transforms if t["type"] == "crop"), None)
        scale = next(t for t in transforms if t["type"] == "scale")
        height, width, channels = packed.image_shape
        self._out_hw = (int(scale["height"]), int(scale["width"]))
        super().__init__(num_samples=len(self._indexes), class_names=packed.class_names,
                         image_shape=(channels, *self._out_hw), **schedule)

    def _load_batch(self, plan: BatchPlan) -> tuple[torch.Tensor, torch.Tensor]:
        rows = self._indexes[plan.indices]
        order = np.argsort(rows)  # memmap fancy indexing is fastest in file order
        images = np.empty((len(rows), *self._images.shape[1:]), dtype=np.uint8)
        images[order] = self._images[rows[order]]
        x = torch.from_numpy(images).permute(0, 3, 1, 2).float()
        labels = torch.from_numpy(self._labels[rows])
        if self._crop is not None:
            x = self._random_crop(x, plan.keys)
        if tuple(x.shape[-2:]) != self._out_hw:
            x = torch.nn.functional.interpolate(x, size=self._out_hw, mode="bilinear", align_corners=False)
        return x, labels

    def _random_crop(self, x: torch.Tensor, keys: np.ndarray) -> torch.Tensor:
        crop = self._crop
        pad = int(crop.get("pad", 0))
        if pad:
            x = torch.nn.functional.pad(x, (pad, pad, pad, pad))
        n, _, h, w = x.shape
        side = max(1, round(min(h, w) * float(crop["side_ratio"])))
        if crop["crop_type"] == "center":
            tops = np.full(n, (h - side) // 2)
            lefts = np.full(n, (w - side) // 2)
        else:
            tops = np.floor(key_uniform(keys, 1) * (h - side + 1)).astype(np.int64)
            lefts = np.floor(key_uniform(keys, 2) * (w - side + 1)).astype(np.int64)
        rows = torch.from_numpy(tops)[:, None] + torch.arange(side)[None]
        cols = torch.from_numpy(lefts)[:, None] + torch.arange(side)[None]
        batch = torch.arange(n)[:, None, None]
        out = x.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
        if crop.get("hflip"):
            flips = torch.from_numpy(key_uniform(keys, 3) < 0.5)
            out = torch.where(flips[:, None, None, None], out.flip(3), out)
        return out.contiguous()


def write_split(path: Path, record: dict[str, Any]) -> None:
    path.write_text(json.dumps(record))
