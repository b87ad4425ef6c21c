"""Export a torchvision detector as a detection model directory, and prove ONNX Runtime answers as PyTorch does.

``model.onnx`` takes ``images`` float32 ``[3, H, W]`` RGB scaled 0-1 with H and W dynamic: the graph
resizes and normalises the image itself (torchvision's ``GeneralizedRCNNTransform``) and maps its
boxes back to the input's pixels. Outputs: ``boxes`` float32 ``[D, 4]`` (x1, y1, x2, y2), ``labels``
int64 ``[D]`` (index into labels.json: torchvision's label - 1, background removed), ``scores``
float32 ``[D]``. Beside it ``labels.json`` and ``preprocess.json`` (``task: detection``, ``min_size``,
``max_size``).

The TorchScript exporter is used (``dynamo=False``): the dynamo exporter does not handle
torchvision's detection models. Its graph is checked against PyTorch on real images of at least two
sizes, so the dynamic resize is exercised: detections are matched by label, and each matched pair's
boxes and scores must agree within :data:`BOX_ATOL_PX` + :data:`BOX_RTOL` x image side and
:data:`SCORE_ATOL`. Only a detection whose score lies within :data:`SCORE_ATOL` of a cut-off (the
model's score threshold, or the lowest score kept when ``detections_per_img`` cut the list) may be
present on one side only, because a rounding difference can move it across. Anything else raises
:class:`ExportMismatch` and no ``model.onnx`` is left behind: a model that answers differently in
serving is worse than none.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn
from torch.onnx import operators as torch_operators

from amlvision.data.images import load_image

OPSET = 17
INPUT_NAME = "images"
OUTPUT_NAMES = ("boxes", "labels", "scores")
# Measured on 21 coco-tiny images (357x500 to 1000x1500) with fasterrcnn_mobilenet_v3_large_320_fpn: matched
# box corners differ by at most 0.031 px and scores by at most 4e-6 between ONNX Runtime and PyTorch; one
# image had one swap (below).
BOX_ATOL_PX = 0.05
BOX_RTOL = 1e-4  # of the image's longer side: resize and RoIAlign rounding grow with the image
SCORE_ATOL = 1e-4
MAX_SWAPS = 2  # per image; see compare()


class ExportMismatch(RuntimeError):
    """ONNX Runtime's detections differ from PyTorch's beyond the stated tolerance; the message says how."""


class DetectionGraph(nn.Module):
    """What ``model.onnx`` computes: one ``[3, H, W]`` 0-1 image -> boxes, labels (labels.json index), scores."""

    def __init__(self, detector: nn.Module):
        super().__init__()
        self.detector = detector

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        found = self.detector([images])[0]
        return found["boxes"], found["labels"] - 1, found["scores"]


def _exact_resize(transform: nn.Module):
    """``GeneralizedRCNNTransform.resize`` for tracing, with the output size computed as eager PyTorch does.

    torchvision's tracing branch computes ``floor(side * scale)`` in float32, eager PyTorch in float64;
    for many sizes the two differ by a pixel (a 640x428 image becomes 478x319 in ONNX but 478x320 in
    PyTorch, and every box moves). This does the arithmetic in float64 in the graph, so ONNX Runtime
    resizes to exactly PyTorch's size (checked for every side from 60 to 1400 px).
    """
    limits = (float(transform.min_size[-1]), float(transform.max_size))

    def resize(image: torch.Tensor, target: dict | None = None) -> tuple[torch.Tensor, dict | None]:
        shape = torch_operators.shape_as_tensor(image)[-2:].to(torch.float64)
        # A 1-D float64 constant: a Python scalar would be exported as a float32 Reciprocal/Mul.
        scale = (torch.tensor(limits, dtype=torch.float64) / torch.stack([shape.min(), shape.max()])).min()
        size = torch.floor(shape * scale).to(torch.int64)
        resized = torch.nn.functional.interpolate(
            image[None], size=[size[0], size[1]], mode="bilinear", align_corners=False
        )
        return resized[0], target

    return resize


@contextmanager
def _traceable(model: nn.Module):
    """Swap in :func:`_exact_resize` while the model is traced (inference only, no fixed size)."""
    transform = getattr(model, "transform", None)
    if transform is None or getattr(transform, "fixed_size", None) is not None or not hasattr(transform, "min_size"):
        yield
        return
    transform.resize = _exact_resize(transform)
    try:
        yield
    finally:
        del transform.resize


def detection_preprocess(min_size: int, max_size: int) -> dict:
    """preprocess.json of a detection model (the agreed version 2 schema; amlvision.model_dir will own it)."""
    return {
        "version": 2,
        "task": "detection",
        "channels": 3,
        "channel_order": "RGB",
        "min_size": int(min_size),
        "max_size": int(max_size),
        "in_graph": "resize to min_size/max_size and ImageNet normalisation (torchvision GeneralizedRCNNTransform); "
        "input is RGB scaled 0-1",
    }


@dataclass(frozen=True)
class Detections:
    """One image's detections as plain arrays (from PyTorch or from ONNX Runtime)."""

    boxes: np.ndarray  # float32 [D, 4]
    labels: np.ndarray  # int64 [D]
    scores: np.ndarray  # float32 [D]


