"""Export the trained network as the model directory of docs/CONTRACTS.md, and prove ONNX equals PyTorch.

``model.onnx`` (input ``input`` float32 N x C x H x W, N dynamic; output ``logits``: the names of
``amlvision.model_dir.SIGNATURES`` for classification and multilabel), ``labels.json`` and
``preprocess.json`` (written by ``amlvision.model_dir``). After writing, ONNX Runtime runs the file on
real images and its logits must match PyTorch's within ``|onnx - torch| <= ATOL + RTOL * max|torch|``;
otherwise :class:`ExportMismatch` is raised and train.py fails, because a model that answers differently
in serving is worse than none.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from amlvision.model_dir import INPUT_NAME, MODEL_FILE, OUTPUT_NAME, Preprocess, write_model_files

OPSET = 17
ATOL = 1e-4
RTOL = 1e-4


class ExportMismatch(RuntimeError):
    """ONNX Runtime's outputs differ from PyTorch's beyond the stated tolerance."""


def _export(model: nn.Module, example: torch.Tensor, path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            model,
            (example,),
            str(path),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )
    onnx.checker.check_model(onnx.load(str(path)))


def verify_onnx(model: nn.Module, onnx_path: Path, inputs: torch.Tensor) -> dict[str, float]:
    """Run both on ``inputs`` (normalised real images); raise ExportMismatch if they differ. Returns the figures."""
    with torch.no_grad():
        expected = model(inputs).float().numpy()
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    actual = session.run([OUTPUT_NAME], {INPUT_NAME: inputs.numpy().astype(np.float32)})[0]
    if actual.shape != expected.shape:
        raise ExportMismatch(f"{onnx_path}: ONNX output shape {actual.shape} != PyTorch {expected.shape}")
    max_diff = float(np.abs(actual - expected).max()) if actual.size else 0.0
    scale = float(np.abs(expected).max()) if expected.size else 0.0
    tolerance = ATOL + RTOL * scale
    argmax_agree = float((actual.argmax(1) == expected.argmax(1)).mean()) if len(actual) else 1.0
    figures = {
        "max_abs_diff": max_diff,
        "tolerance": tolerance,
        "argmax_agreement": argmax_agree,
        "images": int(len(inputs)),
    }
    if not np.isfinite(actual).all() or max_diff > tolerance:
        raise ExportMismatch(
            f"{onnx_path}: ONNX Runtime logits differ from PyTorch by {max_diff:.3g} on {len(inputs)} real images "
            f"(tolerance {tolerance:.3g} = {ATOL} + {RTOL} x max|logit| {scale:.3g})"
        )
    return figures


def export_onnx(
    model: nn.Module,
    model_dir: str | Path,
    class_names: list[str],
    preprocess: Preprocess,
    check_inputs: torch.Tensor,
) -> dict[str, float]:
    """Write model.onnx, labels.json, preprocess.json into ``model_dir`` and verify ONNX against PyTorch.

    ``check_inputs``: a batch of real, normalised images (float32 N x C x H x W) from the data.
    """
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    model = model.to("cpu").eval()
    check_inputs = check_inputs.detach().to("cpu", torch.float32)
    if tuple(check_inputs.shape[1:]) != preprocess.chw:
        raise ValueError(f"check images are {tuple(check_inputs.shape[1:])}, preprocess.json says {preprocess.chw}")
    onnx_path = model_dir / MODEL_FILE
    tmp = model_dir / f".{MODEL_FILE}.tmp"
    _export(model, check_inputs[:2], tmp)
    tmp.replace(onnx_path)
    write_model_files(model_dir, class_names, preprocess)
    return verify_onnx(model, onnx_path, check_inputs)
