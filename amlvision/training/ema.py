"""An exponential moving average of a PyTorch model's weights, as TensorFlow's tutorial evaluates them.

``tf.train.ExponentialMovingAverage(decay, num_updates=global_step)``: the shadow starts at the initial
weights and after each step moves by ``1 - min(decay, (1 + step) / (10 + step))`` towards the weights, so
early in training it follows them closely and later it averages ~1/(1 - decay) steps. Buffers (BatchNorm
statistics) are copied, not averaged, as TensorFlow averages trainable variables only.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class WeightEMA:
    """The shadow model (:attr:`shadow`) that evaluation, export and ``model.pt`` use when ``--ema`` is set."""

    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.shadow = copy.deepcopy(model).eval()
        for p in self.shadow.parameters():
            p.requires_grad_(False)

    def rate(self, step: int) -> float:
        """The decay TensorFlow uses at ``num_updates = step`` (the global step after the update)."""
        return min(self.decay, (1.0 + step) / (10.0 + step))

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        decay = self.rate(step)
        for shadow, param in zip(self.shadow.parameters(), model.parameters(), strict=True):
            shadow.lerp_(param.detach(), 1.0 - decay)
        for shadow, buffer in zip(self.shadow.buffers(), model.buffers(), strict=True):
            shadow.copy_(buffer)
