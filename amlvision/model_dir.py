"""The model directory contract (docs/CONTRACTS.md), written and read by this one module.

train.py (both engines), the detection exporter and ``amlvision.testing.tiny_model`` write a model
directory through :func:`write_model_files`; predict, evaluate, serve, score.py and the Azure ML
deployment read it through :func:`read_model_dir`. The names of the files, the ONNX input/output
names of each task and the ``preprocess.json`` schema live here and nowhere else.

Torch-free on purpose (numpy and the standard library only): the scoring image imports it.

``preprocess.json`` versions:

- 1 (no ``version`` key, written before tasks existed): always a classification model.
- 2: adds ``version`` and ``task`` (``classification``, ``multilabel`` or ``detection``); ``resize``
  records the interpolation the run really used; ``threshold`` for ``multilabel``; ``min_size`` /
  ``max_size`` (and no fixed ``height`` / ``width``) for ``detection``.

Readers ignore keys they do not know (e.g. ``in_graph``, kept as information), so a newer writer's
extra fields never break an older reader of the same version.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

MODEL_FILE = "model.onnx"
LABELS_FILE = "labels.json"
PREPROCESS_FILE = "preprocess.json"
METRICS_FILE = "metrics.json"
TORCH_WEIGHTS_FILE = "model.pt"  # weights-only state dict of the exported epoch (PyTorch engine)
KERAS_WEIGHTS_FILE = "model.keras"  # the same for the TensorFlow engine
# What a server needs; everything else in the directory is for people (metrics, plots, reports).
SERVING_FILES = (MODEL_FILE, LABELS_FILE, PREPROCESS_FILE)

PREPROCESS_VERSION = 2
CLASSIFICATION, MULTILABEL, DETECTION = "classification", "multilabel", "detection"
TASKS = (CLASSIFICATION, MULTILABEL, DETECTION)
DEFAULT_THRESHOLD = 0.5

# Pillow resampling filters a server may apply; preprocess.json's ``resize`` is one of these names.
RESIZE_FILTERS = ("nearest", "bilinear", "bicubic", "lanczos", "box", "area", "hamming")
# train.py's ``--interpolations`` (CNTK's names) -> the ``resize`` name that denotes the same kernel.
RESIZE_OF_INTERPOLATION = {"nearest": "nearest", "linear": "bilinear", "cubic": "bicubic", "lanczos": "lanczos"}


class ModelDirError(ValueError):
    """A model directory or one of its files breaks the contract; the message names the file and field."""


@dataclass(frozen=True)
class OnnxSignature:
    """The ONNX graph's input and output names for one task (what exporters write and servers run)."""

    input: str
    outputs: tuple[str, ...]
    input_shape: str  # for messages and the docs
    output_shapes: tuple[str, ...]

    @property
    def output(self) -> str:
        """The first (for classification and multilabel: the only) output."""
        return self.outputs[0]

    def check(self, inputs: Sequence[str], outputs: Sequence[str], where: str | Path) -> None:
        """Raise ModelDirError unless a graph with ``inputs`` / ``outputs`` has this signature's names."""
        missing = [n for n in (self.input,) if n not in inputs] + [n for n in self.outputs if n not in outputs]
        if missing:
            raise ModelDirError(
                f"{where}: needs input {self.input!r} and output(s) {', '.join(map(repr, self.outputs))}; "
                f"has inputs {sorted(inputs)} and outputs {sorted(outputs)} (missing {missing})"
            )


_LOGITS = OnnxSignature("input", ("logits",), "float32 [N, C, H, W]", ("float32 [N, K]",))
SIGNATURES: dict[str, OnnxSignature] = {
    CLASSIFICATION: _LOGITS,
    MULTILABEL: _LOGITS,  # the same graph; the answer applies a sigmoid per class instead of a softmax
    DETECTION: OnnxSignature(
        "images",
        ("boxes", "labels", "scores"),
        "float32 [3, H, W] RGB 0-1",
        ("float32 [D, 4] x1,y1,x2,y2 input pixels", "int64 [D] labels.json index", "float32 [D]"),
    ),
}
# The classification names, for code that only ever handles that task (e.g. the TensorFlow engine).
INPUT_NAME = _LOGITS.input
OUTPUT_NAME = _LOGITS.output


