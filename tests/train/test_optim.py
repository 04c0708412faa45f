"""Learning-rate factor, optimiser parameter groups and the scheduler's checkpoint round trip."""

from __future__ import annotations

import io
import math

import pytest
import torch
from torch import nn

from ssdcli.config import TrainConfig
from ssdcli.train.optim import (
    WARMUP_START_FACTOR,
    LrFactor,
    build_optimizer,
    build_scheduler,
    parameter_groups,
)


def test_warmup_is_linear_from_start_factor_to_one() -> None:
    factor = LrFactor(100, warmup_iterations=10, schedule="multistep", milestones=[], gamma=0.1)
    assert factor(0) == pytest.approx(WARMUP_START_FACTOR)
    assert factor(5) == pytest.approx(0.001 + 0.999 * 0.5)
    assert factor(10) == 1.0
    assert factor(99) == 1.0


def test_multistep_multiplies_by_gamma_at_each_milestone() -> None:
    factor = LrFactor(100, 0, "multistep", milestones=[10, 20], gamma=0.1)
    assert [factor(i) for i in (0, 9)] == [1.0, 1.0]
    assert factor(10) == pytest.approx(0.1)
    assert factor(19) == pytest.approx(0.1)
    assert factor(20) == pytest.approx(0.01)


def test_cosine_goes_from_one_to_zero_after_warmup() -> None:
    factor = LrFactor(110, 10, "cosine", milestones=[], gamma=0.1)
    assert factor(10) == pytest.approx(1.0)
    assert factor(60) == pytest.approx(0.5)  # half way: (1 + cos(pi/2)) / 2
    assert factor(35) == pytest.approx((1 + math.cos(math.pi / 4)) / 2)
    assert factor(110) == pytest.approx(0.0, abs=1e-12)
    assert factor(500) == pytest.approx(0.0, abs=1e-12)


def test_norm_and_bias_parameters_get_no_weight_decay() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    groups = parameter_groups(model, weight_decay=0.5)
    assert groups[0]["weight_decay"] == 0.5
    assert [p.shape for p in groups[0]["params"]] == [torch.Size([4, 3, 3, 3])]
    assert groups[1]["weight_decay"] == 0.0
    assert len(groups[1]["params"]) == 3  # conv bias, bn weight, bn bias


def test_frozen_parameters_are_left_out() -> None:
    model = nn.Linear(2, 2)
    model.weight.requires_grad_(False)
    groups = parameter_groups(model, 0.1)
    assert sum(len(g["params"]) for g in groups) == 1


@pytest.mark.parametrize("name, kind", [("sgd", torch.optim.SGD), ("adamw", torch.optim.AdamW)])
def test_build_optimizer_kind(name: str, kind: type) -> None:
    cfg = TrainConfig(optimizer=name, lr=0.01, iterations=10)
    assert isinstance(build_optimizer(nn.Linear(2, 2), cfg), kind)


def test_scheduler_sets_lr_per_iteration_and_round_trips() -> None:
    cfg = TrainConfig(lr=0.1, iterations=30, warmup_iterations=4, milestones=[10], gamma=0.5)
    model = nn.Linear(2, 2)
    opt = build_optimizer(model, cfg)
    sched = build_scheduler(opt, cfg, total_iterations=30)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 * WARMUP_START_FACTOR)
    for _ in range(12):
        opt.step()
        sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.05)
    buffer = io.BytesIO()
    torch.save(sched.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    opt2 = build_optimizer(model, cfg)
    sched2 = build_scheduler(opt2, cfg, total_iterations=30)
    sched2.load_state_dict(state)
    assert sched2.last_epoch == 12
    assert sched2.get_last_lr()[0] == pytest.approx(0.05)


def test_epoch_milestones_become_iterations() -> None:
    cfg = TrainConfig(lr=1.0, epochs=4, milestones=[2], gamma=0.1)
    opt = build_optimizer(nn.Linear(2, 2), cfg)
    sched = build_scheduler(opt, cfg, total_iterations=40, steps_per_epoch=10)
    assert sched.lr_lambdas[0].milestones == [20]


def test_backbone_lr_gives_the_backbone_its_own_rate_after_the_base_groups() -> None:
    model = nn.Module()
    model.backbone = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    model.head = nn.Conv2d(4, 2, 1)
    cfg = TrainConfig(optimizer="adamw", lr=0.01, backbone_lr=0.1, iterations=10)
    optimizer = build_optimizer(model, cfg)
    rates = [(len(g["params"]), g["lr"], g["weight_decay"]) for g in optimizer.param_groups]
    # head weight, head bias at the base rate first (group 0 is what the log shows), then the
    # backbone's conv weight and its conv bias + BN weight + BN bias at 0.01 * 0.1.
    assert rates == [
        (1, 0.01, cfg.weight_decay),
        (1, 0.01, 0.0),
        (1, pytest.approx(0.001), cfg.weight_decay),
        (3, pytest.approx(0.001), 0.0),
    ]
    scheduler = build_scheduler(optimizer, cfg.model_copy(update={"warmup_iterations": 0}), 10)
    optimizer.step()
    scheduler.step()
    assert optimizer.param_groups[2]["lr"] / optimizer.param_groups[0]["lr"] == pytest.approx(0.1)