@dataclass(frozen=True)
class ImageCheck:
    """The comparison of one check image: sizes, counts and the largest differences of matched detections."""

    height: int
    width: int
    torch_detections: int
    onnx_detections: int
    max_box_diff_px: float
    max_score_diff: float
    unmatched_near_cutoff: int
    swaps: int = 0


def as_check_tensor(image: np.ndarray | torch.Tensor | str | Path, index: int = 0) -> torch.Tensor:
    """A check image as float32 ``[3, H, W]`` 0-1: a file path, a uint8 ``H x W x 3`` array or such a tensor."""
    if isinstance(image, str | Path):
        image = load_image(image, 3)
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"check image {index}: expected uint8 H x W x 3 pixels, got {image.dtype} {image.shape}")
        return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float().div_(255.0)
    if isinstance(image, torch.Tensor):
        if image.ndim != 3 or image.shape[0] != 3 or not image.is_floating_point():
            raise ValueError(f"check image {index}: expected a float [3, H, W] tensor in 0-1, got {tuple(image.shape)}")
        return image.detach().to("cpu", torch.float32)
    raise TypeError(
        f"check image {index}: expected a path, a uint8 array or a float tensor, got {type(image).__name__}"
    )


def _cutoffs(model: nn.Module, found: Detections) -> list[float]:
    """Scores at which a detection may legitimately appear on one side only (see module docstring)."""
    heads = getattr(model, "roi_heads", None)
    cuts = [float(getattr(heads, "score_thresh", 0.0))]
    limit = getattr(heads, "detections_per_img", None)
    if limit is not None and len(found.scores) >= int(limit):
        cuts.append(float(found.scores.min()))
    return cuts


def compare(expected: Detections, actual: Detections, *, side: int, cutoffs: Sequence[float]) -> ImageCheck:
    """Match ``actual`` (ONNX Runtime) to ``expected`` (PyTorch) detection by detection; raise on a difference.

    Order is not compared (equal scores may be sorted either way): each expected detection takes the
    unmatched actual one of the same label with the closest box.
    """
    box_tol = BOX_ATOL_PX + BOX_RTOL * side
    free = np.ones(len(actual.scores), dtype=bool)
    box_diffs, score_diffs, missing = [], [], []
    for i in np.argsort(-expected.scores, kind="stable"):
        candidates = np.flatnonzero(free & (actual.labels == expected.labels[i]))
        if len(candidates):
            diffs = np.abs(actual.boxes[candidates] - expected.boxes[i]).max(axis=1)
            best = candidates[int(np.argmin(diffs))]
            if diffs.min() <= box_tol:
                free[best] = False
                box_diffs.append(float(diffs.min()))
                score_diffs.append(float(abs(actual.scores[best] - expected.scores[i])))
                continue
        missing.append(int(i))

    def near_cut(score: float) -> bool:
        return any(abs(score - cut) <= SCORE_ATOL for cut in cutoffs)

    # A swap: of two candidates with (near) equal scores, rounding let PyTorch keep one and ONNX Runtime the
    # other (a top-k or NMS decision). Paired by label and score; never more than MAX_SWAPS per image.
    extra = [j for j in np.flatnonzero(free) if not near_cut(float(actual.scores[j]))]
    hard_missing, swaps = [], 0
    for i in missing:
        if near_cut(float(expected.scores[i])):
            continue
        twins = [j for j in extra if actual.labels[j] == expected.labels[i]
                 and abs(float(actual.scores[j]) - float(expected.scores[i])) <= SCORE_ATOL]  # fmt: skip
        if twins and swaps < MAX_SWAPS:
            extra.remove(twins[0])
            swaps += 1
        else:
            hard_missing.append(i)
    problems = []
    if hard_missing:
        i = hard_missing[0]
        problems.append(
            f"{len(hard_missing)} PyTorch detection(s) have no ONNX Runtime match of the same label within "
            f"{box_tol:.3g} px, e.g. label {int(expected.labels[i])} score {expected.scores[i]:.4f} box "
            f"{np.round(expected.boxes[i], 2).tolist()}"
        )
    if extra:
        j = extra[0]
        problems.append(
            f"{len(extra)} ONNX Runtime detection(s) PyTorch does not make, e.g. label {int(actual.labels[j])} "
            f"score {actual.scores[j]:.4f} box {np.round(actual.boxes[j], 2).tolist()}"
        )
    max_score = max(score_diffs, default=0.0)
    if max_score > SCORE_ATOL or not np.isfinite(max_score):
        problems.append(f"scores of matched detections differ by up to {max_score:.3g} (tolerance {SCORE_ATOL})")
    if problems:
        raise ExportMismatch("; ".join(problems))
    return ImageCheck(
        height=0,
        width=0,
        torch_detections=len(expected.scores),
        onnx_detections=len(actual.scores),
        max_box_diff_px=max(box_diffs, default=0.0),
        max_score_diff=max_score,
        unmatched_near_cutoff=len(missing) + int(free.sum()) - 2 * swaps,
        swaps=swaps,
    )


