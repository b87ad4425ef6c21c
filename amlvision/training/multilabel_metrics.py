"""Multi-label metrics (the ``multilabel`` task): mAP from scikit-learn and the CP/CR/CF1/OP/OR/OF1 family.

No PyTorch here: ``amlvision why`` and the tests import it on their own.

Definitions (those of the multi-label COCO literature, e.g. ML-GCN, Chen et al. 2019), with
``predicted = probability >= threshold`` and TP/FP/FN counted per class:

- per-class AP: ``sklearn.metrics.average_precision_score`` of that class's column; ``None`` for a
  class without a positive held-out image (AP is undefined there);
- ``map_macro``: the mean of the defined per-class APs; ``map_micro``: AP of all (image, class)
  pairs pooled (``average="micro"``);
- CP, CR: per-class precision and recall averaged over the classes with a positive (precision of a
  class never predicted counts as 0); CF1 = 2 CP CR / (CP + CR);
- OP, OR: precision and recall of all pairs pooled; OF1 = 2 OP OR / (OP + OR).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    balanced_accuracy_score,
    f1_score,
    precision_recall_fscore_support,
)


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r > 0 else 0.0


def multilabel_metrics(
    targets: np.ndarray, probabilities: np.ndarray, class_names: Sequence[str], threshold: float = 0.5
) -> dict[str, Any]:
    """Every multi-label figure for ``targets`` (N x K of 0/1) against ``probabilities`` (N x K)."""
    targets = np.asarray(targets).astype(np.int64)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if targets.shape != probabilities.shape or targets.ndim != 2:
        raise ValueError(f"targets {targets.shape} and probabilities {probabilities.shape} must be equal N x K")
    predicted = (probabilities >= threshold).astype(np.int64)
    positives = targets.sum(axis=0)
    defined = np.flatnonzero(positives > 0)
    per_class_ap: list[float | None] = [None] * targets.shape[1]
    for k in defined:
        per_class_ap[k] = float(average_precision_score(targets[:, k], probabilities[:, k]))
    precision, recall, f1, _ = precision_recall_fscore_support(targets, predicted, average=None, zero_division=0)
    cp = float(precision[defined].mean()) if len(defined) else 0.0
    cr = float(recall[defined].mean()) if len(defined) else 0.0
    tp = int((predicted & targets).sum())
    op = tp / int(predicted.sum()) if predicted.sum() else 0.0
    orr = tp / int(targets.sum()) if targets.sum() else 0.0
    return {
        "task": "multilabel",
        "threshold": float(threshold),
        "num_samples": int(len(targets)),
        "classes_with_positives": int(len(defined)),
        "map_macro": float(np.mean([per_class_ap[k] for k in defined])) if len(defined) else None,
        "map_micro": float(average_precision_score(targets, probabilities, average="micro")) if targets.sum() else None,
        "CP": cp,
        "CR": cr,
        "CF1": _f1(cp, cr),
        "OP": float(op),
        "OR": float(orr),
        "OF1": _f1(op, orr),
        "subset_accuracy": float(accuracy_score(targets, predicted)),
        "per_class": {
            str(name): {
                "average_precision": per_class_ap[k],
                "precision": float(precision[k]),
                "recall": float(recall[k]),
                "f1": float(f1[k]),
                "support": int(positives[k]),
            }
            for k, name in enumerate(class_names)
        },
    }


def multilabel_heldout_scores(
    targets: np.ndarray, probabilities: np.ndarray, loss: float, threshold: float = 0.5
) -> dict[str, float]:
    """The per-epoch held-out scores of a multilabel run.

    ``val_accuracy`` is subset accuracy (the whole label set right); ``val_balanced_accuracy`` the mean
    over classes with a positive of each class's balanced accuracy (mean of its TPR and TNR).
    """
    keys = ("val_loss", "val_accuracy", "val_macro_f1", "val_balanced_accuracy", "val_weighted_f1", "val_map")
    if not len(targets):
        return {k: float("nan") for k in keys}
    predicted = (probabilities >= threshold).astype(np.int64)
    targets = targets.astype(np.int64)
    defined = targets.sum(axis=0) > 0
    return {
        "val_loss": float(loss),
        "val_accuracy": float(accuracy_score(targets, predicted)),
        "val_macro_f1": float(f1_score(targets[:, defined], predicted[:, defined], average="macro", zero_division=0)),
        "val_balanced_accuracy": float(
            np.mean([balanced_accuracy_score(targets[:, k], predicted[:, k]) for k in np.flatnonzero(defined)])
        ),
        "val_weighted_f1": float(f1_score(targets, predicted, average="weighted", zero_division=0)),
        "val_map": float(average_precision_score(targets[:, defined], probabilities[:, defined], average="macro")),
    }
