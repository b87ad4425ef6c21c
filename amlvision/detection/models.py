"""torchvision's Faster R-CNN family, built for a data set's classes from named weights, a local file or nothing.

Why a module of its own: ``--weights`` and ``--backbone-weights`` take three kinds of value, and the
rules for them are the same for training, tests and the notebook:

* a torchvision weights name (``DEFAULT``, ``COCO_V1``, or the full ``FasterRCNN_..._Weights.COCO_V1``):
  the builder gets the enum and torchvision loads it the way it always does, from
  ``$TORCH_HOME/hub/checkpoints/<file>`` or, when that file is absent, by downloading it;
* a local ``.pth`` file: a state dict (or a checkpoint dict with a ``model`` entry) saved from a
  detector of the same architecture (``--weights``) or from the classification backbone
  (``--backbone-weights``: mobilenet_v3_large / resnet50 keys, ``fc``/``classifier`` ignored);
* nothing: random initialisation, every layer trainable.

The box predictor is replaced whenever the weights' class count differs from the data's. Class
counts here exclude background: torchvision's label 0 is background, so a data set of K classes is
trained with ``num_classes=K + 1`` and data label ``i`` is torchvision label ``i + 1``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torchvision.models import WeightsEnum, get_model_weights
from torchvision.models.detection import (
    fasterrcnn_mobilenet_v3_large_320_fpn,
    fasterrcnn_mobilenet_v3_large_fpn,
    fasterrcnn_resnet50_fpn,
)
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor
from torchvision.ops.misc import FrozenBatchNorm2d

PREDICTOR_KEY = "roi_heads.box_predictor.cls_score.weight"


@dataclass(frozen=True)
class DetectorSpec:
    """One supported architecture: its torchvision builder and its CPU-sensible input sizes."""

    builder: Callable[..., nn.Module]
    backbone: str  # torchvision classification model whose weights --backbone-weights takes
    min_size: int  # shorter image side the model resizes to (torchvision's own default for this model)
    max_size: int  # cap on the longer side
    gflops: float  # torchvision's published figure at its default size (COCO val2017)
    coco_box_ap: float


DETECTORS: dict[str, DetectorSpec] = {
    "fasterrcnn_mobilenet_v3_large_320_fpn": DetectorSpec(
        fasterrcnn_mobilenet_v3_large_320_fpn, "mobilenet_v3_large", 320, 640, 0.72, 22.8
    ),
    "fasterrcnn_mobilenet_v3_large_fpn": DetectorSpec(
        fasterrcnn_mobilenet_v3_large_fpn, "mobilenet_v3_large", 800, 1333, 4.49, 32.8
    ),
    "fasterrcnn_resnet50_fpn": DetectorSpec(fasterrcnn_resnet50_fpn, "resnet50", 800, 1333, 134.38, 37.0),
}


class WeightsError(ValueError):
    """A --weights / --backbone-weights value that is neither a torchvision weights name nor a usable file."""


def _named_weights(builder: Callable[..., nn.Module], name: str, flag: str) -> WeightsEnum:
    """``DEFAULT``/``COCO_V1``/``Full_Weights.COCO_V1`` -> the builder's weights enum (no download here)."""
    enum = get_model_weights(builder)
    short = name.rsplit(".", 1)[-1]
    if "." in name and name.split(".", 1)[0] != enum.__name__:
        raise WeightsError(f"{flag} {name!r}: {builder.__name__} takes {enum.__name__} weights")
    try:
        return enum.verify(short)
    except (KeyError, ValueError):
        known = ", ".join(["DEFAULT", *(w.name for w in enum)])
        raise WeightsError(f"{flag} {name!r} is neither a file nor one of {enum.__name__}: {known}") from None


