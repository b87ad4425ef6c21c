"""Answer "which objects are where" with a detection model directory's ``model.onnx`` (ONNX Runtime only).

The scoring image has no PyTorch: this is the code ``amlvision predict``, ``amlvision serve`` and the
container share for ``task: detection`` models, so a file gets the same boxes on every path.

The graph takes one RGB image scaled 0-1 of any size and resizes it itself (``min_size`` /
``max_size`` in preprocess.json). An image whose longer side exceeds ``max_size`` is scaled down to
it while decoding (a JPEG by the decoder's DCT scaling first, then with the Pillow filter that
preprocess.json's ``resize`` names, bilinear), so a large photo never reaches the model, or memory,
at full size; the boxes are then mapped back to the original image's pixels.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from amlvision.inference.decode import PixelBudget, decode_for_detection
from amlvision.inference.errors import InputError
from amlvision.inference.predictor import Predictor
from amlvision.model_dir import DETECTION, MODEL_FILE, ModelDirError, Preprocess, read_model_dir
from amlvision.tasks import get_task
from amlvision.tasks.detection import (
    DEFAULT_MAX_DETECTIONS,
    DEFAULT_SCORE_THRESHOLD,
    MAX_DETECTIONS_LIMIT,
    Detection,
    DetectionTask,
)


@dataclass(frozen=True)
class DetectionImage:
    """A decoded image ready for the model, and the size of the original it came from (for mapping boxes back)."""

    pixels: np.ndarray  # uint8 H x W x 3, long side <= max_size
    original_width: int
    original_height: int


def parse_score_threshold(value: object, where: str = "score_threshold") -> float:
    """A score threshold from 0 to 1 (a JSON number, or the text of one from a query string)."""
    if isinstance(value, str) and len(value) <= 32 and value.strip().isascii():
        with contextlib.suppress(ValueError):
            value = float(value)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or not 0 <= value <= 1:
        shown = repr(value)[:60]
        raise InputError(f"{where} must be a number from 0 to 1, got {shown}")
    return float(value)


def parse_max_detections(value: object, where: str = "max_detections") -> int:
    """How many detections per image, 1 to MAX_DETECTIONS_LIMIT (ASCII digits only in a query string)."""
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit() and len(value.strip()) <= 9:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_DETECTIONS_LIMIT:
        shown = repr(value)[:60]
        raise InputError(f"{where} must be an integer from 1 to {MAX_DETECTIONS_LIMIT}, got {shown}")
    return value


def load_predictor(
    model_dir: str | Path, *, threads: int | None = None, max_batch: int = 256
) -> Predictor | DetectionPredictor:
    """The predictor for the ``task`` in the model directory's preprocess.json: the one place that chooses.

    Errors (a missing file, a broken preprocess.json) are Predictor's, naming the file.
    """
    try:
        task = read_model_dir(model_dir).task
    except (FileNotFoundError, ModelDirError):
        task = None  # Predictor reports it with the full message
    if task == DETECTION:
        return DetectionPredictor(model_dir, threads=threads)
    return Predictor(model_dir, threads=threads, max_batch=max_batch)


class DetectionPredictor:
    """An ONNX Runtime session of a ``task: detection`` model directory plus its labels and sizes."""

    def __init__(self, model_dir: str | Path, *, threads: int | None = None):
        contents = read_model_dir(model_dir)
        self.model_dir = contents.path
        self.preprocess: Preprocess = contents.preprocess
        if self.preprocess.task != DETECTION:
            raise ModelDirError(f"{self.model_dir}: a {self.preprocess.task} model; this predictor answers detection")
        self.labels = contents.labels
        self.task: DetectionTask = get_task(DETECTION)  # type: ignore[assignment]
        self.signature = self.preprocess.signature
        self.session = Predictor._load_session(self.model_dir / MODEL_FILE, threads)
        inputs = [i.name for i in self.session.get_inputs()]
        self.signature.check(inputs, [o.name for o in self.session.get_outputs()], self.model_dir / MODEL_FILE)

    def warm_up(self) -> None:
        """Run once so the first real request does not pay for ONNX Runtime's lazy initialisation."""
        side = self.preprocess.min_size
        self.outputs(np.zeros((side, side, 3), dtype=np.uint8))

    def outputs(self, pixels: np.ndarray) -> dict[str, np.ndarray]:
        """The graph's named outputs for one ``uint8 H x W x 3`` image (boxes in its pixels)."""
        image = np.ascontiguousarray(pixels.transpose(2, 0, 1), dtype=np.float32) / np.float32(255.0)
        names = list(self.signature.outputs)
        return dict(zip(names, self.session.run(names, {self.signature.input: image}), strict=True))

    def detect(
        self,
        image: DetectionImage,
        *,
        score_threshold: float = DEFAULT_SCORE_THRESHOLD,
        max_detections: int = DEFAULT_MAX_DETECTIONS,
    ) -> list[Detection]:
        """The detections of one image, highest score first, boxes in the original image's pixels."""
        height, width = image.pixels.shape[:2]
        try:
            return self.task.detections(
                self.outputs(image.pixels),
                self.labels,
                model_size=(width, height),
                original_size=(image.original_width, image.original_height),
                score_threshold=score_threshold,
                max_detections=max_detections,
            )
        except RuntimeError as exc:
            raise RuntimeError(f"{self.model_dir / MODEL_FILE}: {exc}") from None

    def decode(self, data: bytes, *, name: str, **limits) -> DetectionImage:
        """Encoded image bytes -> :class:`DetectionImage` (``limits``: ``max_pixels``, ``max_bytes``, ``budget``)."""
        pixels, (width, height) = decode_for_detection(
            data, name=name, max_side=self.preprocess.max_size, resize=self.preprocess.resize, **limits
        )
        return DetectionImage(pixels, width, height)

    def decode_file(self, path: str | Path) -> DetectionImage:
        """Read and decode a file exactly as a client's upload of the same bytes is decoded."""
        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from exc
        return self.decode(data, name=str(path))

    def detect_files(
        self,
        paths: Sequence[str | Path],
        *,
        score_threshold: float = DEFAULT_SCORE_THRESHOLD,
        max_detections: int = DEFAULT_MAX_DETECTIONS,
    ) -> list[list[Detection]]:
        """One list of detections per file, each decoded, run and dropped before the next."""
        return [
            self.detect(self.decode_file(p), score_threshold=score_threshold, max_detections=max_detections)
            for p in paths
        ]


__all__ = [
    "DEFAULT_MAX_DETECTIONS",
    "DEFAULT_SCORE_THRESHOLD",
    "Detection",
    "DetectionImage",
    "DetectionPredictor",
    "PixelBudget",
    "load_predictor",
    "parse_max_detections",
    "parse_score_threshold",
]
