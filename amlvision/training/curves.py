"""Per-class one-vs-rest precision-recall and ROC curves, AP / AUC, and a threshold report (scikit-learn).

For class c the score is the predicted probability of c and the positives are the samples of c.
``average_precision`` is scikit-learn's AP (area under the step PR curve) and ``roc_auc`` the
ROC AUC; both are ``None`` for a class without positives (or without negatives) in the held-out
data, which has no curve. The threshold report gives, per class, what the arg-max decision does
(precision / recall of ``predicted == c``) and the probability threshold that maximises the
one-vs-rest F1 on this data, with its precision and recall: for a rare defect class, the place to
start when the operating point has to favour recall.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import (  # noqa: E402
    average_precision_score,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)

from amlvision.training.display import plot_labels  # noqa: E402


def _has_both(positives: np.ndarray) -> bool:
    return bool(positives.any()) and not bool(positives.all())


def per_class_curves(labels: np.ndarray, probabilities: np.ndarray, class_names: list[str]) -> dict[str, Any]:
    """AP, ROC AUC and the threshold report per class, plus macro averages over the classes that have them."""
    labels = np.asarray(labels, dtype=np.int64)
    predicted = probabilities.argmax(axis=1) if len(labels) else np.zeros(0, dtype=np.int64)
    per_class: dict[str, dict[str, Any]] = {}
    for c, name in enumerate(class_names):
        positives = labels == c
        scores = probabilities[:, c] if len(labels) else np.zeros(0)
        chosen = predicted == c
        entry: dict[str, Any] = {
            "support": int(positives.sum()),
            "argmax_precision": float((positives & chosen).sum() / chosen.sum()) if chosen.any() else 0.0,
            "argmax_recall": float((positives & chosen).sum() / positives.sum()) if positives.any() else 0.0,
            "average_precision": None,
            "roc_auc": None,
            "best_f1_threshold": None,
            "best_f1": None,
            "best_f1_precision": None,
            "best_f1_recall": None,
        }
        if _has_both(positives):
            entry["average_precision"] = float(average_precision_score(positives, scores))
            entry["roc_auc"] = float(roc_auc_score(positives, scores))
            precision, recall, thresholds = precision_recall_curve(positives, scores)
            f1 = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0)
            best = int(np.argmax(f1[:-1])) if len(thresholds) else 0  # the last PR point has no threshold
            entry.update(
                best_f1_threshold=float(thresholds[best]),
                best_f1=float(f1[best]),
                best_f1_precision=float(precision[best]),
                best_f1_recall=float(recall[best]),
            )
        per_class[str(name)] = entry

    def macro(key: str) -> float | None:
        values = [e[key] for e in per_class.values() if e[key] is not None]
        return float(np.mean(values)) if values else None

    return {
        "per_class": per_class,
        "macro_average_precision": macro("average_precision"),
        "macro_roc_auc": macro("roc_auc"),
    }


def threshold_report_text(curves: dict[str, Any]) -> str:
    """A fixed-width table of the threshold report (threshold_report.txt)."""
    names = list(curves["per_class"])
    width = max([len("class"), *(len(n) for n in names)])
    columns = (("support", 7), ("AP", 6), ("ROC-AUC", 7), ("argmax-P", 8), ("argmax-R", 8))
    columns += (("best-F1-threshold", 17), ("best-F1", 7), ("at-P", 6), ("at-R", 6))
    head = "  ".join(["class".rjust(width), *(title.rjust(size) for title, size in columns)])

    def num(value: float | None, fmt: str) -> str:
        return "-" if value is None else format(value, fmt)

    lines = ["one-vs-rest per class: arg-max decision, and the probability threshold with the best F1", "", head]
    for name in names:
        e = curves["per_class"][name]
        lines.append(
            f"{name.rjust(width)}  {e['support']:7d}  {num(e['average_precision'], '6.4f'):>6}"
            f"  {num(e['roc_auc'], '7.4f'):>7}  {e['argmax_precision']:8.4f}  {e['argmax_recall']:8.4f}"
            f"  {num(e['best_f1_threshold'], '17.4f'):>17}  {num(e['best_f1'], '7.4f'):>7}"
            f"  {num(e['best_f1_precision'], '6.4f'):>6}  {num(e['best_f1_recall'], '6.4f'):>6}"
        )
    lines += [
        "",
        f"macro AP {num(curves['macro_average_precision'], '.4f')}, "
        f"macro ROC AUC {num(curves['macro_roc_auc'], '.4f')}",
    ]
    return "\n".join(lines) + "\n"


def plot_curves(
    labels: np.ndarray, probabilities: np.ndarray, class_names: list[str], curves: dict[str, Any], out_dir: Path
) -> dict[str, Path]:
    """pr_curves.png and roc_curves.png: one line per class, its AP / AUC in the legend."""
    labels = np.asarray(labels, dtype=np.int64)
    shown = plot_labels(class_names)
    paths = {"pr_curves": Path(out_dir) / "pr_curves.png", "roc_curves": Path(out_dir) / "roc_curves.png"}
    cmap = plt.get_cmap("tab20" if len(class_names) > 10 else "tab10")
    for kind, path in paths.items():
        fig, ax = plt.subplots(figsize=(7, 6), dpi=100)
        for c, name in enumerate(class_names):
            entry = curves["per_class"][str(name)]
            positives = labels == c
            if not _has_both(positives):
                continue
            scores = probabilities[:, c]
            color = cmap(c % cmap.N)
            if kind == "pr_curves":
                precision, recall, _ = precision_recall_curve(positives, scores)
                label = f"{shown[c]} (AP {entry['average_precision']:.3f})"
                ax.step(recall, precision, where="post", color=color, label=label)
            else:
                fpr, tpr, _ = roc_curve(positives, scores)
                ax.plot(fpr, tpr, color=color, label=f"{shown[c]} (AUC {entry['roc_auc']:.3f})")
        if kind == "pr_curves":
            ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02))
            ax.set_title(f"precision-recall per class (macro AP {_fmt(curves['macro_average_precision'])})")
        else:
            ax.plot([0, 1], [0, 1], color="gray", linestyle=":", linewidth=1)
            ax.set(xlabel="false positive rate", ylabel="true positive rate", xlim=(0, 1), ylim=(0, 1.02))
            ax.set_title(f"ROC per class, one-vs-rest (macro AUC {_fmt(curves['macro_roc_auc'])})")
        if ax.lines:
            ax.legend(fontsize=7, loc="lower left" if kind == "pr_curves" else "lower right")
        fig.tight_layout()
        fig.savefig(path)
        plt.close(fig)
    return paths


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
