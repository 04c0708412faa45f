"""Optimiser and learning-rate schedule: SGD (SSD paper) or AdamW, warmup, multistep or cosine.

The schedule is a multiplicative factor of the recipe's ``train.lr`` evaluated per iteration, so
it is exact when training is measured in epochs (``total_iterations`` is then
``epochs * steps_per_epoch``) and when a run is resumed mid-epoch.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:
    from ssdcli.config import TrainConfig

WARMUP_START_FACTOR = 1e-3  # warmup ramps the lr linearly from lr * 1e-3 to lr


def parameter_groups(
    model: nn.Module, weight_decay: float, backbone_lr: float | None = None
) -> list[dict[str, Any]]:
    """Weights of convs/linears decay; biases and normalisation parameters do not.

    Decaying BN scales and biases only shrinks them towards zero without regularising the
    function (they are 1-D), a common fix over the paper's uniform decay.

    Args:
        backbone_lr: a learning rate of its own for ``model.backbone``'s parameters (two more
            groups, after the others so that group 0 keeps the base rate); None = one rate.
    """
    body = getattr(model, "backbone", None) if backbone_lr is not None else None
    in_body = {id(p) for p in body.parameters()} if isinstance(body, nn.Module) else set()
    buckets: dict[tuple[bool, bool], list[nn.Parameter]] = {
        (b, d): [] for b in (False, True) for d in (True, False)
    }
    for param in model.parameters():
        if param.requires_grad:
            buckets[(id(param) in in_body, param.ndim > 1)].append(param)
    groups = []
    for (is_body, decays), params in buckets.items():
        if not params:
            continue
        group: dict[str, Any] = {"params": params, "weight_decay": weight_decay if decays else 0.0}
        if is_body:
            group["lr"] = backbone_lr
        groups.append(group)
    return groups


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """SGD with momentum (SSD paper: lr 1e-3, momentum 0.9, weight decay 5e-4) or AdamW.

    ``train.backbone_lr`` (a factor of ``train.lr``) gives the backbone its own rate; the
    schedule multiplies every group's rate alike.

    Both use the fused kernels (one pass over all parameters instead of a Python loop over ~100
    tensors): AdamW's step on the ``tiny`` model measured 0.8 ms fused against 4.7 ms, about 5% of
    a CPU training step at batch 8.
    """
    backbone_lr = cfg.lr * cfg.backbone_lr if cfg.backbone_lr != 1.0 else None
    groups = parameter_groups(model, cfg.weight_decay, backbone_lr)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, fused=True)
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.momentum, 0.999), fused=True)


class LrFactor:
    """Learning-rate factor at an iteration: linear warmup, then multistep or cosine decay.

    Plain attributes only, so that ``LambdaLR.state_dict`` stores it and checkpoints stay
    loadable with ``weights_only=True``.

    Args:
        total_iterations: length of the run in optimisation steps.
        warmup_iterations: steps of the linear ramp from ``WARMUP_START_FACTOR`` to 1.
        schedule: ``"multistep"`` (multiply by ``gamma`` at each milestone) or ``"cosine"``
            (half cosine from 1 to 0 between the end of warmup and ``total_iterations``).
    """

    def __init__(
        self,
        total_iterations: int,
        warmup_iterations: int,
        schedule: str,
        milestones: list[int],
        gamma: float,
    ) -> None:
        self.total_iterations = int(total_iterations)
        self.warmup_iterations = int(warmup_iterations)
        self.schedule = schedule
        self.milestones = sorted(int(m) for m in milestones)
        self.gamma = float(gamma)

    def __call__(self, iteration: int) -> float:
        """Factor for the step that follows ``iteration`` completed steps."""
        if iteration < self.warmup_iterations:
            alpha = iteration / self.warmup_iterations
            warm = WARMUP_START_FACTOR + (1.0 - WARMUP_START_FACTOR) * alpha
        else:
            warm = 1.0
        if self.schedule == "cosine":
            span = max(self.total_iterations - self.warmup_iterations, 1)
            progress = min(max(iteration - self.warmup_iterations, 0) / span, 1.0)
            return warm * 0.5 * (1.0 + math.cos(math.pi * progress))
        passed = sum(iteration >= milestone for milestone in self.milestones)
        return warm * self.gamma**passed


def build_scheduler(
    optimizer: torch.optim.Optimizer,
    cfg: TrainConfig,
    total_iterations: int,
    steps_per_epoch: int = 1,
) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-iteration ``LambdaLR`` driven by :class:`LrFactor` (call ``step()`` every step).

    ``train.milestones`` count iterations, or epochs when the run length is ``train.epochs``
    (they are then multiplied by ``steps_per_epoch``).
    """
    per = steps_per_epoch if cfg.epochs is not None else 1
    milestones = [m * per for m in cfg.milestones]
    factor = LrFactor(total_iterations, cfg.warmup_iterations, cfg.schedule, milestones, cfg.gamma)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda=factor)
