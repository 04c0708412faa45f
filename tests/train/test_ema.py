"""Weight EMA: hand-computed averages, ramped decay, buffers and the state round trip."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ssdcli.train.ema import ModelEma


def _model(value: float) -> nn.Module:
    model = nn.Sequential(nn.Linear(1, 1, bias=False), nn.BatchNorm1d(1))
    with torch.no_grad():
        model[0].weight.fill_(value)
    return model


def test_first_updates_use_the_ramped_decay() -> None:
    model = _model(1.0)
    ema = ModelEma(model, decay=0.99)
    assert ema.current_decay() == pytest.approx(0.1)  # (1 + 0) / (10 + 0)
    with torch.no_grad():
        model[0].weight.fill_(3.0)
    ema.update(model)
    # 0.1 * 1 + 0.9 * 3
    assert ema.module[0].weight.item() == pytest.approx(2.8)
    assert ema.current_decay() == pytest.approx(2 / 11)


def test_long_runs_use_the_recipe_decay() -> None:
    ema = ModelEma(_model(0.0), decay=0.5)
    ema.updates = 1000
    assert ema.current_decay() == 0.5


def test_integer_buffers_are_copied_and_float_buffers_averaged() -> None:
    model = _model(1.0)
    ema = ModelEma(model, decay=0.5)
    model[1].num_batches_tracked.fill_(7)
    model[1].running_mean.fill_(10.0)
    ema.update(model)
    assert int(ema.module[1].num_batches_tracked) == 7
    assert ema.module[1].running_mean.item() == pytest.approx(0.1 * 0 + 0.9 * 10)


def test_ema_does_not_require_grad_and_round_trips() -> None:
    model = _model(2.0)
    ema = ModelEma(model, decay=0.9)
    assert not any(p.requires_grad for p in ema.module.parameters())
    ema.update(model)
    other = ModelEma(_model(0.0), decay=0.9)
    other.load_state_dict(ema.state_dict())
    assert other.updates == 1
    assert other.module[0].weight.item() == pytest.approx(2.0)
