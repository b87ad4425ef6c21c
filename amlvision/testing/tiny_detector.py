"""A small torchvision detector with non-degenerate outputs, exported as a detection model directory in seconds.

For export, serving and benchmark tests: it is ``fasterrcnn_mobilenet_v3_large_320_fpn`` with COCO-tiny's
80 classes, untrained, but with its batch-norm statistics computed on real coco-tiny images. Why: an
untrained MobileNetV3 in eval mode uses running statistics of mean 0 / variance 1, its activations shrink
to ~1e-8 through the network, every box gets the same score and ONNX Runtime and PyTorch can then only be
compared on ties. With statistics from real images the scores spread (0.03-0.09) and differ box by box.
The model directory is written by :func:`amlvision.detection.export.export_detection_model` (with its
ONNX-vs-PyTorch check), plus ``model.pt`` (state dict) so PyTorch baselines can rebuild the module.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path

from amlvision.testing.datasets import SHARED_DATA

COCO_TINY = SHARED_DATA / "coco-tiny"
MODEL_NAME = "fasterrcnn_mobilenet_v3_large_320_fpn"
MIN_SIZE, MAX_SIZE = 320, 640  # torchvision's sizes for this model
SCORE_THRESH = 0.01  # low, so an untrained model still returns boxes to compare and to serve


def coco_tiny_images(split: str = "val2017", count: int | None = None) -> list[Path]:
    """Sorted real COCO 2017 JPEGs of coco-tiny's ``split`` (the first ``count``)."""
    folder = COCO_TINY / split
    files = sorted(folder.glob("*.jpg"))
    if not files:
        raise FileNotFoundError(f"no JPEGs in {folder}; set AMLVISION_SHARED_DATA to the shared data folder")
    return files[:count] if count else files


def coco_tiny_classes() -> list[str]:
    from amlvision.detection.coco import read_coco

    return read_coco(COCO_TINY / "annotations" / "instances_val2017.json").class_names


def build_detector(num_classes: int, *, seed: int = 0, score_thresh: float = SCORE_THRESH):
    """Untrained ``fasterrcnn_mobilenet_v3_large_320_fpn`` for ``num_classes`` (no background), BN from real images."""
    import torch
    import torchvision

    from amlvision.data.images import load_image

    torch.manual_seed(seed)
    model = torchvision.models.detection.fasterrcnn_mobilenet_v3_large_320_fpn(
        weights=None, weights_backbone=None, num_classes=num_classes + 1, box_score_thresh=score_thresh
    )
    batch_norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for norm in batch_norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average over the calibration batch
    images = [
        torch.from_numpy(load_image(p, 3).transpose(2, 0, 1).copy()).float() / 255
        for p in coco_tiny_images("train2017", 8)
    ]
    model.eval()
    with torch.no_grad():
        batch, _ = model.transform(images)
        model.backbone.train()
        model.backbone(batch.tensors)
    return model.eval()


def _source_hash() -> str:
    here = Path(__file__).resolve()
    export = here.parents[1] / "detection" / "export.py"
    return hashlib.sha256(here.read_bytes() + export.read_bytes()).hexdigest()[:16]


def cached_tiny_detector(cache: Path) -> Path:
    """The exported model directory, built once per source version under ``cache`` (atomic rename)."""
    import torch

    from amlvision.detection.export import export_detection_model

    dest = Path(cache) / f"tiny-detector-{_source_hash()}"
    if (dest / "model.onnx").is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=dest.name + ".partial-", dir=dest.parent))
    try:
        classes = coco_tiny_classes()
        model = build_detector(len(classes))
        check = coco_tiny_images("val2017", 3)  # 640x480, 640x424 and 500x333: three sizes
        export_detection_model(model, tmp, classes, MIN_SIZE, MAX_SIZE, check)
        torch.save(model.state_dict(), tmp / "model.pt")
        (tmp / "tiny_detector.json").write_text(
            json.dumps({"builder": "amlvision.testing.tiny_detector:build_detector", "num_classes": len(classes)})
        )
        tmp.chmod(0o755)
        try:
            tmp.rename(dest)
        except OSError:  # another process finished first
            if not (dest / "model.onnx").is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return dest
