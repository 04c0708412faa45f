"""Exponential moving average (EMA) of model weights, evaluated and saved as the best model."""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn


class ModelEma:
    """Keeps ``shadow = d * shadow + (1 - d) * weights`` after every optimisation step.

    The decay ramps up as ``min(decay, (1 + n) / (10 + n))`` over the first updates ``n``, so the
    average is not dominated by the random initial weights in short runs. Floating-point buffers
    (BatchNorm running statistics) are averaged too; integer buffers are copied.

    Args:
        model: the (unwrapped) training model; its copy lives on the same device.
        decay: the final decay ``d`` (recipe ``train.ema_decay``).
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.module = copy.deepcopy(model).eval()
        for param in self.module.parameters():
            param.requires_grad_(False)
        self.decay = decay
        self.updates = 0

    def current_decay(self) -> float:
        """Decay used by the next update."""
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Moves the average towards ``model``'s current weights (call after ``optimizer.step``)."""
        decay = self.current_decay()
        self.updates += 1
        shadow = self.module.state_dict()
        averaged, targets = [], []
        for name, value in model.state_dict().items():
            if value.dtype.is_floating_point:
                averaged.append(shadow[name])
                targets.append(value.detach())
            else:
                shadow[name].copy_(value)
        # lerp_(target, 1 - d) == d * shadow + (1 - d) * target
        torch._foreach_lerp_(averaged, targets, 1.0 - decay)

    def state_dict(self) -> dict[str, Any]:
        """Weights of the average and the update count (for checkpoints)."""
        return {"model": self.module.state_dict(), "updates": self.updates, "decay": self.decay}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores what :meth:`state_dict` returned."""
        self.module.load_state_dict(state["model"])
        self.updates = int(state["updates"])
