"""Load a model directory (model.onnx, labels.json, preprocess.json) and answer top-k questions.

ONNX Runtime only: this runs in the scoring image, which has no PyTorch.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from amlvision.inference.decode import decode_file_for_model
from amlvision.inference.preprocess import PreprocessConfig
from amlvision.model_dir import DETECTION, MODEL_FILE, ModelDirError, read_model_dir
from amlvision.tasks import get_task
from amlvision.tasks.classification import top_k


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


class Predictor:
    """An ONNX Runtime session plus the labels, preprocessing and task it was trained with.

    For the tasks whose model takes a fixed-size NCHW batch (classification, multilabel); the task
    (``preprocess.json``'s ``task``, classification for an old directory) turns outputs into scores
    and answers.
    """

    def __init__(self, model_dir: str | Path, *, threads: int | None = None, max_batch: int = 256):
        contents = read_model_dir(model_dir, PreprocessConfig)
        self.model_dir = contents.path
        self.preprocess: PreprocessConfig = contents.preprocess  # type: ignore[assignment]
        if self.preprocess.task == DETECTION:
            raise ModelDirError(
                f"{self.model_dir}: a detection model (preprocess.json task 'detection'); this predictor "
                "answers classification and multilabel models"
            )
        self.labels = contents.labels
        self.task = get_task(self.preprocess.task)
        self.signature = self.preprocess.signature
        self.max_batch = max_batch
        self.session = self._load_session(self.model_dir / MODEL_FILE, threads)
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

    def _check_signature(self) -> None:
        inputs = {i.name: i for i in self.session.get_inputs()}
        outputs = {o.name: o for o in self.session.get_outputs()}
        where = self.model_dir / MODEL_FILE
        self.signature.check(list(inputs), list(outputs), where)
        shape = inputs[self.signature.input].shape
        fixed = [d for d in shape[1:] if isinstance(d, int)]
        if len(shape) != 4 or (len(fixed) == 3 and tuple(fixed) != self.preprocess.chw):
            raise ValueError(f"{where}: input shape {shape} does not match preprocess.json {self.preprocess.chw}")
        classes = outputs[self.signature.output].shape[-1]
        if isinstance(classes, int) and classes != len(self.labels):
            raise ValueError(f"{where}: {classes} outputs but labels.json names {len(self.labels)} classes")

    def warm_up(self) -> None:
        """Run once so the first real request does not pay for ONNX Runtime's lazy initialisation."""
        self.probabilities(np.zeros((1, *self.preprocess.chw), dtype=np.float32))

    def outputs(self, model_input: np.ndarray) -> dict[str, np.ndarray]:
        """The model's named outputs for a normalised float32 NCHW batch, run in chunks of ``max_batch``."""
        names = list(self.signature.outputs)
        chunks = [
            self.session.run(names, {self.signature.input: model_input[i : i + self.max_batch]})
            for i in range(0, len(model_input), self.max_batch)
        ]
        return {name: np.concatenate([c[j] for c in chunks], axis=0) for j, name in enumerate(names)}

    def probabilities(self, model_input: np.ndarray) -> np.ndarray:
        """Per-class scores ``N x K`` (softmax for classification, sigmoid per class for multilabel)."""
        return self.task.scores(self.outputs(model_input))

    def answers(self, scores: np.ndarray, k: int) -> list[dict]:
        """The task's JSON answer per image (what score.py returns under ``predictions``)."""
        return self.task.answers(scores, self.labels, k, self.preprocess)

    def top_k(self, probabilities: np.ndarray, k: int) -> list[Prediction]:
        order = top_k(probabilities, k)
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
