"""Detection evaluation with pycocotools' COCOeval: the COCO numbers, per-class AP, PR curves and a gallery.

Ground truth comes from a :class:`DetectionSet` (any reader), predictions from any detector, so the
same code scores a training run, a notebook and hand-made predictions in the tests. Image ids are
the set's image positions + 1 and category ids are the set's own (COCO's, for COCO data). ``area``
is the box area (the readers keep no segmentation), which places each box in COCO's small
(< 32x32), medium or large bucket.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from amlvision.detection.annotations import DetectionSet

# COCOeval.stats order (COCOeval.summarize)
STAT_NAMES = (
    "AP",
    "AP50",
    "AP75",
    "AP_small",
    "AP_medium",
    "AP_large",
    "AR1",
    "AR10",
    "AR100",
    "AR_small",
    "AR_medium",
    "AR_large",
)


def _xywh(boxes: np.ndarray) -> np.ndarray:
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)


def _coco(images: list[dict], categories: list[dict], annotations: list[dict]) -> COCO:
    coco = COCO()
    coco.dataset = {"images": images, "categories": categories, "annotations": annotations}
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def ground_truth(data: DetectionSet) -> COCO:
    """``data`` as a pycocotools COCO object (box areas, crowd flags kept)."""
    images = [
        {"id": i + 1, "width": im.width, "height": im.height, "file_name": str(im.path)}
        for i, im in enumerate(data.images)
    ]
    categories = [{"id": cid, "name": name} for cid, name in zip(data.category_ids, data.class_names, strict=True)]
    annotations = []
    for i, im in enumerate(data.images):
        for box, label, crowd in zip(_xywh(im.boxes), im.labels, im.iscrowd, strict=True):
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": i + 1,
                    "category_id": data.category_ids[int(label)],
                    "bbox": box.tolist(),
                    "area": float(box[2] * box[3]),
                    "iscrowd": int(crowd),
                }
            )
    return _coco(images, categories, annotations)


def detections(gt: COCO, data: DetectionSet, predictions: Sequence[dict[str, np.ndarray]]) -> COCO:
    """Predictions (per image: ``boxes`` x1y1x2y2, ``labels`` class indexes, ``scores``) as a COCO result set.

    Built directly rather than with ``COCO.loadRes``, which fails on an empty list (a model that
    detects nothing yet must still score 0, not crash).
    """
    if len(predictions) != len(data.images):
        raise ValueError(f"{len(predictions)} predictions for {len(data.images)} images")
    annotations = []
    for i, pred in enumerate(predictions):
        for box, label, score in zip(_xywh(pred["boxes"]), pred["labels"], pred["scores"], strict=True):
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": i + 1,
                    "category_id": data.category_ids[int(label)],
                    "bbox": box.tolist(),
                    "area": float(box[2] * box[3]),
                    "score": float(score),
                    "iscrowd": 0,
                }
            )
    return _coco(gt.dataset["images"], gt.dataset["categories"], annotations)


def coco_evaluate(data: DetectionSet, predictions: Sequence[dict[str, np.ndarray]]) -> dict[str, Any]:
    """COCOeval (bbox) of ``predictions`` on ``data``.

    Returns the twelve COCO numbers (``AP``, ``AP50``, ... ``AR100`` ...; -1 where COCO has no
    ground truth for that bucket), ``per_class`` (AP and AP50 per class with ground truth),
    ``pr_curves`` (precision at COCO's 101 recall points at IoU 0.5, per class) and ``summary``
    (COCOeval's own printed table).
    """
    gt = ground_truth(data)
    dt = detections(gt, data, predictions)
    evaluator = COCOeval(gt, dt, iouType="bbox")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    stats = {name: float(value) for name, value in zip(STAT_NAMES, evaluator.stats, strict=True)}
    precision = evaluator.eval["precision"]  # [iou T, recall R, class K, area A, maxDets M]
    per_class, curves = {}, {}
    present = {ann["category_id"] for ann in gt.dataset["annotations"] if not ann["iscrowd"]}
    for k, cid in enumerate(evaluator.params.catIds):
        if cid not in present:
            continue
        name = data.class_names[data.category_ids.index(cid)]
        p_all, p50 = precision[:, :, k, 0, -1], precision[0, :, k, 0, -1]
        per_class[name] = {
            "AP": float(p_all[p_all > -1].mean()) if (p_all > -1).any() else -1.0,
            "AP50": float(p50[p50 > -1].mean()) if (p50 > -1).any() else -1.0,
            "boxes": sum(1 for a in gt.dataset["annotations"] if a["category_id"] == cid and not a["iscrowd"]),
        }
        curves[name] = np.where(p50 > -1, p50, 0.0).tolist()
    summary = "\n".join(line for line in out.getvalue().splitlines() if line.lstrip().startswith("Average"))
    return {
        **stats,
        "per_class": per_class,
        "pr_curves": {"recall": evaluator.params.recThrs.tolist(), "precision": curves},
        "summary": summary,
        "num_images": len(data.images),
        "num_detections": len(dt.dataset["annotations"]),
    }


@torch.no_grad()
def predict(
    model: torch.nn.Module, dataset: Any, device: torch.device, batch_size: int = 4
) -> list[dict[str, np.ndarray]]:
    """The model's detections on every item of ``dataset`` (a DetectionDataset), labels as class indexes."""
    model.eval()
    results: list[dict[str, np.ndarray]] = []
    for start in range(0, len(dataset), batch_size):
        images = [dataset[i][0].to(device) for i in range(start, min(start + batch_size, len(dataset)))]
        for out in model(images):
            results.append(
                {
                    "boxes": out["boxes"].cpu().numpy().astype(np.float32),
                    "labels": (out["labels"] - 1).cpu().numpy().astype(np.int64),
                    "scores": out["scores"].cpu().numpy().astype(np.float32),
                }
            )
    return results


def image_errors(
    data: DetectionSet, predictions: Sequence[dict[str, np.ndarray]], score_threshold: float = 0.5, iou: float = 0.5
) -> list[dict[str, int]]:
    """Per image: boxes missed and false detections at ``score_threshold`` (greedy IoU matching, same class)."""
    from torchvision.ops import box_iou

    rows = []
    for image, pred in zip(data.images, predictions, strict=True):
        keep = pred["scores"] >= score_threshold
        boxes, labels = pred["boxes"][keep], pred["labels"][keep]
        order = np.argsort(-pred["scores"][keep], kind="stable")
        gt_keep = ~image.iscrowd
        gt_boxes, gt_labels = image.boxes[gt_keep], image.labels[gt_keep]
        ious = box_iou(torch.from_numpy(boxes).float(), torch.from_numpy(gt_boxes).float()).numpy()
        taken = np.zeros(len(gt_boxes), bool)
        hits = 0
        for d in order:
            candidates = np.where((gt_labels == labels[d]) & ~taken & (ious[d] >= iou))[0] if len(gt_boxes) else []
            if len(candidates):
                taken[candidates[np.argmax(ious[d, candidates])]] = True
                hits += 1
        rows.append({"missed": int(len(gt_boxes) - hits), "false": int(len(boxes) - hits), "matched": hits})
    return rows


def worst_first(errors: Sequence[dict[str, int]]) -> list[int]:
    """Image positions ordered by errors (missed + false), most first; ties keep data order."""
    return sorted(range(len(errors)), key=lambda i: -(errors[i]["missed"] + errors[i]["false"]))


def draw_boxes(ax: Any, boxes: np.ndarray, labels: Sequence[str], color: str, style: str = "-") -> None:
    from matplotlib.patches import Rectangle

    for (x1, y1, x2, y2), text in zip(boxes, labels, strict=True):
        ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor=color, linewidth=1.5, linestyle=style))
        if text:
            ax.text(
                x1, y1, text, color="white", fontsize=6, va="bottom", bbox={"facecolor": color, "pad": 0.5, "lw": 0}
            )


