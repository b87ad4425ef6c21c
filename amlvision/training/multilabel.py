"""The training run of the ``multilabel`` task (amlvision/tasks/multilabel.py): multi-hot targets looked up per sample.

Trained by ``train.py --from-boxes multilabel`` on data derived from COCO boxes
(``amlvision.detection.derive``): the packed labels are each sample's row in the multi-hot target
table written beside the packed directory, and this trainer looks the rows up. The model directory
is the classification one (input ``input``, output ``logits`` [N, K]) with ``"task": "multilabel"``
and ``"threshold"`` in preprocess.json, so serving applies a sigmoid and answers every class's
probability plus the labels at or above the threshold (the task's serving hooks). Loss, training
figure, export and the run-log lines come from the task; metrics from ``multilabel_metrics``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from amlvision.detection.derive import load_targets
from amlvision.model_dir import MULTILABEL, Preprocess
from amlvision.training.balance import balance_record
from amlvision.training.curves import plt
from amlvision.training.data import derived_packed, resolve_data
from amlvision.training.multilabel_metrics import multilabel_heldout_scores, multilabel_metrics
from amlvision.training.trainer import Trainer

log = logging.getLogger("amlvision.train")


class MultilabelTrainer(Trainer):
    """:class:`Trainer` with multi-hot targets, BCE-with-logits, sigmoid evaluation and multilabel metrics."""

    def _prepare(self) -> None:
        super()._prepare()
        packed = derived_packed(self.cfg, resolve_data(self.cfg).root)  # the directory the data was read from
        self.targets = {
            split: torch.from_numpy(load_targets(packed, split).astype(np.float32)).to(self.device)
            for split in ("train", "val")
        }
        counts = self.targets["train"].sum(0).cpu().numpy().astype(np.int64)
        self.balance = balance_record(self.data.class_names, counts, None, "none", self.cfg.sampler)
        self.balance["counts_are"] = "training images holding the class (multilabel)"

    def make_criterion(self, class_weights: list[float] | None) -> nn.Module:
        """BCE-with-logits as it is: the recipes' class weights and label smoothing are single-label ideas."""
        return self.task.criterion(None, 0.0, self.device)

    def training_targets(self, labels: torch.Tensor) -> torch.Tensor:
        return self.targets["train"].index_select(0, labels)

    @torch.no_grad()
    def predict_heldout(self, model: nn.Module) -> tuple[np.ndarray, np.ndarray, float]:
        """Sigmoid probabilities, multi-hot targets and mean BCE (per image, summed over classes)."""
        model.eval()
        probs, targets, loss_sum = [], [], 0.0
        for x, rows in self.data.heldout.iter_epoch(0, self.cfg.eval_batch_size):
            logits = model(self.normalize(x.to(self.device))).float()
            y = self.targets["val"].index_select(0, rows.to(self.device))
            loss_sum += float(nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="sum"))
            probs.append(torch.sigmoid(logits).cpu().numpy())
            targets.append(y.cpu().numpy().astype(np.uint8))
        k = len(self.data.class_names)
        p = np.concatenate(probs) if probs else np.zeros((0, k), np.float32)
        t = np.concatenate(targets) if targets else np.zeros((0, k), np.uint8)
        return p, t, loss_sum / max(1, len(t))

    def heldout_epoch_scores(self, model: nn.Module) -> dict[str, float]:
        probs, targets, loss = self.predict_heldout(model)
        return multilabel_heldout_scores(targets, probs, loss, self.cfg.threshold)

    def preprocess(self) -> Preprocess:
        return dataclasses.replace(super().preprocess(), task=MULTILABEL, threshold=self.cfg.threshold)

    def _finish(self) -> dict[str, Any]:
        cfg, data = self.cfg, self.data
        selected = self._select_weights()
        model = self.eval_model()
        start = time.perf_counter()
        probs, targets, val_loss = self.predict_heldout(model)
        eval_seconds = time.perf_counter() - start
        train_seconds = sum(r["epoch_seconds"] for r in self.state.history)
        metrics = multilabel_metrics(targets, probs, data.class_names, cfg.threshold)
        metrics = {
            "selected_by": {**selected, "final": metrics["map_macro"]},
            "map_macro": metrics["map_macro"],
            **metrics,
            "model": cfg.model,
            "heldout": data.heldout_name,
            "loss": val_loss,
            "epochs": cfg.epochs,
            "train_seconds": train_seconds,
            "eval_seconds": eval_seconds,
            "data_checksum": data.checksum,
            "history": self.state.history,
            "tta": cfg.tta,
            "class_balance": self.balance,
        }
        np.savez_compressed(
            self.outputs / "predictions.npz",
            targets=targets,
            probabilities=probs.astype(np.float32),
            class_names=np.array(data.class_names),
        )
        plot_per_class_ap(metrics, self.outputs / "per_class_ap.png")
        weights = self.weights_network().state_dict()
        torch.save({k: v.detach().cpu() for k, v in weights.items()}, self.outputs / "model.pt")
        metrics["onnx_check"] = self.task.export(
            model.cpu(), self.outputs, data.class_names, self.preprocess(), self._check_images()
        )
        model.to(self.device)
        self.model.to(self.device)
        (self.outputs / "metrics.json").write_text(json.dumps(metrics, indent=2))
        final = self.task.final_figures(metrics)
        self.tracker.log_metrics({**final, "selected_epoch": selected["epoch"], "train_seconds": train_seconds},
                                 step=cfg.epochs)  # fmt: skip
        per_class = metrics["per_class"]
        self.tracker.log_table(
            "per_class_metrics",
            {
                "class": list(per_class),
                **{key: [_number(row[key]) for row in per_class.values()] for key in ("average_precision", "f1")},
                "support": [row["support"] for row in per_class.values()],
            },
        )
        self.tracker.log_image("per_class_ap", self.outputs / "per_class_ap.png")
        for name in ("metrics.json", "model.onnx", "labels.json", "preprocess.json"):
            self.tracker.log_artifact(self.outputs / name)
        log.info(
            "held-out %s %s on %d images; ONNX max |diff| %.2g; outputs in %s",
            data.heldout_name,
            self.task.describe_final(metrics),
            metrics["num_samples"],
            metrics["onnx_check"]["max_abs_diff"],
            self.outputs,
        )
        return metrics


def _number(value: float | None) -> float:
    return float("nan") if value is None else float(value)


def plot_per_class_ap(metrics: dict[str, Any], path: Path) -> Path:
    """Bar chart of per-class AP (classes without a held-out positive left out), best first."""
    rows = sorted(
        ((name, row["average_precision"], row["support"]) for name, row in metrics["per_class"].items()
         if row["average_precision"] is not None),
        key=lambda r: -r[1],
    )  # fmt: skip
    fig, ax = plt.subplots(figsize=(max(6.0, 0.18 * len(rows) + 2), 4), dpi=100)
    ax.bar(range(len(rows)), [r[1] for r in rows], color="tab:blue")
    ax.set_xticks(range(len(rows)), labels=[f"{r[0]} ({r[2]})" for r in rows], rotation=90, fontsize=7)
    ax.set_ylim(0, 1)
    ax.set_ylabel("average precision")
    ax.set_title(f"per-class AP (support in brackets); mAP macro {_number(metrics['map_macro']):.3f}")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
