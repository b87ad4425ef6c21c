"""COCOeval as wrapped by amlvision.detection.evaluation, on hand-made predictions whose answers are worked out here.

COCO's AP is the mean over 10 IoU thresholds (0.50, 0.55, ..., 0.95) of the precision interpolated at
101 recall points (0, 0.01, ..., 1). With one ground-truth box per image these reduce to counting:
* a perfect detection matches at every threshold: AP = AP50 = AP75 = 1;
* two images with one box each, one found and one missed: precision 1 up to recall 0.5, nothing
  after, so 51 of the 101 recall points have precision 1: AP = 51/101 at every IoU;
* a 100x100 box found shifted by 20 px: IoU = 80*100 / (2*10000 - 8000) = 2/3, a match at IoU
  thresholds 0.50, 0.55, 0.60, 0.65 only: AP50 = 1, AP75 = 0, AP = 4/10.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from amlvision.detection.annotations import DetectionSet, ImageBoxes
from amlvision.detection.evaluation import coco_evaluate, gallery_figure, image_errors, pr_curves_figure, worst_first


def _set(boxes_per_image: list[list[list[float]]], labels_per_image: list[list[int]], folder: Path) -> DetectionSet:
    images = []
    for i, (boxes, labels) in enumerate(zip(boxes_per_image, labels_per_image, strict=True)):
        path = folder / f"img{i}.png"
        Image.new("RGB", (200, 160), (40 * i, 90, 120)).save(path)
        images.append(ImageBoxes(path, 200, 160, np.array(boxes, np.float32), np.array(labels), image_id=i))
    # COCO-style non-contiguous category ids, to check they are carried through
    return DetectionSet(["cat", "dog"], images, category_ids=[17, 18])


def _pred(boxes, labels, scores) -> dict[str, np.ndarray]:
    return {
        "boxes": np.array(boxes, np.float32).reshape(-1, 4),
        "labels": np.array(labels, np.int64),
        "scores": np.array(scores, np.float32),
    }


def test_perfect_predictions_give_ap_1(tmp_path: Path):
    data = _set([[[10, 10, 110, 110]], [[20, 30, 60, 90], [100, 40, 190, 150]]], [[0], [1, 0]], tmp_path)
    preds = [_pred(im.boxes, im.labels, [0.9] * len(im.labels)) for im in data.images]
    result = coco_evaluate(data, preds)
    assert result["AP"] == pytest.approx(1.0)
    assert result["AP50"] == pytest.approx(1.0) and result["AP75"] == pytest.approx(1.0)
    assert result["AR100"] == pytest.approx(1.0)
    assert result["per_class"]["cat"]["AP"] == pytest.approx(1.0) and result["per_class"]["dog"]["boxes"] == 1
    assert result["AP_small"] == -1.0  # no ground truth under 32x32: COCO reports -1
    assert "Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 1.000" in result["summary"]


def test_a_missed_box_gives_51_of_101(tmp_path: Path):
    data = _set([[[10, 10, 110, 110]], [[20, 20, 120, 120]]], [[0], [0]], tmp_path)
    preds = [_pred([[10, 10, 110, 110]], [0], [0.9]), _pred([], [], [])]
    result = coco_evaluate(data, preds)
    assert result["AP"] == pytest.approx(51 / 101)
    assert result["AP50"] == pytest.approx(51 / 101)
    assert result["AR100"] == pytest.approx(0.5)
    assert result["pr_curves"]["precision"]["cat"][:51] == pytest.approx([1.0] * 51)
    assert result["pr_curves"]["precision"]["cat"][51:] == [0.0] * 50


def test_a_shifted_box_matches_up_to_iou_two_thirds(tmp_path: Path):
    data = _set([[[10, 10, 110, 110]]], [[0]], tmp_path)
    result = coco_evaluate(data, [_pred([[30, 10, 130, 110]], [0], [0.8])])
    assert result["AP50"] == pytest.approx(1.0)
    assert result["AP75"] == pytest.approx(0.0)
    assert result["AP"] == pytest.approx(0.4)


def test_wrong_class_and_no_detections_score_zero(tmp_path: Path):
    data = _set([[[10, 10, 110, 110]]], [[0]], tmp_path)
    assert coco_evaluate(data, [_pred([[10, 10, 110, 110]], [1], [0.9])])["AP"] == 0.0
    empty = coco_evaluate(data, [_pred([], [], [])])
    assert empty["AP"] == 0.0 and empty["num_detections"] == 0


def test_gallery_puts_the_worst_image_first_and_curves_draw(tmp_path: Path):
    data = _set([[[10, 10, 110, 110]], [[20, 20, 120, 120], [130, 30, 190, 150]]], [[0], [0, 1]], tmp_path)
    preds = [_pred([[10, 10, 110, 110]], [0], [0.9]), _pred([[0, 0, 20, 20]], [1], [0.7])]
    errors = image_errors(data, preds)
    assert errors == [{"missed": 0, "false": 0, "matched": 1}, {"missed": 2, "false": 1, "matched": 0}]
    assert worst_first(errors) == [1, 0]
    fig = gallery_figure(data, preds)
    assert fig.axes[0].get_title().startswith("img1.png: 2 missed, 1 false")
    fig.savefig(tmp_path / "g.png")
    result = coco_evaluate(data, preds)
    pr_curves_figure(result).savefig(tmp_path / "pr.png")
    assert Image.open(tmp_path / "pr.png").width > 200
