"""Learning-rate and momentum schedules as pure functions of training progress.

Being stateless (a function of the global step only) is what makes resume exact: the schedule needs
no state of its own beyond the step counter stored in the checkpoint.
"""

from __future__ import annotations

import bisect

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
