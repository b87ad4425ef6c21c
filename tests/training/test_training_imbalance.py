"""Imbalanced data end to end: class weights and the balanced sampler raise minority recall, --select-metric
exports the best logged epoch, and per-class PR/ROC curves with AP/AUC reach the outputs and the run log.

The data: five real CIFAR-10 classes of the shared subset at 16x16 (a small input keeps three runs near a
minute on 2 cores), three with 150 training images and two (airplane, cat) cut to 8 = 5%; the test
split is balanced (50 per class), so minority recall is measured on as many images as majority recall.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from sklearn.metrics import average_precision_score, balanced_accuracy_score, recall_score, roc_auc_score

from amlvision.data.resolve import open_collection
from amlvision.formats.packed import write_packed

from .helpers import predictions

MAJORITY = ("automobile", "frog", "ship")
MINORITY = ("airplane", "cat")
MINORITY_TRAIN = 8  # 5% of the 150 training images of a majority class
SIZE = 16
RUNS = {
    "unweighted": [],
    "weights": ["--class-weights", "balanced", "--select-metric", "macro_f1"],
    "sampler": ["--sampler", "balanced", "--select-metric", "macro_f1"],
}


@pytest.fixture(scope="module")
def imbalanced_cifar(cifar_subset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    names = sorted(MAJORITY + MINORITY)
    splits = {}
    for split, items in open_collection(cifar_subset).items():
        images, labels = [], []
        for new, name in enumerate(names):
            members = np.flatnonzero(items.labels == items.class_names.index(name))
            if split == "train" and name in MINORITY:
                members = members[:MINORITY_TRAIN]
            for i in members:
                small = Image.fromarray(items.load(i, 3)).resize((SIZE, SIZE), Image.BILINEAR)
                images.append(np.asarray(small))
                labels.append(new)
        splits[split] = (np.stack(images), np.asarray(labels, dtype=np.int64))
    return write_packed(tmp_path_factory.mktemp("imbalanced") / "cifar5", splits, names)


@pytest.fixture(scope="module")
def runs(imbalanced_cifar: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same seeded run unweighted, with balanced class weights and with the balanced sampler."""
    from amlvision.training.loop import main

    root = tmp_path_factory.mktemp("imbalance-runs")
    mp = pytest.MonkeyPatch()
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_RUN_ID", "AZUREML_RUN_ID"):
        mp.delenv(name, raising=False)
    common = ["--model", "fast", "--epochs", "6", "--batch-size", "64", "--seed", "0", "--threads", "2"]
    try:
        for name, extra in RUNS.items():
            args = ["--data", str(imbalanced_cifar), "--outputs", str(root / name), "--progress", "log"]
            assert main([*args, *common, *extra]) == 0, name
    finally:
        mp.undo()
    return {name: root / name for name in RUNS}


def _metrics(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())


def _minority_recall(run: Path) -> np.ndarray:
    labels, probs = predictions(run)
    names = json.loads((run / "labels.json").read_text())
    recall = recall_score(labels, probs.argmax(1), labels=range(len(names)), average=None, zero_division=0)
    per_class = _metrics(run)["per_class"]
    for name, value in zip(names, recall, strict=True):
        assert per_class[name]["recall"] == pytest.approx(value)
    return np.array([recall[names.index(name)] for name in MINORITY])


def _logged(run: Path, kind: str) -> list[dict]:
    lines = (run / "logs" / "metrics.jsonl").read_text().splitlines()
    return [entry for entry in map(json.loads, lines) if entry["kind"] == kind]


def test_weights_and_balanced_sampler_raise_minority_recall(runs: dict[str, Path]) -> None:
    base = _minority_recall(runs["unweighted"])
    for name in ("weights", "sampler"):
        recall = _minority_recall(runs[name])
        assert (recall > base).all(), (name, recall, base)
        assert recall.mean() >= base.mean() + 0.15, (name, recall, base)
    assert _metrics(runs["unweighted"])["accuracy"] > 0.35  # the baseline learned the majority classes


