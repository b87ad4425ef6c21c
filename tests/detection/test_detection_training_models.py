"""build_detector: local state dicts (detector and backbone), torchvision's named weights from its own cache, errors.

Nothing can be downloaded here, so every file is one this test writes: a detector state dict in
torchvision's COCO layout (91 outputs), a mobilenet_v3_large classification state dict, and the same
COCO-layout file placed where torchvision looks for ``COCO_V1`` before downloading it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torchvision.models import MobileNet_V3_Large_Weights, mobilenet_v3_large
from torchvision.models.detection import (
    FasterRCNN_MobileNet_V3_Large_320_FPN_Weights,
    fasterrcnn_mobilenet_v3_large_320_fpn,
)
from torchvision.ops.misc import FrozenBatchNorm2d

from amlvision.detection.models import DETECTORS, WeightsError, build_detector

NAME = "fasterrcnn_mobilenet_v3_large_320_fpn"


@pytest.fixture(scope="module")
def coco_layout_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A detector state dict shaped like torchvision's COCO weights (91 classes, FrozenBatchNorm)."""
    torch.manual_seed(5)
    model = fasterrcnn_mobilenet_v3_large_320_fpn(weights=None, weights_backbone=None, num_classes=91)
    path = tmp_path_factory.mktemp("weights") / "coco_layout.pth"
    torch.save(model.state_dict(), path)
    return path


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    return torch.equal(a.detach().cpu(), b.detach().cpu())


def test_local_detector_weights_load_and_the_predictor_is_replaced(coco_layout_file: Path):
    saved = torch.load(coco_layout_file, weights_only=True)
    model = build_detector(NAME, num_classes=3, weights=coco_layout_file)
    state = model.state_dict()
    for key in ("backbone.body.0.0.weight", "rpn.head.conv.0.0.weight", "roi_heads.box_head.fc6.weight"):
        assert _same(state[key], saved[key]), key
    assert model.roi_heads.box_predictor.cls_score.out_features == 4  # 3 classes + background
    assert model.roi_heads.box_predictor.bbox_pred.out_features == 16
    assert isinstance(model.backbone.body["1"].block[0][1], FrozenBatchNorm2d)


def test_weights_with_the_same_class_count_keep_the_predictor(coco_layout_file: Path):
    saved = torch.load(coco_layout_file, weights_only=True)
    model = build_detector(NAME, num_classes=90, weights=coco_layout_file)
    assert _same(model.roi_heads.box_predictor.cls_score.weight, saved["roi_heads.box_predictor.cls_score.weight"])


def test_checkpoint_dicts_are_accepted(coco_layout_file: Path, tmp_path: Path):
    saved = torch.load(coco_layout_file, weights_only=True)
    wrapped = tmp_path / "checkpoint.pt"
    torch.save({"model": saved, "epoch": 3}, wrapped)
    model = build_detector(NAME, num_classes=2, weights=wrapped)
    assert _same(model.state_dict()["rpn.head.cls_logits.weight"], saved["rpn.head.cls_logits.weight"])


def test_local_backbone_weights_go_into_the_backbone(tmp_path: Path):
    torch.manual_seed(9)
    classifier = mobilenet_v3_large(weights=None)
    path = tmp_path / "mobilenet.pth"
    torch.save(classifier.state_dict(), path)
    model = build_detector(NAME, num_classes=2, backbone_weights=path)
    assert _same(model.backbone.body["4"].block[0][0].weight, classifier.features[4].block[0][0].weight)
    assert isinstance(model.backbone.body["1"].block[0][1], FrozenBatchNorm2d)
    assert model.roi_heads.box_predictor.cls_score.out_features == 3


def test_named_weights_load_from_torchvisions_cache(coco_layout_file: Path, tmp_path: Path, monkeypatch):
    """``COCO_V1`` goes through torchvision's own loader, which finds the file in $TORCH_HOME's cache."""
    weights = FasterRCNN_MobileNet_V3_Large_320_FPN_Weights.COCO_V1
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    (tmp_path / "hub" / "checkpoints" / weights.url.rsplit("/", 1)[-1]).symlink_to(coco_layout_file)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    saved = torch.load(coco_layout_file, weights_only=True)
    for name in ("COCO_V1", "DEFAULT", "FasterRCNN_MobileNet_V3_Large_320_FPN_Weights.COCO_V1"):
        model = build_detector(NAME, num_classes=5, weights=name)
        assert _same(model.state_dict()["roi_heads.box_head.fc6.weight"], saved["roi_heads.box_head.fc6.weight"])
        assert model.roi_heads.box_predictor.cls_score.out_features == 6


def test_missing_named_weights_say_where_to_put_the_file(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(WeightsError, match=r"checkpoints/mobilenet_v3_large-8738ca79\.pth"):
        build_detector(NAME, num_classes=2, backbone_weights=MobileNet_V3_Large_Weights.IMAGENET1K_V1.name)


def test_bad_values_are_clear_errors(coco_layout_file: Path, tmp_path: Path):
    with pytest.raises(WeightsError, match="neither a file nor one of"):
        build_detector(NAME, num_classes=2, weights="IMAGENET_V9")
    not_torch = tmp_path / "notes.pth"
    not_torch.write_text("hello")
    with pytest.raises(WeightsError, match="not a readable PyTorch weights file"):
        build_detector(NAME, num_classes=2, weights=not_torch)
    with pytest.raises(WeightsError, match="missing.pth: no such file"):
        build_detector(NAME, num_classes=2, backbone_weights=tmp_path / "missing.pth")
    resnet_file = tmp_path / "resnet_shaped.pth"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7)}, resnet_file)
    with pytest.raises(WeightsError, match="not mobilenet_v3_large backbone weights"):
        build_detector(NAME, num_classes=2, backbone_weights=resnet_file)
    with pytest.raises(WeightsError, match="does not match this detector"):
        build_detector("fasterrcnn_resnet50_fpn", num_classes=2, weights=coco_layout_file)
    with pytest.raises(ValueError, match="unknown detector"):
        build_detector("yolo", num_classes=2)


def test_every_listed_detector_builds_with_cpu_sizes():
    for name, spec in DETECTORS.items():
        model = build_detector(name, num_classes=2, min_size=128, max_size=160)
        assert model.transform.min_size == (128,) and model.transform.max_size == 160, name
        assert spec.min_size <= spec.max_size