def signature(task: str) -> OnnxSignature:
    """The ONNX input/output names of ``task``."""
    if task not in SIGNATURES:
        raise ModelDirError(f"task must be one of {list(TASKS)}, got {task!r}")
    return SIGNATURES[task]


def resize_of_interpolation(interpolation: str) -> str:
    """train.py's ``--interpolations`` value as preprocess.json's ``resize`` name (``cubic`` -> ``bicubic``)."""
    try:
        return RESIZE_OF_INTERPOLATION[interpolation.lower()]
    except KeyError:
        raise ValueError(
            f"interpolation must be one of {sorted(RESIZE_OF_INTERPOLATION)}, got {interpolation!r}"
        ) from None


@dataclass(frozen=True)
class Preprocess:
    """``preprocess.json``, validated: how a decoded image becomes the model's input, and the task.

    Classification / multilabel: resize to ``height x width`` with ``resize``, convert to
    ``channels``, then ``(pixel - mean) / std`` per channel in 0-255 units, NCHW float32.
    Detection: no fixed size (the graph resizes and normalises itself); ``min_size`` / ``max_size``
    are the sizes it was trained at, and a server may downscale a larger image to ``max_size``.
    ``version`` is the schema version the file was read with (1: an old file); files are always
    written as :data:`PREPROCESS_VERSION`.
    """

    channels: int
    height: int | None = None
    width: int | None = None
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    resize: str = "bilinear"
    channel_order: str = ""  # default: RGB for 3 channels, L for 1
    layout: str = "NCHW"
    dtype: str = "float32"
    task: str = CLASSIFICATION
    threshold: float | None = None  # multilabel: a class is in the answer when its sigmoid >= threshold
    min_size: int | None = None  # detection
    max_size: int | None = None  # detection
    in_graph: str | None = None  # informational: what model.onnx does to its input itself
    version: int = PREPROCESS_VERSION
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)  # unknown keys, kept

    def __post_init__(self) -> None:
        """Fill the defaults that depend on other fields, then validate (every construction is checked)."""
        if not self.channel_order:
            object.__setattr__(self, "channel_order", "RGB" if self.channels == 3 else "L")
        if not self.mean:
            object.__setattr__(self, "mean", (0.0,) * self.channels)
        if not self.std:
            object.__setattr__(self, "std", (1.0,) * self.channels)
        if self.threshold is None and self.task == MULTILABEL:
            object.__setattr__(self, "threshold", DEFAULT_THRESHOLD)
        self._validate(PREPROCESS_FILE)

    # ------------------------------------------------------------------ reading
    @classmethod
    def from_dict(cls, raw: dict[str, Any], source: str = PREPROCESS_FILE) -> Preprocess:
        """Parse and validate one ``preprocess.json`` document; errors name ``source`` and the field."""
        if not isinstance(raw, dict):
            raise ModelDirError(f"{source}: must be a JSON object, got {type(raw).__name__}")
        known = {f.name for f in fields(cls)} - {"extra"}
        try:
            channels = int(raw["channels"])
            values: dict[str, Any] = {
                "version": int(raw.get("version", 1)),
                "task": str(raw.get("task", CLASSIFICATION)).lower(),
                "channels": channels,
                "height": _optional_int(raw.get("height")),
                "width": _optional_int(raw.get("width")),
                "mean": tuple(float(v) for v in raw.get("mean", ())),
                "std": tuple(float(v) for v in raw.get("std", ())),
                "resize": str(raw.get("resize", "bilinear")).lower(),
                "channel_order": str(raw.get("channel_order", "")).upper(),
                "layout": str(raw.get("layout", "NCHW")).upper(),
                "dtype": str(raw.get("dtype", "float32")).lower(),
                "threshold": _optional_float(raw.get("threshold")),
                "min_size": _optional_int(raw.get("min_size")),
                "max_size": _optional_int(raw.get("max_size")),
                "in_graph": None if raw.get("in_graph") is None else str(raw["in_graph"]),
                "extra": {k: v for k, v in raw.items() if k not in known},
            }
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelDirError(f"{source}: invalid or missing field ({type(exc).__name__}: {exc})") from exc
        try:
            return cls(**values)
        except ModelDirError as exc:  # name the real file, not the generic one
            raise ModelDirError(f"{source}{str(exc)[len(PREPROCESS_FILE) :]}") from None

    @classmethod
    def load(cls, path: str | Path) -> Preprocess:
        """Read and validate a ``preprocess.json`` file (an old one without ``version``/``task`` included)."""
        path = Path(path)
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ModelDirError(f"{path}: not valid JSON ({exc})") from exc
        return cls.from_dict(raw, str(path))

    def _validate(self, source: str) -> None:
        problems = []
        if self.version not in (1, PREPROCESS_VERSION):
            problems.append(
                f"version {self.version} is not one this amlvision reads (1 or {PREPROCESS_VERSION}); "
                "a newer amlvision wrote it"
            )
        if self.task not in TASKS:
            problems.append(f"task must be one of {list(TASKS)}, got {self.task!r}")
        if self.version == 1 and self.task != CLASSIFICATION:
            problems.append("a version 1 file (no 'version' key) can only describe a classification model")
        if self.channels not in (1, 3):
            problems.append(f"channels must be 1 or 3, got {self.channels}")
        if self.task == DETECTION:
            if self.channels != 3:
                problems.append("a detection model takes 3 channels (RGB)")
            if self.min_size is None or self.max_size is None:
                problems.append("invalid or missing field: detection needs min_size and max_size")
            elif not 0 < self.min_size <= self.max_size:
                problems.append(f"need 0 < min_size <= max_size, got {self.min_size} and {self.max_size}")
        else:
            if self.height is None or self.width is None:
                problems.append(f"invalid or missing field: height and width are required for {self.task}")
            elif self.height <= 0 or self.width <= 0:
                problems.append(f"height/width must be positive, got {self.height}x{self.width}")
        if self.task == MULTILABEL and not (self.threshold is not None and 0.0 < self.threshold < 1.0):
            problems.append(f"threshold must lie strictly between 0 and 1, got {self.threshold}")
        if len(self.mean) != self.channels or len(self.std) != self.channels:
            problems.append(f"mean and std need {self.channels} values each")
        if any(s == 0 for s in self.std):
            problems.append("std values must be non-zero")
        if self.resize not in RESIZE_FILTERS:
            problems.append(f"resize {self.resize!r} is not one of {sorted(RESIZE_FILTERS)}")
        if self.layout != "NCHW":
            problems.append(f"layout must be NCHW (the ONNX contract), got {self.layout}")
        if self.dtype != "float32":
            problems.append(f"dtype must be float32, got {self.dtype}")
        if self.channels == 3 and self.channel_order != "RGB":
            problems.append(f"channel_order must be RGB, got {self.channel_order}")
        if problems:
            raise ModelDirError(f"{source}: " + "; ".join(problems))

    # ------------------------------------------------------------------ use
    @property
    def signature(self) -> OnnxSignature:
        """The ONNX names this model directory's ``model.onnx`` must have."""
        return SIGNATURES[self.task]

    @property
    def chw(self) -> tuple[int, int, int]:
        """``(channels, height, width)`` of one model input (classification and multilabel)."""
        if self.height is None or self.width is None:
            raise ModelDirError(f"a {self.task} model has no fixed input size")
        return (self.channels, self.height, self.width)

    def to_dict(self) -> dict[str, Any]:
        """The JSON document, always in the current version; only the fields of its task.

        Detection has no fixed size, layout or normalisation to record (its graph takes one
        ``[3, H, W]`` 0-1 image and normalises itself), only its sizes and the downscaling filter.
        """
        out: dict[str, Any] = {"version": PREPROCESS_VERSION, "task": self.task}
        if self.task == DETECTION:
            out.update(
                channels=self.channels,
                channel_order=self.channel_order,
                resize=self.resize,
                min_size=self.min_size,
                max_size=self.max_size,
            )
        else:
            out.update(
                height=self.height,
                width=self.width,
                channels=self.channels,
                channel_order=self.channel_order,
                layout=self.layout,
                dtype=self.dtype,
                resize=self.resize,
                mean=list(self.mean),
                std=list(self.std),
            )
        if self.task == MULTILABEL:
            out["threshold"] = self.threshold
        if self.in_graph is not None:
            out["in_graph"] = self.in_graph
        return {**self.extra, **out}

    def with_changes(self, **changes: Any) -> Preprocess:
        """A copy with ``changes`` applied (validated again)."""
        return replace(self, **changes)


