"""The optimiser and its schedule: SGD's parameter groups, and learning rate and momentum as pure
functions of training progress.

Being stateless (a function of the global step only) is what makes resume exact: the schedule needs
no state of its own beyond the step counter stored in the checkpoint.
"""

from __future__ import annotations

import bisect
from typing import Any

import torch
from torch import nn

from amlvision.training.config import TrainConfig


def lr_at(cfg: TrainConfig, progress: float) -> float:
    """Learning rate at ``progress`` in [0, 1) of the whole run."""
    if cfg.lr_schedule == "constant":
        return cfg.lr
    if cfg.lr_schedule == "step":
        index = bisect.bisect_right(cfg.lr_steps, progress)
        return cfg.lr * (1.0 if index == 0 else cfg.lr_factors[index - 1])
    # onecycle: linear 0.2 -> 1 over the warm-up, then linear down to final_lr_fraction (airbench shape)
    if cfg.warmup > 0 and progress < cfg.warmup:
        return cfg.lr * (0.2 + 0.8 * progress / cfg.warmup)
    span = max(1e-12, 1.0 - cfg.warmup)
    return cfg.lr * (1.0 + (cfg.final_lr_fraction - 1.0) * (progress - cfg.warmup) / span)


def momentum_at(cfg: TrainConfig, progress: float) -> float:
    index = bisect.bisect_right(cfg.momentum_steps, progress)
    return cfg.momentum if index == 0 else cfg.momentum_values[index - 1]


def apply(optimizer, cfg: TrainConfig, progress: float) -> tuple[float, float]:
    """Set lr and momentum of every parameter group; unit-gain momentum uses dampening = momentum."""
    lr, momentum = lr_at(cfg, progress), momentum_at(cfg, progress)
    for group in optimizer.param_groups:
        group["lr"] = lr
        group["momentum"] = momentum
        group["dampening"] = momentum if cfg.unit_gain else 0.0
        group["nesterov"] = cfg.nesterov and momentum > 0
    return lr, momentum


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.SGD:
    """SGD with ``cfg.weight_decay`` on every parameter, or only on the model's ``decayed_parameters``."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    params = [p for _, p in named]
    decayed = getattr(model, "decayed_parameters", None)
    if decayed is None:
        groups: list[dict[str, Any]] = [{"params": params, "weight_decay": cfg.weight_decay}]
    else:  # e.g. the TensorFlow tutorial net: L2 on its two hidden dense layers only
        groups = [
            {"params": [p for n, p in named if n in decayed], "weight_decay": cfg.weight_decay},
            {"params": [p for n, p in named if n not in decayed], "weight_decay": 0.0},
        ]
    momentum = max(cfg.momentum, *cfg.momentum_values) if cfg.momentum_values else cfg.momentum
    optimizer = torch.optim.SGD(groups, lr=cfg.lr, momentum=momentum)
    if cfg.unit_gain:
        # PyTorch seeds a momentum buffer with the raw first gradient (no dampening); CNTK's unit-gain
        # momentum starts from zero, so the first steps are (1 - m) g, not g.
        for p in params:
            optimizer.state[p]["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)
    return optimizer
