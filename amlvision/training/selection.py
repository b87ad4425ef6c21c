"""``--select-metric``: which held-out score picks the epoch whose weights are evaluated and exported.

Every epoch's held-out scores are in the history (``val_accuracy``, ``val_macro_f1``,
``val_balanced_accuracy``, ``val_weighted_f1``, ``val_loss``). ``last`` exports the final
weights (the behaviour before this option); any other metric exports the epoch with the best
value (highest; lowest for ``loss``), the earliest one on a tie. Note that when the held-out
split is the data's test split, choosing on it makes the reported score an optimistic one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

SELECT_METRICS = ("last", "accuracy", "macro_f1", "balanced_accuracy", "weighted_f1", "loss")
BEST_MODEL_NAME = "best_model.pt"


def heldout_scores(labels: np.ndarray, probabilities: np.ndarray, loss: float, num_classes: int) -> dict[str, float]:
    """The per-epoch held-out scores the history records, computed with scikit-learn."""
    if not len(labels):
        return {f"val_{m}": float("nan") for m in SELECT_METRICS[1:]}
    predicted = probabilities.argmax(1)
    indexes = list(range(num_classes))
    return {
        "val_loss": float(loss),
        "val_accuracy": float(accuracy_score(labels, predicted)),
        "val_macro_f1": float(f1_score(labels, predicted, labels=indexes, average="macro", zero_division=0)),
        "val_balanced_accuracy": float(balanced_accuracy_score(labels, predicted)),
        "val_weighted_f1": float(f1_score(labels, predicted, labels=indexes, average="weighted", zero_division=0)),
    }


def best_epoch(history: Sequence[dict[str, Any]], metric: str) -> int:
    """The 1-based epoch ``metric`` selects from ``history`` (see module docstring)."""
    if metric not in SELECT_METRICS:
        raise ValueError(f"select metric must be one of {SELECT_METRICS}, got {metric!r}")
    if not history:
        raise ValueError("no epoch has been evaluated yet")
    if metric == "last":
        return int(history[-1]["epoch"])
    values = [float(row[f"val_{metric}"]) for row in history]
    sign = 1.0 if metric == "loss" else -1.0
    keyed = [(sign * v if np.isfinite(v) else np.inf, i) for i, v in enumerate(values)]
    return int(history[min(keyed)[1]]["epoch"])


def selection_record(history: Sequence[dict[str, Any]], metric: str) -> dict[str, Any]:
    """``{"metric", "epoch", "value"}`` for metrics.json and the run log."""
    epoch = best_epoch(history, metric)
    row = next(r for r in history if int(r["epoch"]) == epoch)
    key = "val_accuracy" if metric == "last" else f"val_{metric}"
    return {"metric": metric, "epoch": epoch, "value": float(row[key])}
