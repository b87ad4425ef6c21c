"""Evaluate a trained model directory on any dataset with ONNX Runtime and scikit-learn.

``amlvision evaluate MODEL_DIR DATA`` decodes DATA's images (any source ``amlvision pack`` reads, or
a packed directory), runs them through the same preprocessing and ONNX Runtime code as
``amlvision predict`` and score.py (``amlvision.inference``), and writes metrics.json,
classification_report.txt, confusion_matrix.{json,png}, confusion_matrix_normalized.png, pr_curves.png,
roc_curves.png, threshold_report.txt, mistakes.png and predictions.npz.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_dir", help="folder with model.onnx, labels.json, preprocess.json (train.py outputs/)")
    parser.add_argument("data", help="folder, archive, label file, map file, CIFAR batches or packed directory")
    parser.add_argument("--split", default=None, help="split to evaluate (default: test if present, else all)")
    parser.add_argument("--out", default=None, help="output folder (default MODEL_DIR/evaluation/<data name>)")
    parser.add_argument("--batch-size", type=int, default=256)


def _load_split(dataset, split: str | None, channels: int) -> tuple[list[str], list[np.ndarray], np.ndarray, str]:
    """Decoded uint8 HxWxC images, labels and class names of one split of the resolved ``dataset``."""
    from amlvision.formats.splits import HELDOUT_SPLITS, first_present

    splits = dataset.splits
    chosen = split or first_present((*HELDOUT_SPLITS, "all"), splits) or splits[0]
    items = dataset.open(chosen)
    return items.class_names, [items.load(i, channels) for i in range(len(items))], items.labels, chosen


def evaluate_model_dir(
    model_dir: str | Path,
    data: Any,
    *,
    split: str | None = None,
    out: str | Path | None = None,
    batch_size: int = 256,
) -> dict:
    """Run the ONNX model over ``data`` (a ``Dataset`` or ``--data`` string) and write the evaluation files."""
    from amlvision.data.resolve import resolve
    from amlvision.inference import Predictor
    from amlvision.training.evaluation import MistakeGallery, evaluate_predictions

    predictor = Predictor(model_dir)
    dataset = resolve(data)
    data = dataset.source
    class_names, images, labels, chosen = _load_split(dataset, split, predictor.preprocess.channels)
    if class_names != predictor.labels:
        missing = sorted(set(class_names) - set(predictor.labels))
        if missing:
            raise ValueError(f"{data}: classes {missing} are unknown to the model (labels.json: {predictor.labels})")
        remap = np.array([predictor.labels.index(name) for name in class_names])
        labels = remap[labels]
    gallery = MistakeGallery()
    probabilities = []
    for start in range(0, len(images), batch_size):
        chunk = images[start : start + batch_size]
        probs = predictor.probabilities(predictor.preprocess.images_to_input(chunk))
        resized = np.stack([predictor.preprocess.resize_pixels(img) for img in chunk])
        gallery.offer(resized, labels[start : start + batch_size], probs, start)
        probabilities.append(probs)
    probs = np.concatenate(probabilities) if probabilities else np.zeros((0, len(predictor.labels)))
    out_dir = Path(out) if out else Path(model_dir) / "evaluation" / data.name
    return evaluate_predictions(
        labels,
        probs,
        predictor.labels,
        out_dir,
        gallery=gallery,
        extra={"data": str(data), "split": chosen, "model_dir": str(model_dir), "engine": "onnxruntime"},
    )


def run(args: argparse.Namespace) -> int:
    try:
        from amlvision.data.resolve import resolve

        dataset = resolve(args.data)
        metrics = evaluate_model_dir(
            args.model_dir, dataset, split=args.split, out=args.out, batch_size=args.batch_size
        )
    except (FileNotFoundError, ValueError) as exc:
        print(f"amlvision evaluate: {exc}", file=sys.stderr)
        return 2
    out = args.out or str(Path(args.model_dir) / "evaluation" / dataset.source.name)
    print(
        json.dumps(
            {
                "accuracy": metrics["accuracy"],
                "macro_f1": metrics["macro_f1"],
                "balanced_accuracy": metrics["balanced_accuracy"],
                "macro_average_precision": metrics["macro_average_precision"],
                "macro_roc_auc": metrics["macro_roc_auc"],
                "num_samples": metrics["num_samples"],
                "split": metrics["split"],
                "outputs": out,
            },
            indent=2,
        )
    )
    print(Path(out, "classification_report.txt").read_text())
    return 0
