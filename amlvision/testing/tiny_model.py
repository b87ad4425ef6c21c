"""Train and export a tiny CIFAR-style CNN in a few seconds, for serving tests and benchmarks.

The model directory is written by train.py's own exporter (``amlvision.training.export``: model.onnx
with input ``input`` / output ``logits`` and a dynamic batch, labels.json, preprocess.json with the
training set's real mean and std), so it exercises the same files as a model from train.py. It also writes
``model.pt`` (state dict) and ``tiny_model.json`` so the PyTorch baseline can rebuild the module.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np

from amlvision.data.images import load_image


def build_tiny_cnn(n_classes: int, channels: int = 3):
    import torch.nn as nn

    return nn.Sequential(
        nn.Conv2d(channels, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
        nn.Flatten(), nn.Linear(64, n_classes),
    )  # fmt: skip


def _load_split(root: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    images, labels = [], []
    for index, name in enumerate(classes):
        for path in sorted((root / name).glob("*.png")):
            images.append(load_image(path, 3))
            labels.append(index)
    return np.stack(images), np.asarray(labels, dtype=np.int64), classes


def train_tiny_model(train_dir: str | Path, out_dir: str | Path, epochs: int = 5, seed: int = 0) -> Path:
    """Train on ``train_dir/<class>/*.png`` for ``epochs`` (seeded: the same model every time) and export."""
    import torch

    torch.manual_seed(seed)
    torch.set_num_threads(2)
    images, labels, classes = _load_split(Path(train_dir))
    height, width = images.shape[1:3]
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    mean = x.mean(dim=(0, 2, 3))
    std = x.std(dim=(0, 2, 3))
    x = (x - mean[None, :, None, None]) / std[None, :, None, None]
    y = torch.from_numpy(labels)

    model = build_tiny_cnn(len(classes))
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        for batch in torch.randperm(len(x), generator=generator).split(64):
            optimiser.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x[batch]), y[batch])
            loss.backward()
            optimiser.step()
    model.eval()

    from amlvision.model_dir import Preprocess
    from amlvision.training.export import export_onnx  # the same export (and ONNX check) as train.py

    preprocess = Preprocess(
        height=int(height), width=int(width), channels=3, resize="bilinear", mean=tuple(mean.tolist()),
        std=tuple(std.tolist()),
    )  # fmt: skip
    out = Path(out_dir)
    export_onnx(model, out, classes, preprocess, check_inputs=x[:64])
    torch.save(model.state_dict(), out / "model.pt")
    (out / "tiny_model.json").write_text(
        json.dumps({"builder": "amlvision.testing.tiny_model:build_tiny_cnn", "n_classes": len(classes)})
    )
    return out


def cached_tiny_model(train_dir: str | Path, cache: str | Path, epochs: int = 5) -> Path:
    """Train once per version of this file into ``cache``; later calls return the same directory.

    The folder is world-readable so a non-root scoring container can mount it.
    """
    key = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]
    dest = Path(cache) / f"serving-model-{key}"
    if not (dest / "model.onnx").is_file():
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=dest.name + ".partial-", dir=dest.parent))
        try:
            train_tiny_model(train_dir, tmp, epochs=epochs)
            try:
                tmp.rename(dest)
            except OSError:  # another process finished first
                if not (dest / "model.onnx").is_file():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    dest.chmod(0o755)  # mkdtemp made it 0700
    for path in dest.iterdir():
        path.chmod(0o644)
    return dest
