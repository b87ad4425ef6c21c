"""Object detection: boxes, labels and scores per image from ``model.onnx`` (docs/CONTRACTS.md, ``task: detection``).

Serving side (numpy only; the scoring image has no PyTorch): :meth:`DetectionTask.detections` turns
the graph's outputs for one image into the answer, a list of ``{"label", "score", "box"}`` highest
score first, with the boxes mapped back to the original image's pixels. The classification hooks
``scores`` / ``answers`` (per-class scores ``[N, K]``) do not apply: a detection answer is per box.

Export: :meth:`DetectionTask.export` is :func:`amlvision.detection.export.export_detection_model`
(TorchScript ONNX, checked against PyTorch on real images of two sizes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from amlvision.model_dir import DETECTION, Preprocess
from amlvision.tasks.base import Task

if TYPE_CHECKING:
    from torch import nn

DEFAULT_SCORE_THRESHOLD = 0.3  # as Azure ML AutoML's image object detection answers (box_score_threshold)
DEFAULT_MAX_DETECTIONS = 100  # torchvision's detections_per_img: the graph never returns more
MAX_DETECTIONS_LIMIT = 1000


@dataclass(frozen=True)
class Detection:
    """One object: its class, the model's score and its box ``x1, y1, x2, y2`` in the original image's pixels."""

    label: str
    score: float
    box: tuple[float, float, float, float]

    def to_json(self) -> dict:
        return {"label": self.label, "score": self.score, "box": list(self.box)}


class DetectionTask(Task):
    name = DETECTION

    # ------------------------------------------------------------------ serving
    def detections(
        self,
        outputs: dict[str, np.ndarray],
        labels: Sequence[str],
        *,
        model_size: tuple[int, int],
        original_size: tuple[int, int],
        score_threshold: float = DEFAULT_SCORE_THRESHOLD,
        max_detections: int = DEFAULT_MAX_DETECTIONS,
    ) -> list[Detection]:
        """The graph's ``boxes`` / ``labels`` / ``scores`` for one image -> its detections, highest score first.

        ``model_size`` / ``original_size``: (width, height) of the image the graph saw and of the
        original; boxes are scaled from one to the other and clipped to the original.
        """
        boxes, indexes, scores = (outputs[name] for name in self.signature.outputs)
        if not (np.isfinite(boxes).all() and np.isfinite(scores).all()):
            raise RuntimeError("the detection model returned boxes or scores that are not finite")
        if len(indexes) and (indexes.min() < 0 or indexes.max() >= len(labels)):
            raise RuntimeError(f"the model returned label index {int(indexes.max())}; labels.json has {len(labels)}")
        (width, height), (original_width, original_height) = model_size, original_size
        scale = np.array([original_width / width, original_height / height] * 2, dtype=np.float64)
        limit = np.array([original_width, original_height] * 2, dtype=np.float64)
        keep = [i for i in np.argsort(-scores, kind="stable") if scores[i] >= score_threshold][:max_detections]
        found = []
        for i in keep:
            box = np.clip(boxes[i].astype(np.float64) * scale, 0.0, limit)
            corners = tuple(round(float(v), 2) for v in box)
            found.append(Detection(labels[int(indexes[i])], float(scores[i]), corners))  # type: ignore[arg-type]
        return found

    # ------------------------------------------------------------------ training
    def trainer(self, cfg: Any) -> Any:
        """The detector returns its own losses and is evaluated with COCOeval: its own trainer."""
        from amlvision.detection.training import DetectionTrainer

        return DetectionTrainer(cfg)

    # ------------------------------------------------------------------ export
    def export(
        self, model: nn.Module, out_dir: Path, class_names: list[str], preprocess: Preprocess, check_inputs: Any
    ) -> dict[str, float]:
        """export_detection_model with the preprocess's sizes; returns the ONNX-vs-PyTorch figures."""
        from amlvision.detection.export import export_checked

        checks = export_checked(model, out_dir, class_names, preprocess.min_size, preprocess.max_size, check_inputs)
        return {
            "images": float(len(checks)),
            "max_box_diff_px": max(c.max_box_diff_px for c in checks),
            "max_score_diff": max(c.max_score_diff for c in checks),
        }


TASK = DetectionTask()