def gallery_figure(
    data: DetectionSet,
    predictions: Sequence[dict[str, np.ndarray]],
    count: int = 12,
    score_threshold: float = 0.5,
    columns: int = 4,
):
    """Held-out images, worst first: ground truth green (dashed), detections above the threshold red."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from amlvision.detection.data import load_image

    errors = image_errors(data, predictions, score_threshold)
    order = worst_first(errors)[:count]
    rows = max(1, -(-len(order) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.6 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    names = data.class_names
    for ax, i in zip(axes.flat, order, strict=False):
        image, pred = data.images[i], predictions[i]
        ax.imshow(load_image(image).permute(1, 2, 0).numpy())
        draw_boxes(ax, image.boxes, [names[k] for k in image.labels], "limegreen", "--")
        keep = pred["scores"] >= score_threshold
        draw_boxes(
            ax,
            pred["boxes"][keep],
            [f"{names[k]} {s:.2f}" for k, s in zip(pred["labels"][keep], pred["scores"][keep], strict=True)],
            "red",
        )
        e = errors[i]
        ax.set_title(f"{Path(image.path).name}: {e['missed']} missed, {e['false']} false", fontsize=7)
    fig.suptitle(
        f"held-out images, worst first (green: ground truth; red: detections >= {score_threshold})", fontsize=9
    )
    fig.tight_layout()
    return fig


def pr_curves_figure(result: dict[str, Any], columns: int = 6):
    """Per-class precision-recall curves at IoU 0.5 (COCO's interpolated precision), one panel per class."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    curves = result["pr_curves"]["precision"]
    recall = result["pr_curves"]["recall"]
    names = list(curves) or ["(no ground truth)"]
    columns = min(columns, len(names))
    rows = -(-len(names) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(2.4 * columns, 2.1 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, name in zip(axes.flat, names, strict=False):
        if name not in curves:
            continue
        ax.axis("on")
        ax.plot(recall, curves[name], color="tab:blue")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.set_title(f"{name} AP50 {result['per_class'][name]['AP50']:.2f}", fontsize=7)
        ax.tick_params(labelsize=6)
    fig.suptitle("precision-recall per class at IoU 0.5 (x: recall, y: precision)", fontsize=9)
    fig.tight_layout()
    return fig


def per_class_table(result: dict[str, Any]) -> dict[str, list[Any]]:
    """Per-class AP as columns (the run log's table)."""
    rows = result["per_class"]
    return {
        "class": list(rows),
        "AP": [round(r["AP"], 4) for r in rows.values()],
        "AP50": [round(r["AP50"], 4) for r in rows.values()],
        "boxes": [r["boxes"] for r in rows.values()],
    }