def test_select_metric_macro_f1_exports_the_best_logged_epoch(runs: dict[str, Path]) -> None:
    for name in ("weights", "sampler"):
        run = runs[name]
        logged = {
            entry["step"]: entry["values"]["val_macro_f1"]
            for entry in _logged(run, "metrics")
            if "val_macro_f1" in entry["values"]
        }
        assert sorted(logged) == list(range(1, 7))
        best = max(logged.values())
        metrics = _metrics(run)
        selected = metrics["selected_by"]
        assert selected["metric"] == "macro_f1" and logged[selected["epoch"]] == best
        assert selected["epoch"] == min(e for e, v in logged.items() if v == best)  # earliest on a tie
        assert list(metrics)[:2] == ["selected_by", "macro_f1"]  # the chosen score is reported first
        # the exported weights are that epoch's: evaluated again they give the logged score
        assert metrics["macro_f1"] == pytest.approx(best, abs=1e-9)
        exported = torch.load(run / "model.pt", weights_only=True)
        best_state = torch.load(run / "best_model.pt", weights_only=False)
        assert best_state["epoch"] == selected["epoch"]
        for key, value in exported.items():
            assert torch.equal(value, best_state["model"][key].cpu()), key
    default = _metrics(runs["unweighted"])
    assert default["selected_by"]["metric"] == "last" and default["selected_by"]["epoch"] == 6
    assert not (runs["unweighted"] / "best_model.pt").exists()


def test_per_class_curves_and_scores_in_outputs_and_run_log(runs: dict[str, Path]) -> None:
    run = runs["sampler"]
    metrics = _metrics(run)
    labels, probs = predictions(run)
    names = json.loads((run / "labels.json").read_text())
    for png in ("pr_curves.png", "roc_curves.png", "confusion_matrix_normalized.png"):
        with Image.open(run / png) as img:
            assert img.format == "PNG" and img.width > 300, png
    for c, name in enumerate(names):
        assert metrics["per_class"][name]["average_precision"] == pytest.approx(
            average_precision_score(labels == c, probs[:, c])
        )
        assert metrics["per_class"][name]["roc_auc"] == pytest.approx(roc_auc_score(labels == c, probs[:, c]))
    assert metrics["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(labels, probs.argmax(1)))
    normalized = np.array(metrics["confusion_matrix"]["normalized_true"])
    assert np.allclose(normalized.sum(1), 1, atol=1e-5)
    assert np.allclose(np.diag(normalized), [metrics["per_class"][n]["recall"] for n in names], atol=1e-5)
    report = (run / "threshold_report.txt").read_text()
    assert all(name in report for name in names) and "best-F1-threshold" in report
    # the run log (Tracker, local backend) holds the plots, the per-class AP/AUC table and the macro scores
    images = {entry["name"] for entry in _logged(run, "image")}
    assert {"pr_curves", "roc_curves", "confusion_matrix_normalized"} <= images
    table = next(e for e in _logged(run, "table") if e["name"] == "per_class_metrics")["values"]
    assert table["class"] == names
    assert table["average_precision"] == pytest.approx([metrics["per_class"][n]["average_precision"] for n in names])
    assert table["roc_auc"] == pytest.approx([metrics["per_class"][n]["roc_auc"] for n in names])
    final = {k: v for e in _logged(run, "metrics") for k, v in e["values"].items()}
    assert final["final_macro_average_precision"] == pytest.approx(metrics["macro_average_precision"])
    assert final["final_macro_roc_auc"] == pytest.approx(metrics["macro_roc_auc"])


def test_balancing_choices_are_recorded_in_the_run_and_outputs(runs: dict[str, Path]) -> None:
    run = runs["weights"]
    balance = json.loads((run / "class_balance.json").read_text())
    assert balance["train_counts"] == {"airplane": 8, "automobile": 150, "cat": 8, "frog": 150, "ship": 150}
    assert balance["weights"]["airplane"] == pytest.approx(466 / (5 * 8), rel=1e-5)
    assert balance["weights"]["ship"] == pytest.approx(466 / (5 * 150), rel=1e-5)
    assert balance["imbalance_ratio"] == pytest.approx(150 / 8)
    assert _metrics(run)["class_balance"] == balance
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert (config["class_weights"], config["sampler"], config["select_metric"]) == ("balanced", "uniform", "macro_f1")
    tags = {k: v for e in _logged(runs["sampler"], "tags") for k, v in e["values"].items()}
    assert (tags["sampler"], tags["class_weights"], tags["select_metric"]) == ("balanced", "none", "macro_f1")
    params = _logged(runs["sampler"], "params")[0]["values"]
    assert params["sampler"] == "balanced"