def _optional_int(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError(f"expected an integer, got {value!r}")
    return int(value)


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


# ---------------------------------------------------------------------- labels
def read_labels(path: str | Path) -> list[str]:
    """``labels.json``: a non-empty JSON list of class names in index order."""
    path = Path(path)
    try:
        labels = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelDirError(f"{path}: not valid JSON ({exc}); expected a list of class names") from None
    if not isinstance(labels, list) or not labels or not all(isinstance(x, str) for x in labels):
        raise ModelDirError(f"{path}: must be a non-empty JSON list of class names")
    return labels


# ---------------------------------------------------------------------- the directory
@dataclass(frozen=True)
class ModelDir:
    """A model directory as a server sees it: where, the task, the class names and the preprocessing."""

    path: Path
    labels: list[str]
    preprocess: Preprocess

    @property
    def task(self) -> str:
        return self.preprocess.task

    @property
    def model_file(self) -> Path:
        return self.path / MODEL_FILE

    @property
    def signature(self) -> OnnxSignature:
        return self.preprocess.signature


def missing_files(model_dir: str | Path) -> list[str]:
    """The :data:`SERVING_FILES` that ``model_dir`` lacks."""
    return [name for name in SERVING_FILES if not (Path(model_dir) / name).is_file()]


def read_model_dir(model_dir: str | Path, preprocess_type: type[Preprocess] = Preprocess) -> ModelDir:
    """Labels and preprocessing of ``model_dir`` (model.onnx is only checked to exist; the runtime loads it).

    ``preprocess_type``: a subclass of :class:`Preprocess` to read ``preprocess.json`` into (the
    inference side's :class:`~amlvision.inference.preprocess.PreprocessConfig` adds the image operations).
    """
    path = Path(model_dir)
    missing = missing_files(path)
    if missing:
        raise FileNotFoundError(f"{path}: not a model directory, missing {', '.join(missing)}")
    return ModelDir(path, read_labels(path / LABELS_FILE), preprocess_type.load(path / PREPROCESS_FILE))


def _write_text(path: Path, text: str) -> None:
    """Write via a temporary file in the same folder and rename, so a reader never sees half a file."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_model_files(model_dir: str | Path, class_names: Sequence[str], preprocess: Preprocess) -> None:
    """Write ``labels.json`` and ``preprocess.json`` (model.onnx is the exporter's, written before)."""
    if not isinstance(preprocess, Preprocess):
        raise TypeError(f"preprocess must be a model_dir.Preprocess, got {type(preprocess).__name__}")
    if not class_names or not all(isinstance(c, str) for c in class_names):
        raise ModelDirError("class names must be a non-empty list of strings")
    path = Path(model_dir)
    path.mkdir(parents=True, exist_ok=True)
    _write_text(path / LABELS_FILE, json.dumps(list(class_names), indent=1))
    _write_text(path / PREPROCESS_FILE, json.dumps(preprocess.to_dict(), indent=1))