def load_state_dict_file(path: str | Path, flag: str = "--weights") -> dict[str, torch.Tensor]:
    """A state dict from ``path``: a bare one, or a checkpoint holding it under ``model``/``state_dict``."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{flag} {path}: no such file")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsError(f"{flag} {path}: not a readable PyTorch weights file ({type(exc).__name__}: {exc})") from exc
    if isinstance(raw, dict):
        for key in ("model", "state_dict"):
            if isinstance(raw.get(key), dict):
                raw = raw[key]
                break
    if not isinstance(raw, dict) or not all(isinstance(v, torch.Tensor) for v in raw.values()):
        raise WeightsError(f"{flag} {path}: expected a state dict of tensors")
    return raw


def _is_file_value(value: str | Path) -> bool:
    text = str(value)
    return Path(text).is_file() or text.endswith((".pth", ".pt")) or "/" in text


def _download_hint(exc: Exception, weights: WeightsEnum, flag: str) -> WeightsError:
    file_name = weights.url.rsplit("/", 1)[-1]
    return WeightsError(
        f"{flag} {weights}: torchvision could not load {weights.url} ({type(exc).__name__}: {exc}). Offline, put "
        f"the file at {Path(torch.hub.get_dir()) / 'checkpoints' / file_name} or pass a local .pth file"
    )


def replace_predictor(model: nn.Module, num_classes: int) -> None:
    """A fresh box predictor for ``num_classes`` data classes (+ background) unless the current one fits."""
    predictor = model.roi_heads.box_predictor
    if predictor.cls_score.out_features != num_classes + 1:
        model.roi_heads.box_predictor = FastRCNNPredictor(predictor.cls_score.in_features, num_classes + 1)


def freeze_batchnorm(module: nn.Module) -> nn.Module:
    """Swap every BatchNorm2d for FrozenBatchNorm2d with the same statistics, as torchvision does for trained weights.

    Detection batches are a few images; updating BatchNorm statistics on them ruins trained ones.
    """
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            frozen = FrozenBatchNorm2d(child.num_features, eps=child.eps)
            frozen.weight.copy_(child.weight.detach())
            frozen.bias.copy_(child.bias.detach())
            frozen.running_mean.copy_(child.running_mean)
            frozen.running_var.copy_(child.running_var)
            setattr(module, name, frozen)
        else:
            freeze_batchnorm(child)
    return module


def _load_detector_file(model: nn.Module, state: dict[str, torch.Tensor], path: str | Path) -> None:
    state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    own = model.state_dict()
    wrong = [
        f"{k} {tuple(v.shape)} (needs {tuple(own[k].shape)})"
        for k, v in state.items()
        if k in own and own[k].shape != v.shape
    ]
    if wrong:
        raise WeightsError(
            f"--weights {path}: does not match this detector ({len(wrong)} tensors differ, e.g. {wrong[0]})"
        )
    result = model.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if not k.endswith("num_batches_tracked")]
    if missing or result.unexpected_keys:
        raise WeightsError(
            f"--weights {path}: does not match this detector ({len(missing)} tensors missing, e.g. {missing[:3]}; "
            f"{len(result.unexpected_keys)} unexpected, e.g. {result.unexpected_keys[:3]})"
        )


def _load_backbone_file(model: nn.Module, state: dict[str, torch.Tensor], path: str | Path, backbone: str) -> None:
    """Classification-backbone keys (``features.N...`` or ``layerN...``) -> the detector's ``backbone.body``."""
    body = {k: v for k, v in model.backbone.body.state_dict().items() if not k.endswith("num_batches_tracked")}
    mapped = {}
    for key, value in state.items():
        name = key.removeprefix("backbone.body.").removeprefix("features.")
        if name in body:
            if body[name].shape != value.shape:
                raise WeightsError(
                    f"--backbone-weights {path}: {key} has shape {tuple(value.shape)}, the {backbone} backbone "
                    f"needs {tuple(body[name].shape)}"
                )
            mapped[name] = value
    missing = sorted(set(body) - set(mapped))
    if missing:
        raise WeightsError(
            f"--backbone-weights {path}: not {backbone} backbone weights ({len(missing)} of {len(body)} "
            f"tensors missing, e.g. {missing[:3]})"
        )
    model.backbone.body.load_state_dict(mapped, strict=False)


def build_detector(
    name: str,
    num_classes: int,
    weights: str | Path | None = None,
    backbone_weights: str | Path | None = None,
    min_size: int | tuple[int, ...] | None = None,
    max_size: int | None = None,
    **kwargs: Any,
) -> nn.Module:
    """A torchvision Faster R-CNN ``name`` for ``num_classes`` data classes (background excluded).

    ``min_size`` may be a tuple: in training torchvision picks one per batch (multi-scale), in
    evaluation it uses the last. Extra ``kwargs`` go to torchvision's ``FasterRCNN`` (e.g.
    ``box_detections_per_img``). With trained weights (named or file) BatchNorm is frozen, as
    torchvision does.
    """
    if name not in DETECTORS:
        raise ValueError(f"unknown detector {name!r}; choose one of {', '.join(DETECTORS)}")
    if num_classes < 1:
        raise ValueError(f"a detector needs at least one class, got {num_classes}")
    if weights is not None and backbone_weights is not None:
        raise WeightsError("--weights already holds a backbone: pass --weights or --backbone-weights, not both")
    spec = DETECTORS[name]
    sizes = {"min_size": min_size or spec.min_size, "max_size": max_size or spec.max_size, **kwargs}
    named = named_backbone = None
    if weights is not None and not _is_file_value(weights):
        named = _named_weights(spec.builder, str(weights), "--weights")
    if backbone_weights is not None and not _is_file_value(backbone_weights):
        from torchvision.models import get_model_builder

        named_backbone = _named_weights(get_model_builder(spec.backbone), str(backbone_weights), "--backbone-weights")

    if named is not None:  # torchvision's own path: COCO head (91 classes), then a new predictor
        try:
            model = spec.builder(weights=named, weights_backbone=None, **sizes)
        except (OSError, RuntimeError) as exc:
            raise _download_hint(exc, named, "--weights") from exc
        replace_predictor(model, num_classes)
        return model
    if named_backbone is not None:
        try:
            return spec.builder(weights=None, weights_backbone=named_backbone, num_classes=num_classes + 1, **sizes)
        except (OSError, RuntimeError) as exc:
            raise _download_hint(exc, named_backbone, "--backbone-weights") from exc

    if weights is not None:
        state = load_state_dict_file(weights, "--weights")
        if PREDICTOR_KEY not in state:
            raise WeightsError(f"--weights {weights}: no {PREDICTOR_KEY}; is this a {name} state dict?")
        model = spec.builder(
            weights=None, weights_backbone=None, num_classes=int(state[PREDICTOR_KEY].shape[0]), **sizes
        )
        _load_detector_file(model, state, weights)
        replace_predictor(model, num_classes)
        return freeze_batchnorm(model)
    model = spec.builder(weights=None, weights_backbone=None, num_classes=num_classes + 1, **sizes)
    if backbone_weights is not None:
        _load_backbone_file(
            model, load_state_dict_file(backbone_weights, "--backbone-weights"), backbone_weights, spec.backbone
        )
        freeze_batchnorm(model.backbone.body)
    return model
