"""Multi-label classification: every category present in an image, one sigmoid per class over ``logits`` [N, K].

Serving (numpy only): scores are the per-class sigmoids; the answer lists every class's probability
and the labels at or above preprocess.json's ``threshold``, most probable first (``k`` does not
apply). Training: binary cross-entropy with logits; the running training figure counts images whose
whole label set is right; the run's metrics are ``amlvision.training.multilabel_metrics`` (mAP
macro/micro, per-class AP, CP/CR/CF1/OP/OR/OF1). The training run itself is
``amlvision.training.multilabel.MultilabelTrainer``: its held-out pass looks each sample's multi-hot
target up in the table derived from the boxes (``amlvision.detection.derive``), which this
interface's ``predict`` has no argument for.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from amlvision.model_dir import DEFAULT_THRESHOLD, MULTILABEL, Preprocess
from amlvision.tasks.base import Task

if TYPE_CHECKING:
    import torch
    from torch import nn


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """1 / (1 + e^-x) in float64, written with tanh so large |x| never overflows."""
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(logits, dtype=np.float64)))


class Multilabel(Task):
    name = MULTILABEL

    # ------------------------------------------------------------------ serving
    def scores(self, outputs: dict[str, np.ndarray]) -> np.ndarray:
        return sigmoid(outputs[self.signature.output])

    def answers(self, scores: np.ndarray, labels: Sequence[str], k: int, preprocess: Preprocess) -> list[dict]:
        threshold = preprocess.threshold if preprocess.threshold is not None else DEFAULT_THRESHOLD
        answers = []
        for row in scores:
            order = np.argsort(-row, kind="stable")
            answers.append(
                {
                    "labels": [labels[j] for j in order if row[j] >= threshold],
                    "threshold": float(threshold),
                    "probabilities": {name: float(p) for name, p in zip(labels, row, strict=True)},
                }
            )
        return answers

    # ------------------------------------------------------------------ training
    def trainer(self, cfg: Any) -> Any:
        """Multi-hot targets are looked up per sample from the derived table: its own trainer does that."""
        from amlvision.training.multilabel import MultilabelTrainer

        return MultilabelTrainer(cfg)

    def criterion(self, class_weights: Sequence[float] | None, label_smoothing: float, device: Any) -> nn.Module:
        import torch

        if class_weights is not None or label_smoothing:
            raise ValueError("the multilabel task trains without class weights and label smoothing")
        return torch.nn.BCEWithLogitsLoss()

    def count_correct(self, outputs: torch.Tensor, targets: torch.Tensor) -> int:
        return int(((outputs.detach() > 0) == (targets > 0.5)).all(1).sum())

    def describe_epoch(self, row: dict[str, Any]) -> str:
        return (
            f"loss {row['loss']:.4f} exact-set acc {row['accuracy']:.4f} val_loss {row['val_loss']:.4f} "
            f"val_mAP {row['val_map']:.4f} val_macro_f1 {row['val_macro_f1']:.4f}"
        )

    def final_figures(self, metrics: dict[str, Any]) -> dict[str, float]:
        return {f"final_{k}": metrics[k] for k in ("map_macro", "map_micro", "CF1", "OF1") if metrics[k] is not None}

    def describe_final(self, metrics: dict[str, Any]) -> str:
        return (
            f"mAP macro {metrics['map_macro'] or 0.0:.4f} micro {metrics['map_micro'] or 0.0:.4f}, CF1 "
            f"{metrics['CF1']:.4f}, OF1 {metrics['OF1']:.4f} at threshold {metrics['threshold']:.2f} "
            f"({metrics['classes_with_positives']} classes with positives)"
        )

    def export(
        self, model: nn.Module, out_dir: Path, class_names: list[str], preprocess: Preprocess, check_inputs: Any
    ) -> dict[str, float]:
        from amlvision.training.export import export_onnx

        return export_onnx(model, out_dir, class_names, preprocess, check_inputs)


TASK = Multilabel()
