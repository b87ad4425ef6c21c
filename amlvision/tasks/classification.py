"""Single-label classification: one class per image, softmax over ``logits`` ``[N, K]``.

Loss: cross-entropy (optional class weights and label smoothing). Training figure: argmax
accuracy. Held-out scores per epoch: accuracy, macro/weighted F1, balanced accuracy, loss
(``amlvision.training.selection``, which ``--select-metric`` chooses among). Final evaluation:
``amlvision.training.evaluation.evaluate_predictions`` (confusion matrices, per-class curves, report,
mistakes gallery). Answer: the top-k classes with their softmax probabilities.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from amlvision.model_dir import CLASSIFICATION, Preprocess
from amlvision.tasks.base import HeldoutPass, Task

if TYPE_CHECKING:
    import torch
    from torch import nn

# Files the final evaluation writes, as the tracker receives them (plots first, then files).
PLOTS = ("confusion_matrix", "confusion_matrix_normalized", "pr_curves", "roc_curves", "mistakes")
REPORTS = ("metrics.json", "classification_report.txt", "threshold_report.txt")


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64 (stable: the row maximum is subtracted first)."""
    logits = np.asarray(logits, dtype=np.float64)
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indexes of the ``k`` highest scores per row, highest first (ties: lower index first)."""
    k = max(1, min(k, scores.shape[1]))
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def _uint8_nhwc(x: torch.Tensor) -> np.ndarray:
    import torch

    return x.clamp(0, 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


class Classification(Task):
    name = CLASSIFICATION

    # ------------------------------------------------------------------ serving
    def scores(self, outputs: dict[str, np.ndarray]) -> np.ndarray:
        return softmax(outputs[self.signature.output])

    def answers(self, scores: np.ndarray, labels: Sequence[str], k: int, preprocess: Preprocess) -> list[dict]:
        answers = []
        for i, row in enumerate(top_k(scores, k)):
            ranked = [{"label": labels[j], "probability": float(scores[i, j])} for j in row]
            answers.append({**ranked[0], "top_k": ranked})
        return answers

    # ------------------------------------------------------------------ training
    def criterion(self, class_weights: Sequence[float] | None, label_smoothing: float, device: Any) -> nn.Module:
        import torch

        weight = None if class_weights is None else torch.tensor(class_weights, dtype=torch.float32, device=device)
        return torch.nn.CrossEntropyLoss(weight=weight, label_smoothing=label_smoothing)

    def count_correct(self, outputs: torch.Tensor, targets: torch.Tensor) -> int:
        return int((outputs.detach().argmax(1) == targets).sum())

    def predict(
        self, model: nn.Module, source: Any, normalize: Any, device: Any, batch_size: int, gallery: Any = None
    ) -> HeldoutPass:
        """Softmax probabilities, labels and mean (unweighted) cross-entropy; offers mistakes to ``gallery``."""
        import torch

        model.eval()
        probs, labels, loss_sum, offset = [], [], 0.0, 0
        with torch.no_grad():
            for x, y in source.iter_epoch(0, batch_size):
                x, y = x.to(device), y.to(device)
                logits = model(normalize(x)).float()
                loss_sum += float(torch.nn.functional.cross_entropy(logits, y, reduction="sum"))
                p = torch.softmax(logits, dim=1).cpu().numpy()
                if gallery is not None:
                    gallery.offer(_uint8_nhwc(x), y.cpu().numpy(), p, offset)
                probs.append(p)
                labels.append(y.cpu().numpy())
                offset += len(y)
        probabilities = np.concatenate(probs) if probs else np.zeros((0, 0), dtype=np.float32)
        all_labels = np.concatenate(labels) if labels else np.zeros(0, dtype=np.int64)
        return HeldoutPass(probabilities, all_labels, loss_sum / max(1, len(all_labels)))

    def epoch_scores(self, heldout: HeldoutPass, num_classes: int) -> dict[str, float]:
        from amlvision.training.selection import heldout_scores

        return heldout_scores(heldout.targets, heldout.scores, heldout.loss, num_classes)

    def describe_epoch(self, row: dict[str, Any]) -> str:
        return (
            f"loss {row['loss']:.4f} acc {row['accuracy']:.4f} val_loss {row['val_loss']:.4f} "
            f"val_acc {row['val_accuracy']:.4f} val_macro_f1 {row['val_macro_f1']:.4f} "
            f"val_bal_acc {row['val_balanced_accuracy']:.4f}"
        )

    def evaluate(
        self,
        heldout: HeldoutPass,
        class_names: list[str],
        out_dir: Path,
        *,
        gallery: Any = None,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        from amlvision.training.evaluation import evaluate_predictions

        return evaluate_predictions(heldout.targets, heldout.scores, class_names, out_dir, gallery=gallery, extra=extra)

    def final_figures(self, metrics: dict[str, Any]) -> dict[str, float]:
        figures = {
            "final_accuracy": metrics["accuracy"],
            "final_macro_f1": metrics["macro_f1"],
            "final_balanced_accuracy": metrics["balanced_accuracy"],
        }
        for key in ("macro_average_precision", "macro_roc_auc"):
            if metrics.get(key) is not None:
                figures[f"final_{key}"] = metrics[key]
        return figures

    def describe_final(self, metrics: dict[str, Any]) -> str:
        ap = metrics.get("macro_average_precision")
        return (
            f"accuracy {metrics['accuracy']:.4f}, macro F1 {metrics['macro_f1']:.4f}, balanced accuracy "
            f"{metrics['balanced_accuracy']:.4f}, macro AP {'-' if ap is None else f'{ap:.4f}'}"
        )

    def track_final(self, tracker: Any, metrics: dict[str, Any], class_names: list[str], out_dir: Path) -> None:
        from amlvision.training.evaluation import per_class_table

        tracker.log_table("per_class_metrics", per_class_table(metrics))
        tracker.log_confusion_matrix("confusion_matrix", class_names, metrics["confusion_matrix"]["matrix"])
        for name in PLOTS:
            tracker.log_image(name, out_dir / f"{name}.png")
        for name in REPORTS:
            tracker.log_artifact(out_dir / name)

    def export(
        self, model: nn.Module, out_dir: Path, class_names: list[str], preprocess: Preprocess, check_inputs: Any
    ) -> dict[str, float]:
        from amlvision.training.export import export_onnx

        return export_onnx(model, out_dir, class_names, preprocess, check_inputs)


TASK = Classification()
