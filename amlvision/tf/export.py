"""Export a TensorFlow model as the model directory of docs/CONTRACTS.md, and prove ONNX equals TensorFlow.

tf2onnx (1.17, opset 17) converts the serving ``tf.function`` (:func:`amlvision.tf.models.serving_function`)
with its explicit input signature; the input stage (central crop, ``per_image_standardization`` or
``/ 255``) is part of that graph, so ``preprocess.json`` is plain 0-255 pixels (mean 0, std 1) and the
scoring container needs no TensorFlow. ONNX Runtime must then reproduce TensorFlow's logits on real
images within ``ATOL + RTOL * max|logit|`` (the PyTorch export's tolerance), else ExportMismatch.
"""

from __future__ import annotations

import importlib
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort

from amlvision.model_dir import INPUT_NAME, MODEL_FILE, OUTPUT_NAME, Preprocess, write_model_files
from amlvision.training.export import ATOL, OPSET, RTOL, ExportMismatch


def convert(serve: Any, path: Path) -> None:
    """tf2onnx ``from_function`` into ``path`` (atomically), then ``onnx.checker``."""
    from amlvision.tf import runtime  # noqa: F401  (TensorFlow first, the safe way: see amlvision.tf.runtime)

    tf2onnx = importlib.import_module("tf2onnx")

    tmp = path.with_name(f".{path.name}.tmp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tf2onnx.convert.from_function(serve, input_signature=serve.input_signature, opset=OPSET, output_path=str(tmp))
    proto = onnx.load(str(tmp))
    names = ([i.name for i in proto.graph.input], [o.name for o in proto.graph.output])
    if names != ([INPUT_NAME], [OUTPUT_NAME]):
        raise ExportMismatch(f"{path}: tf2onnx wrote inputs/outputs {names}, the contract needs input/logits")
    onnx.checker.check_model(proto)
    tmp.replace(path)


def verify(serve: Any, onnx_path: Path, pixels_nchw: np.ndarray) -> dict[str, float]:
    """TensorFlow vs ONNX Runtime logits on ``pixels_nchw`` (float32 0-255 real images)."""
    expected = serve(pixels_nchw)[OUTPUT_NAME].numpy()
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    actual = session.run([OUTPUT_NAME], {INPUT_NAME: pixels_nchw})[0]
    if actual.shape != expected.shape:
        raise ExportMismatch(f"{onnx_path}: ONNX output shape {actual.shape} != TensorFlow {expected.shape}")
    max_diff = float(np.abs(actual - expected).max()) if actual.size else 0.0
    scale = float(np.abs(expected).max()) if expected.size else 0.0
    tolerance = ATOL + RTOL * scale
    figures = {
        "max_abs_diff": max_diff,
        "tolerance": tolerance,
        "argmax_agreement": float((actual.argmax(1) == expected.argmax(1)).mean()) if len(actual) else 1.0,
        "images": int(len(pixels_nchw)),
        "exporter": "tf2onnx",
    }
    if not np.isfinite(actual).all() or max_diff > tolerance:
        raise ExportMismatch(
            f"{onnx_path}: ONNX Runtime logits differ from TensorFlow by {max_diff:.3g} on {len(pixels_nchw)} real "
            f"images (tolerance {tolerance:.3g} = {ATOL} + {RTOL} x max|logit| {scale:.3g})"
        )
    return figures


def export_tf_onnx(
    serve: Any, model_dir: str | Path, class_names: list[str], preprocess: Preprocess, check_images_nhwc: np.ndarray
) -> dict[str, float]:
    """Write model.onnx, labels.json, preprocess.json into ``model_dir``; verify on real uint8 NHWC images."""
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = model_dir / MODEL_FILE
    convert(serve, onnx_path)
    write_model_files(model_dir, class_names, preprocess)
    pixels = np.ascontiguousarray(check_images_nhwc.transpose(0, 3, 1, 2), dtype=np.float32)
    return verify(serve, onnx_path, pixels)