def check_onnx_against_torch(
    model: nn.Module, onnx_path: str | Path, check_images: Sequence[np.ndarray | torch.Tensor | str | Path]
) -> list[ImageCheck]:
    """Run PyTorch and ONNX Runtime on every check image; raise :class:`ExportMismatch` naming what differed.

    Needs real images of at least two different sizes, so the graph's dynamic resize is really tested.
    """
    images = [as_check_tensor(image, i) for i, image in enumerate(check_images)]
    sizes = {tuple(image.shape[1:]) for image in images}
    if len(sizes) < 2:
        raise ValueError(f"the ONNX check needs images of at least two sizes, got {sorted(sizes)}")
    graph = DetectionGraph(model).eval()
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    checks = []
    for i, image in enumerate(images):
        with torch.no_grad():
            boxes, labels, scores = graph(image)
        expected = Detections(boxes.numpy(), labels.numpy(), scores.numpy())
        actual = Detections(*session.run(list(OUTPUT_NAMES), {INPUT_NAME: image.numpy()}))
        height, width = image.shape[1:]
        try:
            found = compare(expected, actual, side=max(height, width), cutoffs=_cutoffs(model, expected))
        except ExportMismatch as exc:
            raise ExportMismatch(f"{onnx_path}: check image {i} ({width}x{height}): {exc}") from None
        checks.append(replace(found, height=int(height), width=int(width)))
    return checks


def _transform_sizes(model: nn.Module) -> tuple[int, int] | None:
    """(min_size, max_size) the detector's own GeneralizedRCNNTransform resizes to at inference, if it has one."""
    transform = getattr(model, "transform", None)
    if transform is None or not hasattr(transform, "min_size"):
        return None
    return int(transform.min_size[-1]), int(transform.max_size)


def _write_json(path: Path, document: object) -> None:
    """Write via a temporary file and rename, so a reader never sees half a file."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(document, handle, indent=1)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def export_detection_model(
    model: nn.Module,
    out_dir: str | Path,
    class_names: Sequence[str],
    min_size: int,
    max_size: int,
    check_images: Sequence[np.ndarray | torch.Tensor | str | Path],
) -> None:
    """Write ``model.onnx``, ``labels.json`` and ``preprocess.json`` into ``out_dir``; check ONNX against PyTorch.

    ``model``: a torchvision detector (``num_classes = len(class_names) + 1``, background first).
    ``check_images``: real images of at least two sizes (file paths, uint8 ``H x W x 3`` arrays or
    float ``[3, H, W]`` 0-1 tensors). Raises :class:`ExportMismatch` if ONNX Runtime disagrees with
    PyTorch on them; ``model.onnx`` is then not written.
    """
    class_names = list(class_names)
    if not class_names or not all(isinstance(name, str) for name in class_names):
        raise ValueError("class_names must be a non-empty list of strings")
    if not 0 < int(min_size) <= int(max_size):
        raise ValueError(f"need 0 < min_size <= max_size, got {min_size} and {max_size}")
    sizes = _transform_sizes(model)
    if sizes is not None and sizes != (int(min_size), int(max_size)):
        raise ValueError(
            f"the model resizes to min_size {sizes[0]}, max_size {sizes[1]} but the export was asked to record "
            f"{min_size}, {max_size}; preprocess.json must say what the graph does"
        )
    predictor = getattr(getattr(model, "roi_heads", None), "box_predictor", None)
    outputs = getattr(getattr(predictor, "cls_score", None), "out_features", None)
    if outputs is not None and outputs != len(class_names) + 1:
        raise ValueError(f"the model has {outputs} classes with background but {len(class_names)} class names")
    images = [as_check_tensor(image, i) for i, image in enumerate(check_images)]
    sizes = {tuple(image.shape[1:]) for image in images}
    if len(sizes) < 2:
        raise ValueError(f"the ONNX check needs real images of at least two sizes, got {sorted(sizes)}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = model.to("cpu").eval()
    graph = DetectionGraph(model).eval()
    fd, tmp_name = tempfile.mkstemp(prefix=".model.onnx.", suffix=".tmp", dir=out_dir)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with warnings.catch_warnings(), _traceable(model):
            warnings.simplefilter("ignore")  # tracer warnings of torchvision's data-dependent code, exporter notice
            torch.onnx.export(
                graph,
                (images[0],),
                str(tmp),
                input_names=[INPUT_NAME],
                output_names=list(OUTPUT_NAMES),
                dynamic_axes={
                    INPUT_NAME: {1: "height", 2: "width"},
                    **{name: {0: "detections"} for name in OUTPUT_NAMES},
                },
                opset_version=OPSET,
                do_constant_folding=True,
                dynamo=False,
            )
        onnx.checker.check_model(onnx.load(str(tmp)))
        check_onnx_against_torch(model, tmp, images)
        os.chmod(tmp, 0o644)
        tmp.replace(out_dir / "model.onnx")
    finally:
        tmp.unlink(missing_ok=True)
    _write_json(out_dir / "labels.json", class_names)
    _write_json(out_dir / "preprocess.json", detection_preprocess(min_size, max_size))
