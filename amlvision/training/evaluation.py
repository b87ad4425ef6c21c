"""Held-out evaluation with scikit-learn: confusion matrix, classification report, per-class curves and plots.

Besides accuracy and F1: balanced accuracy (mean per-class recall, the honest headline on
imbalanced data), the confusion matrix also normalised per true class (each row sums to 1:
the diagonal is each class's recall), and per-class precision-recall / ROC curves with AP / AUC
and a one-vs-rest threshold report (``amlvision.training.curves``). Class names stay as written
everywhere except plot labels, which shorten long numbers (``amlvision.training.display``).

``evaluate_predictions`` is the single place metrics are computed, both at the end of train.py and
in ``amlvision evaluate``; it also saves the raw predictions (``predictions.npz``) so anyone can
re-check every number with scikit-learn.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; no display on training machines
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import (  # noqa: E402
    accuracy_score,
    balanced_accuracy_score,
    classification_report,
    confusion_matrix,
)

from amlvision.training.curves import per_class_curves, plot_curves, threshold_report_text  # noqa: E402
from amlvision.training.display import plot_labels  # noqa: E402

GALLERY_SIZE = 25


@dataclass
class MistakeGallery:
    """Keeps the ``size`` most confident wrong predictions seen so far, with their uint8 HxWxC images."""

    size: int = GALLERY_SIZE
    items: list[tuple[float, int, int, int, np.ndarray]] = field(default_factory=list)

    def offer(self, images_nhwc: np.ndarray, labels: np.ndarray, probs: np.ndarray, offset: int) -> None:
        predicted = probs.argmax(axis=1)
        confidence = probs.max(axis=1)
        wrong = np.flatnonzero(predicted != labels)
        if not len(wrong):
            return
        threshold = self.items[-1][0] if len(self.items) >= self.size else -1.0
        for i in wrong[np.argsort(-confidence[wrong])]:
            if confidence[i] <= threshold and len(self.items) >= self.size:
                break
            self.items.append(
                (float(confidence[i]), offset + int(i), int(labels[i]), int(predicted[i]), np.array(images_nhwc[i]))
            )
        self.items.sort(key=lambda item: -item[0])
        del self.items[self.size :]


def evaluate_predictions(
    labels: np.ndarray,
    probabilities: np.ndarray,
    class_names: list[str],
    out_dir: Path,
    *,
    gallery: MistakeGallery | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write metrics.json, classification_report.txt, confusion_matrix.{json,png}, confusion_matrix_normalized.png,
    pr_curves.png, roc_curves.png, threshold_report.txt, mistakes.png and predictions.npz."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    labels = np.asarray(labels, dtype=np.int64)
    predicted = probabilities.argmax(axis=1)
    indexes = list(range(len(class_names)))
    matrix = confusion_matrix(labels, predicted, labels=indexes)
    row_sums = matrix.sum(axis=1, keepdims=True)
    normalized = np.divide(matrix, row_sums, out=np.zeros(matrix.shape), where=row_sums > 0)
    curves = per_class_curves(labels, probabilities, list(class_names))
    report_text = classification_report(
        labels, predicted, labels=indexes, target_names=class_names, digits=4, zero_division=0
    )
    report = classification_report(
        labels, predicted, labels=indexes, target_names=class_names, output_dict=True, zero_division=0
    )
    metrics: dict[str, Any] = {
        "accuracy": float(accuracy_score(labels, predicted)),
        "num_samples": int(len(labels)),
        "macro_f1": float(report["macro avg"]["f1-score"]),
        "weighted_f1": float(report["weighted avg"]["f1-score"]),
        "balanced_accuracy": float(balanced_accuracy_score(labels, predicted)) if len(labels) else float("nan"),
        "macro_average_precision": curves["macro_average_precision"],
        "macro_roc_auc": curves["macro_roc_auc"],
        "per_class": {
            name: {
                **{k: float(v) for k, v in report[name].items()},
                "average_precision": curves["per_class"][str(name)]["average_precision"],
                "roc_auc": curves["per_class"][str(name)]["roc_auc"],
            }
            for name in class_names
        },
        "thresholds": curves["per_class"],
        "confusion_matrix": {
            "class_labels": list(class_names),
            "matrix": matrix.tolist(),
            "normalized_true": np.round(normalized, 6).tolist(),
        },
        **(extra or {}),
    }
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    (out_dir / "classification_report.txt").write_text(report_text)
    (out_dir / "confusion_matrix.json").write_text(json.dumps(metrics["confusion_matrix"], indent=2))
    np.savez_compressed(
        out_dir / "predictions.npz",
        labels=labels,
        probabilities=probabilities.astype(np.float32),
        class_names=np.array(class_names),
    )
    (out_dir / "threshold_report.txt").write_text(threshold_report_text(curves))
    plot_confusion_matrix(matrix, class_names, out_dir / "confusion_matrix.png")
    plot_confusion_matrix(normalized, class_names, out_dir / "confusion_matrix_normalized.png", normalized=True)
    plot_curves(labels, probabilities, list(class_names), curves, out_dir)
    plot_mistakes(gallery or MistakeGallery(), class_names, out_dir / "mistakes.png")
    return metrics


def per_class_table(metrics: dict[str, Any]) -> dict[str, list]:
    """Per-class precision/recall/F1/support as columns, for ``run.log_table``."""
    names = list(metrics["per_class"])
    rows = [metrics["per_class"][n] for n in names]
    return {
        "class": names,
        "precision": [r["precision"] for r in rows],
        "recall": [r["recall"] for r in rows],
        "f1": [r["f1-score"] for r in rows],
        "support": [int(r["support"]) for r in rows],
        # NaN where a class has no curve (no held-out positives): a number for every tracking backend
        "average_precision": [_number(r.get("average_precision")) for r in rows],
        "roc_auc": [_number(r.get("roc_auc")) for r in rows],
    }


def _number(value: float | None) -> float:
    return float("nan") if value is None else float(value)


def plot_confusion_matrix(matrix: np.ndarray, class_names: list[str], path: Path, normalized: bool = False) -> Path:
    """A labelled confusion-matrix heat map with counts (or, ``normalized``, per-true-class fractions) in each cell."""
    k = len(class_names)
    shown = plot_labels(class_names)
    # capped: 80 COCO classes would otherwise draw a 4,600-pixel square (23 s on a loaded 2-core CPU)
    size = min(max(5.0, 0.55 * k + 2), 20.0)
    ticks = {} if k <= 30 else {"fontsize": 6}
    fig, ax = plt.subplots(figsize=(size, size), dpi=100)
    ax.imshow(matrix, cmap="Blues", **({"vmin": 0, "vmax": 1} if normalized else {}))
    ax.set_xticks(range(k), labels=shown, rotation=45, ha="right", **ticks)
    ax.set_yticks(range(k), labels=shown, **ticks)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if normalized:
        ax.set_title("confusion matrix normalised per true class (diagonal = recall)")
    else:
        ax.set_title(f"confusion matrix (accuracy {np.trace(matrix) / max(1, matrix.sum()):.2%})")
    if k <= 30:
        top = (1.0 if normalized else matrix.max()) if matrix.size else 0
        for i in range(k):
            for j in range(k):
                ax.text(
                    j,
                    i,
                    f"{matrix[i, j]:.2f}" if normalized else str(matrix[i, j]),
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if matrix[i, j] > top / 2 else "black",
                )
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_mistakes(gallery: MistakeGallery, class_names: list[str], path: Path) -> Path:
    """A grid of the most confident mistakes, each titled 'true -> predicted (confidence)'."""
    items = gallery.items
    shown = plot_labels(class_names)
    cols = 5
    rows = max(1, -(-len(items) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 2.2, rows * 2.4), dpi=100, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    if not items:
        axes[0, 0].text(0, 0.5, "no mistakes", fontsize=12)
    for ax, (confidence, index, true, pred, image) in zip(axes.flat, items, strict=False):
        ax.imshow(
            image[:, :, 0] if image.shape[2] == 1 else image,
            cmap="gray" if image.shape[2] == 1 else None,
            vmin=0,
            vmax=255,
            interpolation="nearest",
        )
        ax.set_title(f"#{index}\n{shown[true]} -> {shown[pred]} ({confidence:.0%})", fontsize=8)
    fig.suptitle("most confident mistakes")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
