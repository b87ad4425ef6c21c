"""Detection export: the TorchScript-exported ONNX graph answers as PyTorch does on real coco-tiny images.

The detector is torchvision's fasterrcnn_mobilenet_v3_large_320_fpn with coco-tiny's 80 classes,
untrained but with batch-norm statistics from real images (amlvision.testing.tiny_detector), so its
scores differ box by box and the comparison is about real detections, not ties.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from amlvision.data.images import load_image
from amlvision.detection.export import (
    BOX_ATOL_PX,
    BOX_RTOL,
    SCORE_ATOL,
    ExportMismatch,
    check_onnx_against_torch,
    export_detection_model,
)
from amlvision.testing import tiny_detector
from amlvision.testing.datasets import CACHE


@pytest.fixture(scope="module")
def classes(shared_data: Path) -> list[str]:
    return tiny_detector.coco_tiny_classes()


@pytest.fixture(scope="module")
def detector(classes: list[str]):
    return tiny_detector.build_detector(len(classes))


@pytest.fixture(scope="module")
def exported(shared_data: Path) -> Path:
    """The model directory export_detection_model wrote (cached per source version; the check ran then)."""
    return tiny_detector.cached_tiny_detector(CACHE)


def _val_image(name: str) -> np.ndarray:
    return load_image(tiny_detector.COCO_TINY / "val2017" / name, 3)


def test_onnx_runtime_matches_pytorch_on_real_images_of_two_sizes(detector, exported):
    # 640x428: a size where torchvision's traced float32 resize would give 319 rows, PyTorch 320 (fixed in export).
    # 375x500: portrait. Neither size is one the graph was traced or checked with at export.
    images = [_val_image("000000060932.jpg"), load_image(tiny_detector.coco_tiny_images("train2017")[2], 3)]
    sizes = {image.shape[:2] for image in images}
    assert len(sizes) == 2 and (428, 640) in sizes
    checks = check_onnx_against_torch(detector, exported / "model.onnx", images)
    for check in checks:
        assert check.torch_detections > 0 and check.onnx_detections == check.torch_detections, check
        assert check.max_box_diff_px <= BOX_ATOL_PX + BOX_RTOL * max(check.height, check.width), check
        assert check.max_score_diff <= SCORE_ATOL, check
    assert {(c.height, c.width) for c in checks} == sizes


def test_export_writes_the_detection_model_directory(exported, classes):
    assert json.loads((exported / "labels.json").read_text()) == classes
    preprocess = json.loads((exported / "preprocess.json").read_text())
    assert preprocess["version"] == 2 and preprocess["task"] == "detection"
    assert (preprocess["channels"], preprocess["min_size"], preprocess["max_size"]) == (3, 320, 640)
    graph = onnx.load(str(exported / "model.onnx"), load_external_data=False).graph
    (image_input,) = graph.input
    dims = [d.dim_param or d.dim_value for d in image_input.type.tensor_type.shape.dim]
    assert image_input.name == "images" and dims == [3, "height", "width"]
    outputs = {o.name: o.type.tensor_type.elem_type for o in graph.output}
    assert outputs == {"boxes": onnx.TensorProto.FLOAT, "labels": onnx.TensorProto.INT64,
                       "scores": onnx.TensorProto.FLOAT}  # fmt: skip


def test_labels_are_labels_json_indexes_and_boxes_are_in_the_input_pixels(detector, exported):
    import onnxruntime as ort

    image = _val_image("000000020992.jpg")  # 500x333
    session = ort.InferenceSession(str(exported / "model.onnx"), providers=["CPUExecutionProvider"])
    boxes, labels, scores = session.run(None, {"images": image.transpose(2, 0, 1).astype(np.float32) / 255})
    with torch.no_grad():
        found = detector([torch.from_numpy(image.transpose(2, 0, 1).copy()).float() / 255])[0]
    assert len(labels) > 0
    assert set((found["labels"] - 1).tolist()) == set(labels.tolist())
    assert labels.min() >= 0 and labels.max() < 80
    assert boxes[:, [0, 2]].max() <= 500 and boxes[:, [1, 3]].max() <= 333 and boxes.min() >= 0
    assert np.all(np.diff(scores) <= 0)  # highest score first


def test_a_graph_that_answers_differently_raises_export_mismatch_naming_it(detector, exported, classes):
    other = tiny_detector.build_detector(len(classes))
    with torch.no_grad():
        other.roi_heads.box_predictor.bbox_pred.bias.add_(0.5)  # every box shifts by a few pixels
    images = [_val_image("000000005001.jpg"), _val_image("000000020992.jpg")]
    with pytest.raises(ExportMismatch, match=r"check image 0 \(640x480\): \d+ PyTorch detection\(s\) have no ONNX"):
        check_onnx_against_torch(other, exported / "model.onnx", images)


def test_export_refuses_what_it_cannot_check_or_would_record_wrongly(detector, classes, tmp_path):
    same_size = [_val_image("000000005001.jpg"), _val_image("000000025603.jpg")]
    with pytest.raises(ValueError, match="at least two sizes"):
        export_detection_model(detector, tmp_path, classes, 320, 640, same_size)
    two_sizes = [_val_image("000000005001.jpg"), _val_image("000000020992.jpg")]
    with pytest.raises(ValueError, match="min_size 320, max_size 640 but the export was asked to record 800, 1333"):
        export_detection_model(detector, tmp_path, classes, 800, 1333, two_sizes)
    with pytest.raises(ValueError, match="81 classes with background but 79 class names"):
        export_detection_model(detector, tmp_path, classes[:-1], 320, 640, two_sizes)
    assert not (tmp_path / "model.onnx").exists()
