"""Load a model directory (model.onnx, labels.json, preprocess.json) and answer top-k questions.

ONNX Runtime only: this runs in the scoring image, which has no PyTorch.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from amlvision.inference.decode import decode_file_for_model
from amlvision.inference.preprocess import PreprocessConfig

INPUT_NAME = "input"
OUTPUT_NAME = "logits"


@dataclass(frozen=True)
class Prediction:
    """Top-k classes for one image, most probable first."""

    labels: tuple[str, ...]
    probabilities: tuple[float, ...]

    @property
    def label(self) -> str:
        return self.labels[0]

    def to_json(self) -> dict:
        return {
            "label": self.labels[0],
            "probability": self.probabilities[0],
            "top_k": [{"label": lab, "probability": p} for lab, p in zip(self.labels, self.probabilities, strict=True)],
        }


def _session_options(threads: int | None) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.inter_op_num_threads = 1
    if threads is None:
        env = os.environ.get("AMLVISION_ORT_THREADS", "")
        threads = int(env) if env.strip() else 0
    options.intra_op_num_threads = threads  # 0 = ONNX Runtime's choice (one per core)
    options.log_severity_level = 3
    return options


def sigmoid(logits: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * logits))  # = 1 / (1 + e^-x) without overflow warnings


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


class Predictor:
    """An ONNX Runtime session plus the labels and preprocessing it was trained with."""

    def __init__(self, model_dir: str | Path, *, threads: int | None = None, max_batch: int = 256):
        self.model_dir = Path(model_dir)
        missing = [n for n in ("model.onnx", "labels.json", "preprocess.json") if not (self.model_dir / n).is_file()]
        if missing:
            raise FileNotFoundError(f"{self.model_dir}: not a model directory, missing {', '.join(missing)}")
        self.preprocess = PreprocessConfig.load(self.model_dir / "preprocess.json")
        self.task, self.threshold = self._load_task(self.model_dir / "preprocess.json")
        self.labels = self._load_labels(self.model_dir / "labels.json")
        self.max_batch = max_batch
        self.session = self._load_session(self.model_dir / "model.onnx", threads)
        self._check_signature()

    @staticmethod
    def _load_session(path: Path, threads: int | None) -> ort.InferenceSession:
        """The ONNX Runtime session; a corrupt or truncated file is a ValueError naming it, not a traceback."""
        try:
            return ort.InferenceSession(str(path), _session_options(threads), providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own pybind types (InvalidProtobuf, Fail, ...)
            reason = str(exc).replace(str(path), "").splitlines()[0] if str(exc) else type(exc).__name__
            raise ValueError(
                f"{path}: cannot load the ONNX model ({reason[:300]}); the file is corrupt or truncated "
                f"({path.stat().st_size:,} bytes), export it again"
            ) from None

    @staticmethod
    def _load_task(path: Path) -> tuple[str, float]:
        """preprocess.json's ``task`` (missing = classification) and multilabel ``threshold`` (default 0.5)."""
        raw = json.loads(path.read_text())
        task = str(raw.get("task", "classification"))
        if task not in ("classification", "multilabel"):
            raise ValueError(f"{path}: task {task!r} is not one this predictor answers (classification, multilabel)")
        threshold = raw.get("threshold", 0.5)
        if not isinstance(threshold, (int, float)) or not 0 < threshold < 1:
            raise ValueError(f"{path}: threshold must be a number in (0, 1), got {threshold!r}")
        return task, float(threshold)

    @staticmethod
    def _load_labels(path: Path) -> list[str]:
        try:
            labels = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"{path}: not valid JSON ({exc}); expected a list of class names") from None
        if not isinstance(labels, list) or not labels or not all(isinstance(x, str) for x in labels):
            raise ValueError(f"{path}: must be a non-empty JSON list of class names")
        return labels

    def _check_signature(self) -> None:
        inputs = {i.name: i for i in self.session.get_inputs()}
        outputs = {o.name: o for o in self.session.get_outputs()}
        where = self.model_dir / "model.onnx"
        if INPUT_NAME not in inputs or OUTPUT_NAME not in outputs:
            raise ValueError(
                f"{where}: needs input {INPUT_NAME!r} and output {OUTPUT_NAME!r}; "
                f"has inputs {sorted(inputs)} and outputs {sorted(outputs)}"
            )
        shape = inputs[INPUT_NAME].shape
        fixed = [d for d in shape[1:] if isinstance(d, int)]
        if len(shape) != 4 or (len(fixed) == 3 and tuple(fixed) != self.preprocess.chw):
            raise ValueError(f"{where}: input shape {shape} does not match preprocess.json {self.preprocess.chw}")
        classes = outputs[OUTPUT_NAME].shape[-1]
        if isinstance(classes, int) and classes != len(self.labels):
            raise ValueError(f"{where}: {classes} outputs but labels.json names {len(self.labels)} classes")

    def warm_up(self) -> None:
        """Run once so the first real request does not pay for ONNX Runtime's lazy initialisation."""
        self.probabilities(np.zeros((1, *self.preprocess.chw), dtype=np.float32))

    def probabilities(self, model_input: np.ndarray) -> np.ndarray:
        """Probabilities ``N x K`` for a normalised float32 NCHW batch, run in chunks.

        Softmax over the classes; a sigmoid per class for a ``multilabel`` model.
        """
        chunks = [
            self.session.run([OUTPUT_NAME], {INPUT_NAME: model_input[i : i + self.max_batch]})[0]
            for i in range(0, len(model_input), self.max_batch)
        ]
        logits = np.concatenate(chunks, axis=0).astype(np.float64)
        return sigmoid(logits) if self.task == "multilabel" else softmax(logits)

    def multilabel_answers(self, probabilities: np.ndarray) -> list[dict]:
        """Per image: every class's probability and the labels at or above the threshold, most probable first."""
        answers = []
        for row in probabilities:
            order = np.argsort(-row, kind="stable")
            answers.append(
                {
                    "labels": [self.labels[j] for j in order if row[j] >= self.threshold],
                    "threshold": self.threshold,
                    "probabilities": {name: float(p) for name, p in zip(self.labels, row, strict=True)},
                }
            )
        return answers

    def top_k(self, probabilities: np.ndarray, k: int) -> list[Prediction]:
        k = max(1, min(k, len(self.labels)))
        order = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
        return [
            Prediction(
                labels=tuple(self.labels[j] for j in row),
                probabilities=tuple(float(probabilities[i, j]) for j in row),
            )
            for i, row in enumerate(order)
        ]

    def predict_images(self, images: Sequence[np.ndarray], k: int = 3) -> list[Prediction]:
        """Decoded ``uint8 HxWxC`` images -> top-k predictions."""
        return self.top_k(self.probabilities(self.preprocess.images_to_input(images)), k)

    def predict_files(self, paths: Sequence[str | Path], k: int = 3) -> list[Prediction]:
        images = [decode_file_for_model(p, preprocess=self.preprocess) for p in paths]
        return self.predict_images(images, k)
